package drivertest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/httpimp/microcache"
)

// Sizes of the concurrent subtests: small enough to run in well under a
// second under -race on a busy machine, large enough to interleave.
const (
	purgeRounds      = 100  // purges in PurgeBeatsStore
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
// always wins", with purges and stores racing on one URL (from no record
// at all, so that the purge mark's clause is raced too).
//
// Storers loop: read the URL's record, then store (a plain object and a
// variant, in turns, sometimes with options) with the epoch read, creating
// options with a new epoch when the epoch read is 0. One purger loops:
// Purge with a new epoch p, then read the record. The invariant checked is
// the one that makes a purge safe: once Purge(p) has returned, the URL's
// epoch is never one the URL may have had before the purge (an earlier
// purge's epoch, or one a first store created from a read that may have
// preceded the purge), since every object stored before the purge carries
// such an epoch and would be served again. Its epoch is p, or, if the
// driver dropped the record (which a driver may do), 0 or one a first
// store created from a read made after the purge. Options read always
// carry the record's epoch, and objects are always ones stored under
// their key. At the end, a store with the epoch read succeeds.
func testPurgeBeatsStore(tt *tester) {
	const key = "race"
	vk := key + "|v"
	log := &epochLog{seq: make(map[uint64]int)}
	var done atomic.Bool
	var wg sync.WaitGroup
	for s := range 2 {
		wg.Go(func() {
			for i := 0; i < storeRoundsLimit && !done.Load() && !tt.t.Failed(); i++ {
				n := newEpoch()
				log.add(n) // before the read: n may be created from it
				r, err := tt.d.Lookup(tt.ctx, key)
				if err != nil {
					tt.t.Errorf("Lookup: %v", err)
					return
				}
				tt.checkRecord(key, r)
				st := &microcache.Store{URLKey: key, Epoch: r.Epoch, ObjectKey: key}
				after := r.Epoch
				if r.Epoch == 0 || i%4 == 0 {
					if r.Epoch == 0 {
						after = n
					}
					st.Options = options(after, time.Duration(i)*time.Second)
				}
				if i%2 == 1 {
					st.ObjectKey = vk
				}
				st.Object = tt.obj(st.ObjectKey, after, s*storeRoundsLimit+i)
				if _, err := tt.d.Store(tt.ctx, st); err != nil {
					tt.t.Errorf("Store: %v", err)
					return
				}
			}
		})
	}

	checkObject := func(what, k string, o *microcache.Object) {
		if o == nil {
			return
		}
		if msg := checkContent(k, o); msg != "" {
			tt.t.Errorf("%s: %s", what, msg)
		}
	}
	for i := 0; i < purgeRounds && !tt.t.Failed(); i++ {
		p := newEpoch()
		log.add(p)
		if err := tt.d.Purge(tt.ctx, key, p); err != nil {
			tt.t.Errorf("Purge: %v", err)
			break
		}
		place := log.now() // epochs logged from here on were read after the purge
		r, err := tt.d.Lookup(tt.ctx, key)
		if err != nil {
			tt.t.Errorf("Lookup: %v", err)
			break
		}
		tt.checkRecord(key, r)
		if r.Epoch != p && log.before(r.Epoch, place) {
			tt.t.Errorf("after Purge(%d) returned, Lookup found epoch %d, which the URL may have had before the purge: a store overwrote the purge", p, r.Epoch)
		}
		checkObject("Lookup after Purge", key, r.Object)
		o, err := tt.d.Object(tt.ctx, vk)
		if err != nil {
			tt.t.Errorf("Object: %v", err)
			break
		}
		checkObject("Object after Purge", vk, o)
	}
	done.Store(true)
	wg.Wait()
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
// must succeed; every record read must be consistent (Options.Epoch ==
// Epoch, no options with epoch 0); every object read must be one stored
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
