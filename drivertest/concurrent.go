package drivertest

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/httpimp/microcache"
)

// Sizes of the concurrent subtests: small enough to run in well under a
// second under -race on a busy machine, large enough to interleave.
const (
	purgeRounds      = 200  // purges in PurgeBeatsStore
	purgesPerURL     = 10   // purges of each URL there
	storeRoundsLimit = 5000 // bound on each storer's rounds there
	concurrentOps    = 300  // operations per goroutine in Concurrent
	concurrentProcs  = 4
	concurrentURLs   = 8
)

// epochLog records, in order, the epochs that may have been a URL's: those
// a purge set and those a first store (Epoch 0) may have created.
type epochLog struct {
	mu   sync.Mutex
	seq  map[uint64]int // epoch → its place in the log
	next int
}

// add logs e and returns its place.
func (l *epochLog) add(e uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	l.seq[e] = l.next
	return l.next
}

// now returns the place the next epoch will take.
func (l *epochLog) now() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next + 1
}

// before reports whether e was logged before place.
func (l *epochLog) before(e uint64, place int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.seq[e]
	return ok && s < place
}

// testPurgeBeatsStore checks "Every write that depends on what was read
// is a [Store], which succeeds only if the URL's epoch is still the one
// the caller read: a purge that lands while the backend runs ... therefore
// always wins", and "A purge of a URL that has no epoch yet must still
// leave one ..., so that a concurrent first fetch, which read no epoch,
// fails its Store", with purges and stores racing.
//
// Two storers loop on the current URL: read its record, then store (a
// plain object or a variant, often with options) with the epoch read,
// creating options with a new epoch when the epoch read is 0. One purger
// purges the URL repeatedly with new epochs, each time once a storer has
// read the record and is about to store; it moves to a new URL (with no
// record) every few purges, so that first stores race purge marks too.
//
// The invariant is what makes a purge safe: once Purge(p) has returned,
// and until the next purge, the URL's epoch is never one it may have had
// before the purge (an earlier purge's epoch, or one that a first store
// created from a read that may have preceded the purge), since objects
// stored before the purge carry such epochs and would be served again.
// Lookup must return p or, if the driver dropped the record (which a
// driver may do), 0 or an epoch that a first store created from a read
// made after the purge. Both the purger (right after each purge) and the
// storers (on each read) check it. Options read always carry the record's
// epoch, and objects are always ones stored under their key. At the end,
// a store with the epoch read succeeds.
func testPurgeBeatsStore(tt *tester) {
	type purged struct {
		key   string
		epoch uint64
		place int // in the log when the purge had returned
	}
	log := &epochLog{seq: make(map[uint64]int)}
	var (
		cur     atomic.Pointer[string] // the URL being raced on
		last    atomic.Pointer[purged] // the last purge that returned
		done    atomic.Bool
		ready   = make(chan struct{}, 1) // a storer read the record and is about to store
		stopped = make(chan struct{})    // closed once every storer has returned
		wg      sync.WaitGroup
	)
	firstKey := "race-0"
	cur.Store(&firstKey)

	// checkRead checks a record read under key after the purge p (nil:
	// none) had returned.
	checkRead := func(who, key string, p *purged, r microcache.Record) {
		tt.checkRecord(key, r)
		if p != nil && p.key == key && r.Epoch != p.epoch && log.before(r.Epoch, p.place) {
			tt.t.Errorf("%s: after Purge(%q, %d) returned, Lookup found epoch %d, which the URL may have had before the purge: a store overwrote the purge",
				who, key, p.epoch, r.Epoch)
		}
		if r.Object != nil {
			if msg := checkContent(key, r.Object); msg != "" {
				tt.t.Errorf("%s: Lookup(%q): %s", who, key, msg)
			}
		}
	}

	for s := range 2 {
		wg.Go(func() {
			for i := 0; i < storeRoundsLimit && !done.Load() && !tt.t.Failed(); i++ {
				key := *cur.Load()
				p := last.Load()
				n := newEpoch()
				log.add(n) // before the read: n may be created from it
				r, err := tt.d.Lookup(tt.ctx, key)
				if err != nil {
					tt.t.Errorf("Lookup: %v", err)
					return
				}
				checkRead("storer", key, p, r)
				st := &microcache.Store{URLKey: key, Epoch: r.Epoch, ObjectKey: key}
				after := r.Epoch
				if r.Epoch == 0 {
					after = n
				}
				if r.Epoch == 0 || i%2 == 0 {
					st.Options = options(after, time.Duration(i)*time.Second)
				}
				if i%3 == 1 {
					st.ObjectKey = key + "|v"
				}
				st.Object = tt.obj(st.ObjectKey, after, s*storeRoundsLimit+i)
				select { // tell the purger a store is coming
				case ready <- struct{}{}:
				default:
				}
				runtime.Gosched() // the backend call, during which a purge may land
				if _, err := tt.d.Store(tt.ctx, st); err != nil {
					tt.t.Errorf("Store: %v", err)
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(stopped)
	}()

	key := firstKey
purges:
	for i := 0; i < purgeRounds && !tt.t.Failed(); i++ {
		if i > 0 && i%purgesPerURL == 0 {
			next := "race-" + strconv.Itoa(i/purgesPerURL)
			cur.Store(&next)
			key = next
		}
		// Purge when a storer has read the record and is about to
		// store, sooner or later, so that purges land before, inside
		// and after its Store.
		select {
		case <-ready:
		case <-stopped:
			break purges
		}
		for range i % 4 {
			runtime.Gosched()
		}
		p := newEpoch()
		log.add(p)
		err := tt.d.Purge(tt.ctx, key, p)
		if err != nil {
			tt.t.Errorf("Purge: %v", err)
			break
		}
		last.Store(&purged{key: key, epoch: p, place: log.now()})
		r, err := tt.d.Lookup(tt.ctx, key)
		if err != nil {
			tt.t.Errorf("Lookup: %v", err)
			break
		}
		checkRead("purger", key, last.Load(), r)
		o, err := tt.d.Object(tt.ctx, key+"|v")
		if err != nil {
			tt.t.Errorf("Object: %v", err)
			break
		}
		if o != nil {
			if msg := checkContent(key+"|v", o); msg != "" {
				tt.t.Errorf("purger: Object(%q): %s", key+"|v", msg)
			}
		}
	}
	done.Store(true)
	<-stopped
	if tt.t.Failed() {
		return
	}

	// Now that nothing races, a store with the epoch read succeeds.
	r := tt.lookup(key)
	after, opts := r.Epoch, (*microcache.Options)(nil)
	if after == 0 {
		after = newEpoch()
		opts = options(after, time.Minute)
	}
	tt.mustStore(&microcache.Store{URLKey: key, Epoch: r.Epoch, Options: opts, ObjectKey: key, Object: tt.obj(key, after, -1)})
}

// testConcurrent checks "Implementations must be safe for concurrent
// use" (run it with -race) and "It must not block on I/O" (Len): several
// goroutines make a bounded number of mixed calls (Lookup, Object, Store
// with the epoch read, Purge, PurgeTag, Len) on a few URLs. Every call
// must succeed; every record read must be consistent (Options.Epoch 0,
// no options with epoch 0); every object read must be one stored
// under its key; Len must be -1 or between 0 and the number of objects
// the URLs can hold.
func testConcurrent(tt *tester) {
	keys := make([]string, concurrentURLs)
	for i := range keys {
		keys[i] = fmt.Sprintf("concurrent-%d", i)
	}
	const variants = 2
	maxObjects := concurrentURLs * (1 + variants)
	var wg sync.WaitGroup
	for g := range concurrentProcs {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0x5eed))
			for i := 0; i < concurrentOps && !tt.t.Failed(); i++ {
				if err := tt.randomOp(rng, keys, variants, maxObjects, g*concurrentOps+i); err != nil {
					tt.t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// randomOp makes one random call for testConcurrent and checks its
// result; it returns the driver's error, and reports wrong results itself.
func (tt *tester) randomOp(rng *rand.Rand, keys []string, variants, maxObjects, serial int) error {
	key := keys[rng.IntN(len(keys))]
	objKey := key
	if v := rng.IntN(variants + 1); v > 0 {
		objKey = fmt.Sprintf("%s|%d", key, v)
	}
	tag := fmt.Sprintf("tag-%d", rng.IntN(3))
	switch op := rng.IntN(10); {
	case op < 3:
		r, err := tt.d.Lookup(tt.ctx, key)
		if err != nil {
			return fmt.Errorf("Lookup(%q): %w", key, err)
		}
		tt.checkRecord(key, r)
		if r.Object != nil {
			if msg := checkContent(key, r.Object); msg != "" {
				tt.t.Errorf("Lookup(%q): %s", key, msg)
			}
		}
	case op < 5:
		o, err := tt.d.Object(tt.ctx, objKey)
		if err != nil {
			return fmt.Errorf("Object(%q): %w", objKey, err)
		}
		if o != nil {
			if msg := checkContent(objKey, o); msg != "" {
				tt.t.Errorf("Object(%q): %s", objKey, msg)
			}
		}
	case op < 8:
		r, err := tt.d.Lookup(tt.ctx, key)
		if err != nil {
			return fmt.Errorf("Lookup(%q): %w", key, err)
		}
		st := &microcache.Store{URLKey: key, Epoch: r.Epoch, ObjectKey: objKey, Tags: []string{tag}}
		after := r.Epoch
		if after == 0 {
			after = newEpoch()
			st.Options = options(after, time.Minute)
		}
		if rng.IntN(4) == 0 {
			st.Delete = true
		} else {
			st.Object = tt.obj(objKey, after, serial)
		}
		if _, err := tt.d.Store(tt.ctx, st); err != nil {
			return fmt.Errorf("Store(%q): %w", objKey, err)
		}
	case op < 9:
		if err := tt.d.Purge(tt.ctx, key, newEpoch()); err != nil {
			return fmt.Errorf("Purge(%q): %w", key, err)
		}
	default:
		if err := tt.d.PurgeTag(tt.ctx, tag, newEpoch()); err != nil {
			return fmt.Errorf("PurgeTag(%q): %w", tag, err)
		}
	}
	if n := tt.d.Len(); n < -1 || n > maxObjects {
		tt.t.Errorf("Len() = %d, want -1 or 0..%d", n, maxObjects)
	}
	return nil
}
