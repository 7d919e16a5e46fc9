package microcache

import (
	"context"
	"hash/maphash"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// testObject returns an object of body, fresh for an hour (objects past
// their RetainUntil lose admission contests at once).
func testObject(body string) *Object {
	return &Object{Status: 200, Body: []byte(body), Size: len(body), Expires: time.Now().Add(time.Hour)}
}

// fetch does what the middleware does for a plain URL: a Lookup, and on a
// miss a Store of a new object under the epoch read. It reports a hit.
func fetch(t testing.TB, d *DriverLRU, key string, body string) bool {
	t.Helper()
	ctx := context.Background()
	rec, _ := d.Lookup(ctx, key)
	if rec.Object != nil && rec.Options != nil && rec.Object.Epoch == rec.Epoch {
		return true
	}
	epoch := rec.Epoch
	if epoch == 0 {
		epoch = newEpoch()
	}
	obj := testObject(body)
	obj.Epoch = epoch
	ok, err := d.Store(ctx, &Store{URLKey: key, Epoch: rec.Epoch, Options: &Options{Epoch: epoch, TTL: time.Hour},
		ObjectKey: key, Object: obj})
	if err != nil || !ok {
		t.Fatalf("Store(%q) = %v, %v", key, ok, err)
	}
	return false
}

// records returns the number of records in the main part and window.
func (d *DriverLRU) records() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.policy.counts().recs
}

// countedBytes recomputes what every record counts, for comparison with
// Bytes.
func (d *DriverLRU) countedBytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for i := range d.shards {
		for _, r := range d.shards[i].m {
			if r.size != recordSize(r) {
				panic("stale size for " + r.key)
			}
			n += r.size
		}
	}
	return n
}

// NewDriverLRU(n) holds exactly n objects once n were stored, and never
// more; n below 1 means 1. Evictions count what was dropped.
func TestDriverLRUObjectLimit(t *testing.T) {
	for _, n := range []int{0, 1, 10, 50} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			d := NewDriverLRU(n)
			n = max(n, 1)
			for i := range n {
				fetch(t, d, "k"+strconv.Itoa(i), "x")
			}
			if d.Len() != n || d.Evictions() != 0 {
				t.Fatalf("after %d stores: Len %d, Evictions %d; want %d, 0", n, d.Len(), d.Evictions(), n)
			}
			for i := n; i < 10*n+10; i++ {
				fetch(t, d, "k"+strconv.Itoa(i), "x")
				if d.Len() != n {
					t.Fatalf("after %d stores: Len %d, want %d", i+1, d.Len(), n)
				}
			}
			if want := uint64(9*n + 10); d.Evictions() != want {
				t.Errorf("Evictions = %d, want %d", d.Evictions(), want)
			}
			if d.Bytes() != d.countedBytes() {
				t.Errorf("Bytes = %d, records count %d", d.Bytes(), d.countedBytes())
			}
		})
	}
}

// A byte limit of k records holds exactly k, and Bytes is exact: the sum
// of what each record counts.
func TestDriverLRUByteLimit(t *testing.T) {
	for _, n := range []int{1, 10, 50} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			body := string(make([]byte, 1000))
			// Every key is 4 bytes long, so every record counts the same.
			probe := NewDriverLRU(1)
			fetch(t, probe, "k000", body)
			size := probe.Bytes()
			rec, _ := probe.Lookup(context.Background(), "k000")
			if want := int64(4+lruRecordOverhead) + rec.Object.storedSize(); size != want {
				t.Fatalf("one record counts %d bytes, want %d", size, want)
			}
			budget := int64(n)*size + size/2
			d := NewDriverLRUBytes(1000, budget)
			for i := range 5 * n {
				fetch(t, d, "k"+strconv.Itoa(100+i), body)
				if d.Bytes() > budget {
					t.Fatalf("after %d stores: Bytes %d over the budget %d", i+1, d.Bytes(), budget)
				}
				if want := min(i+1, n); d.Len() != want {
					t.Fatalf("after %d stores: Len %d, want %d", i+1, d.Len(), want)
				}
			}
			if d.Bytes() != int64(n)*size || d.Bytes() != d.countedBytes() {
				t.Errorf("Bytes = %d, want %d (records count %d)", d.Bytes(), int64(n)*size, d.countedBytes())
			}
		})
	}
}

// The byte budget is global: an object nearly as large as all of it is
// held (a budget split over shards never held one above a sixteenth).
// Once it is held, an object larger than the budget is refused without
// evicting anything, and so is one that the policy does not admit.
func TestDriverLRUBigObjects(t *testing.T) {
	ctx := context.Background()
	const budget = 64 << 10
	d := NewDriverLRUBytes(100, budget)
	big := testObject(string(make([]byte, budget*3/4)))
	if fetch(t, d, "big", "") {
		t.Fatal("hit on an empty driver")
	}
	ok, _ := d.Store(ctx, &Store{URLKey: "big", Epoch: lookupEpoch(d, "big"), ObjectKey: "big", Object: big})
	if rec, _ := d.Lookup(ctx, "big"); !ok || rec.Object != big {
		t.Fatalf("a %d-byte object in a %d-byte budget was not held", len(big.Body), budget)
	}
	evictions, bytes := d.Evictions(), d.Bytes()
	huge := testObject(string(make([]byte, budget)))
	d.Lookup(ctx, "huge")
	ok, _ = d.Store(ctx, &Store{URLKey: "huge", Options: &Options{Epoch: 9}, ObjectKey: "huge", Object: huge})
	if rec, _ := d.Lookup(ctx, "huge"); !ok || rec.Object != nil || rec.Epoch != 9 {
		t.Errorf("an object over the budget: stored %v, held %v, epoch %d; want true, not held, options kept", ok, rec.Object != nil, rec.Epoch)
	}
	if rec, _ := d.Lookup(ctx, "big"); rec.Object != big || d.Evictions() != evictions {
		t.Errorf("an object that cannot be held evicted %d records", d.Evictions()-evictions)
	}
	// A candidate as frequent as the record it would evict is refused.
	mid := testObject(string(make([]byte, budget/2)))
	d.Lookup(ctx, "mid")
	d.Store(ctx, &Store{URLKey: "mid", Options: &Options{Epoch: 3}, ObjectKey: "mid", Object: mid})
	if rec, _ := d.Lookup(ctx, "big"); rec.Object != big {
		t.Error("a candidate seen as often evicted the big object")
	}
	if rec, _ := d.Lookup(ctx, "mid"); rec.Object != nil || d.Bytes() > budget || d.Bytes() < bytes {
		t.Errorf("mid held %v, Bytes %d", rec.Object != nil, d.Bytes())
	}
}

// learnUncacheable does what the middleware does for a URL it passes
// through: a Lookup, and a Store of options saying so when it has none.
func learnUncacheable(d *DriverLRU, key string) {
	ctx := context.Background()
	if rec, _ := d.Lookup(ctx, key); rec.Options == nil {
		d.Store(ctx, &Store{URLKey: key, Epoch: rec.Epoch, Options: &Options{Epoch: newEpoch(), Uncacheable: true}})
	}
}

func lookupEpoch(d *DriverLRU, key string) uint64 {
	rec, _ := d.Lookup(context.Background(), key)
	return rec.Epoch
}

// A small cache with a few hot keys keeps them: two hot keys of one shard
// in a 16-object cache both hit (a per-shard split of the limit made them
// evict each other forever), also while one-off keys pass.
func TestDriverLRUHotKeysDoNotThrash(t *testing.T) {
	d := NewDriverLRU(lruShards)
	var hot []string
	for i := 0; len(hot) < 2; i++ {
		k := "hot" + strconv.Itoa(i)
		if d.shard(maphash64(d, k)) == d.shard(maphash64(d, "hot0")) {
			hot = append(hot, k)
		}
	}
	misses := 0
	for round := range 200 {
		for _, k := range hot {
			if !fetch(t, d, k, k) && round >= 10 {
				misses++
			}
		}
		fetch(t, d, "once"+strconv.Itoa(round), "x")
	}
	if misses > 0 {
		t.Errorf("%d misses on two hot keys after warm-up", misses)
	}
}

// One-off keys do not flush the keys read again and again (scan
// resistance): 50 hot keys, each read after 20 one-off keys, in a cache
// of 500. (Plain LRU keeps 500/21 of the hot keys: none.)
func TestDriverLRUScanResistance(t *testing.T) {
	d := NewDriverLRU(500)
	hits, reads, once := 0, 0, 0
	for round := range 30 {
		for h := range 50 {
			for range 20 {
				fetch(t, d, "once"+strconv.Itoa(once), "x")
				once++
			}
			hit := fetch(t, d, "hot"+strconv.Itoa(h), "x")
			if round >= 10 {
				reads++
				if hit {
					hits++
				}
			}
		}
	}
	if ratio := float64(hits) / float64(reads); ratio < 0.95 {
		t.Errorf("hot hit ratio %.3f under a flood, want >= 0.95", ratio)
	}
}

// A record read lately is not the one evicted: reads set its ref bit and
// the policy gives it a second chance.
func TestDriverLRUSecondChance(t *testing.T) {
	d := NewDriverLRU(4)
	for i := range 4 {
		fetch(t, d, "k"+strconv.Itoa(i), "x")
	}
	// All four are in the main part now; k0 is its least recently used.
	for range 3 {
		fetch(t, d, "k0", "x")
	}
	// A frequent newcomer is admitted, evicting a record not read since.
	for range 5 {
		d.Lookup(context.Background(), "new")
	}
	fetch(t, d, "new", "x")
	for range 5 {
		fetch(t, d, "other", "x") // pushes "new" out of the window
	}
	if !fetch(t, d, "k0", "x") {
		t.Error("the record read lately was evicted")
	}
	if d.Len() != 4 {
		t.Errorf("Len = %d, want 4", d.Len())
	}
}

// Records without objects (options of varied or uncacheable URLs) are
// bounded at twice the object limit, and counted in bytes.
func TestDriverLRURecordLimit(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(10)
	for i := range 200 {
		key := "u" + strconv.Itoa(i)
		d.Lookup(ctx, key)
		d.Store(ctx, &Store{URLKey: key, Options: &Options{Epoch: uint64(i + 1), Uncacheable: true}})
		if d.records() > 20 {
			t.Fatalf("%d records after %d stores, want at most 20", d.records(), i+1)
		}
	}
	if d.Len() != 0 || d.Bytes() != d.countedBytes() || d.Bytes() < 20*lruRecordOverhead {
		t.Errorf("Len %d, Bytes %d (records count %d)", d.Len(), d.Bytes(), d.countedBytes())
	}
}

// Store is a compare-and-set on the URL's epoch, with an optional date
// condition, and writes all or nothing.
func TestDriverLRUStore(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(10)
	date := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	one := &Object{Status: 200, Body: []byte("one"), Epoch: 5, Date: date, Expires: time.Now().Add(time.Hour)}
	opts := &Options{Epoch: 5, TTL: time.Second, Vary: []string{"Accept"}}

	// A first store creates the record; a second first store fails.
	if ok, _ := d.Store(ctx, &Store{URLKey: "u", Options: opts, ObjectKey: "u/v", Object: one, Tags: []string{"t"}}); !ok {
		t.Fatal("first store refused")
	}
	if ok, _ := d.Store(ctx, &Store{URLKey: "u", Options: &Options{Epoch: 6}}); ok {
		t.Error("a store from epoch 0 succeeded on a URL with an epoch")
	}
	rec, _ := d.Lookup(ctx, "u")
	want := Options{TTL: time.Second, Vary: []string{"Accept"}}
	if rec.Epoch != 5 || rec.Options == nil || !reflect.DeepEqual(*rec.Options, want) || rec.Object != nil {
		t.Fatalf("Lookup = %+v", rec)
	}
	opts.Vary[0] = "Cookie" // the caller's slices are not retained
	if rec, _ := d.Lookup(ctx, "u"); rec.Options.Vary[0] != "Accept" {
		t.Error("the driver retained the caller's Vary list")
	}
	if got, _ := d.Object(ctx, "u/v"); got != one {
		t.Fatal("variant not stored")
	}

	// A store from another epoch writes nothing, tags included.
	before := d.Bytes()
	if ok, _ := d.Store(ctx, &Store{URLKey: "u", Epoch: 4, ObjectKey: "u/w", Object: testObject("w"), Tags: []string{"x"}}); ok {
		t.Error("a store from a stale epoch succeeded")
	}
	if got, _ := d.Object(ctx, "u/w"); got != nil || d.Bytes() != before || len(d.tags) != 1 {
		t.Error("a refused store wrote")
	}

	// IfDate: only over the object of that date.
	two := &Object{Status: 200, Body: []byte("two"), Epoch: 5, Date: date, Expires: time.Now().Add(time.Hour)}
	if ok, _ := d.Store(ctx, &Store{URLKey: "u", Epoch: 5, ObjectKey: "u/v", Object: two, IfDate: date.Add(time.Second)}); ok {
		t.Error("a store over an object of another date succeeded")
	}
	if ok, _ := d.Store(ctx, &Store{URLKey: "u", Epoch: 5, ObjectKey: "u/none", Object: two, IfDate: date}); ok {
		t.Error("a store with IfDate over no object succeeded")
	}
	if ok, _ := d.Store(ctx, &Store{URLKey: "u", Epoch: 5, ObjectKey: "u/v", Object: two, IfDate: date}); !ok {
		t.Error("a store over the object of that date failed")
	}
	if got, _ := d.Object(ctx, "u/v"); got != two {
		t.Error("the recache was not written")
	}

	// Delete removes the object; the options stay.
	if ok, _ := d.Store(ctx, &Store{URLKey: "u", Epoch: 5, ObjectKey: "u/v", Delete: true}); !ok {
		t.Error("delete refused")
	}
	if got, _ := d.Object(ctx, "u/v"); got != nil || d.Len() != 0 || lookupEpoch(d, "u") != 5 {
		t.Errorf("after delete: object %v, Len %d", got, d.Len())
	}
	// The plain object shares the URL's record; deleting it keeps the
	// options.
	three := testObject("three")
	d.Store(ctx, &Store{URLKey: "u", Epoch: 5, ObjectKey: "u", Object: three})
	if rec, _ := d.Lookup(ctx, "u"); rec.Object != three || rec.Options == nil || d.Len() != 1 {
		t.Errorf("plain store: %+v, Len %d", rec, d.Len())
	}
	d.Store(ctx, &Store{URLKey: "u", Epoch: 5, ObjectKey: "u", Delete: true})
	if rec, _ := d.Lookup(ctx, "u"); rec.Object != nil || rec.Options == nil || d.Len() != 0 {
		t.Errorf("plain delete: %+v, Len %d", rec, d.Len())
	}
	if d.Bytes() != d.countedBytes() {
		t.Errorf("Bytes %d, records count %d", d.Bytes(), d.countedBytes())
	}
}

// Purge sets a new epoch and keeps the options; on a URL without a record
// it leaves a mark, which makes a concurrent first fetch's Store fail.
func TestDriverLRUPurge(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(10)
	fetch(t, d, "a", "body")
	d.Purge(ctx, "a", 77)
	rec, _ := d.Lookup(ctx, "a")
	if rec.Epoch != 77 || rec.Options == nil || rec.Options.Epoch != 0 || rec.Object != nil || d.Len() != 0 {
		t.Errorf("after Purge: %+v, Len %d", rec, d.Len())
	}

	// A fetch that read no epoch, then a purge: the store fails.
	d.Lookup(ctx, "b")
	d.Purge(ctx, "b", 88)
	if ok, _ := d.Store(ctx, &Store{URLKey: "b", Options: &Options{Epoch: 1}, ObjectKey: "b", Object: testObject("x")}); ok {
		t.Error("a first store succeeded over a purge mark")
	}
	if rec, _ := d.Lookup(ctx, "b"); rec.Epoch != 88 || rec.Options != nil {
		t.Errorf("mark: %+v", rec)
	}
	// A fetch that read the mark stores over it, and its record counts.
	obj := testObject("y")
	obj.Epoch = 88
	if ok, _ := d.Store(ctx, &Store{URLKey: "b", Epoch: 88, Options: &Options{Epoch: 88}, ObjectKey: "b", Object: obj}); !ok {
		t.Error("a store from the mark's epoch failed")
	}
	if rec, _ := d.Lookup(ctx, "b"); rec.Object != obj || d.Len() != 1 || d.Bytes() != d.countedBytes() {
		t.Errorf("after storing over a mark: %+v, Len %d", rec, d.Len())
	}
}

// Purge marks survive a flood of records: they are crowded out only by
// newer marks, beyond a bounded number.
func TestDriverLRUPurgeMarks(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRUBytes(10, 64<<10)
	d.Purge(ctx, "marked", 5)
	for i := range 1000 {
		fetch(t, d, "flood"+strconv.Itoa(i), "x")
	}
	if lookupEpoch(d, "marked") != 5 {
		t.Fatal("a flood of records crowded out a purge mark")
	}
	maxMarks := d.policy.marks.recs
	for i := range maxMarks - 1 {
		d.Purge(ctx, "m"+strconv.Itoa(i), 6)
	}
	if lookupEpoch(d, "marked") != 5 {
		t.Fatalf("%d newer marks crowded out a mark, want it kept", maxMarks-1)
	}
	d.Purge(ctx, "last", 6)
	if lookupEpoch(d, "marked") != 0 {
		t.Errorf("the oldest of %d+1 marks was kept", maxMarks)
	}
	if d.Bytes() > 64<<10 || d.Bytes() != d.countedBytes() {
		t.Errorf("Bytes %d (records count %d), budget %d", d.Bytes(), d.countedBytes(), 64<<10)
	}
}

// A record purged less than MinPurgeMarkRetention ago and evicted turns
// into a purge mark, so that a fetch that started before the purge still
// fails its Store; one purged longer ago just goes.
func TestDriverLRUEvictedPurgeLeavesMark(t *testing.T) {
	for _, wait := range []time.Duration{0, MinPurgeMarkRetention - time.Second, MinPurgeMarkRetention + 2*time.Second} {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			d := NewDriverLRU(2)
			fetch(t, d, "a", "x")
			d.Purge(ctx, "a", 42)
			time.Sleep(wait)
			// Frequent URLs whose options only are stored (uncacheable
			// ones) crowd the records.
			for i := range 50 {
				learnUncacheable(d, "u"+strconv.Itoa(i%10))
			}
			rec, _ := d.Lookup(ctx, "a")
			if rec.Options != nil {
				t.Fatalf("%v after the purge: the purged record was not evicted", wait)
			}
			if want := wait < MinPurgeMarkRetention; (rec.Epoch == 42) != want {
				t.Errorf("%v after the purge: evicted record left epoch %d, want a mark: %v", wait, rec.Epoch, want)
			}
		})
	}
}

// PurgeTag purges every URL stored with the tag and forgets the tag; the
// index is cleaned when records are evicted, and counts in bytes.
func TestDriverLRUPurgeTag(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(4)
	store := func(key string, tags ...string) {
		d.Store(ctx, &Store{URLKey: key, Options: &Options{Epoch: 1}, ObjectKey: key, Object: testObject(key), Tags: tags})
	}
	store("a", "t1", "t2")
	store("b", "t1")
	store("c", "t2")
	before := d.Bytes()
	d.Store(ctx, &Store{URLKey: "c", Epoch: 1, Tags: []string{"t3", "t2"}})
	if got, want := d.Bytes()-before, int64(len("t3")+lruTagOverhead); got != want {
		t.Errorf("a tag counts %d bytes, want %d", got, want)
	}
	d.PurgeTag(ctx, "t1", 9)
	for key, want := range map[string]uint64{"a": 9, "b": 9, "c": 1} {
		if got := lookupEpoch(d, key); got != want {
			t.Errorf("after PurgeTag(t1): %s has epoch %d, want %d", key, got, want)
		}
	}
	if _, ok := d.tags["t1"]; ok || len(d.tags["t2"]) != 2 {
		t.Errorf("tag index after PurgeTag: %v", d.tags)
	}
	// Purging t1 again (forgotten) purges nothing.
	d.PurgeTag(ctx, "t1", 10)
	if lookupEpoch(d, "a") != 9 {
		t.Error("a forgotten tag purged again")
	}
	// Evicting every tagged record empties the index.
	for i := range 240 {
		learnUncacheable(d, "f"+strconv.Itoa(i%12)) // more than the 8 records
	}
	if len(d.tags) != 0 {
		t.Errorf("tag index holds %d tags after its records were evicted", len(d.tags))
	}
	if d.Bytes() != d.countedBytes() {
		t.Errorf("Bytes %d, records count %d", d.Bytes(), d.countedBytes())
	}
}

// Lookup and Object do not allocate, also on a miss, and create no
// record for a key they do not hold.
func TestDriverLRUReadsDoNotAllocate(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(10)
	fetch(t, d, "k", "body")
	key := []byte("k")
	missing := []byte("missing")
	allocs := testing.AllocsPerRun(100, func() {
		d.Lookup(ctx, string(key))
		d.Object(ctx, string(missing))
	})
	if allocs != 0 {
		t.Errorf("Lookup and Object allocate %v times", allocs)
	}
	if d.records() != 1 {
		t.Errorf("%d records after reads of a missing key, want 1", d.records())
	}
}

// Reads and writes from many goroutines are safe (run with -race) and keep
// the counts exact.
func TestDriverLRUConcurrent(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRUBytes(50, 32<<10)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				key := "k" + strconv.Itoa((i*7+g)%80)
				rec, _ := d.Lookup(ctx, key)
				switch i % 10 {
				case 0:
					d.Purge(ctx, key, uint64(i+1))
				case 1:
					d.PurgeTag(ctx, "t"+strconv.Itoa(g), uint64(i+1))
				default:
					epoch := rec.Epoch
					if epoch == 0 {
						epoch = uint64(i + 1)
					}
					d.Store(ctx, &Store{URLKey: key, Epoch: rec.Epoch, Options: &Options{Epoch: epoch},
						ObjectKey: key + "/v", Object: testObject("body"), Tags: []string{"t" + strconv.Itoa(g)}})
					d.Object(ctx, key+"/v")
				}
			}
		})
	}
	wg.Wait()
	if d.Len() > 50 || d.Bytes() > 32<<10 || d.Bytes() != d.countedBytes() {
		t.Errorf("Len %d, Bytes %d (records count %d)", d.Len(), d.Bytes(), d.countedBytes())
	}
}

func maphash64(d *DriverLRU, key string) uint64 { return maphash.String(d.seed, key) }

// Reads of a hot key write nothing once its frequency is saturated: not
// the sketch, not the record. Hits on one key from many goroutines then
// share every cache line they touch but the shard lock's.
func TestDriverLRUHotReadsWriteNothing(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(10)
	fetch(t, d, "hot", "body")
	d.Store(ctx, &Store{URLKey: "hot", Epoch: lookupEpoch(d, "hot"), ObjectKey: "hot/v", Object: testObject("v")})
	for range 40 {
		d.Lookup(ctx, "hot")
		d.Object(ctx, "hot/v")
	}
	snapshot := func() []uint64 {
		var words []uint64
		for i := range d.sketch.table {
			words = append(words, d.sketch.table[i].Load())
		}
		for i := range d.sketch.door {
			words = append(words, d.sketch.door[i].Load())
		}
		words = append(words, uint64(d.sketch.added.Load()))
		for _, key := range []string{"hot", "hot/v"} {
			r := d.find(key)
			words = append(words, uint64(r.saturated.Load()))
			if r.ref.Load() {
				words = append(words, 1)
			}
		}
		return words
	}
	before := snapshot()
	d.Lookup(ctx, "hot")
	d.Object(ctx, "hot/v")
	if after := snapshot(); !reflect.DeepEqual(before, after) {
		t.Error("reads of a saturated hot key wrote to the sketch or the record")
	}
	if r := d.find("hot"); r.saturated.Load() != d.sketch.gen.Load() || !r.ref.Load() {
		t.Error("the hot record is not known saturated and referenced")
	}
}

// A Store is isolated from concurrent reads: a reader that sees the
// options it wrote also finds the variant it wrote with them.
func TestDriverLRUStoreIsolated(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(4000)
	const n = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			key := "u" + strconv.Itoa(i)
			d.Store(ctx, &Store{URLKey: key, Options: &Options{Epoch: 1, Vary: []string{"X"}},
				ObjectKey: key + "/v", Object: testObject("v")})
		}
	}()
	torn := 0
	for i := range n {
		key := "u" + strconv.Itoa(i)
		for {
			rec, _ := d.Lookup(ctx, key)
			if rec.Options != nil {
				if obj, _ := d.Object(ctx, key+"/v"); obj == nil {
					torn++
				}
				break
			}
		}
	}
	<-done
	if torn > 0 {
		t.Errorf("%d of %d reads saw a store's options without its object", torn, n)
	}
}

// Lookup and Object count accesses to keys the driver does not hold, so
// that a key requested often is admitted at its first Store, and a key
// requested once is not.
func TestDriverLRUFrequencyBeforeStore(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(1) // no window: every newcomer faces admission
	fetch(t, d, "resident", "x")
	fetch(t, d, "resident", "x")
	for range 3 {
		d.Lookup(ctx, "url")
		d.Object(ctx, "url/variant")
	}
	if got := d.sketch.estimate(maphash64(d, "url")); got != 3 {
		t.Errorf("a key looked up 3 times before any store is estimated %d", got)
	}
	if got := d.sketch.estimate(maphash64(d, "url/variant")); got != 3 {
		t.Errorf("an object key read 3 times before any store is estimated %d", got)
	}
	fetch(t, d, "once", "x")
	if rec, _ := d.Lookup(ctx, "resident"); rec.Object == nil {
		t.Fatal("a key requested once replaced one requested twice")
	}
	fetch(t, d, "url", "x")
	if rec, _ := d.Lookup(ctx, "url"); rec.Object == nil {
		t.Error("a key requested often was refused at its first store")
	}
}

// Victims past their RetainUntil lose admission without a contest: they
// can no longer be served.
func TestDriverLRUExpiredVictimsLose(t *testing.T) {
	ctx := context.Background()
	for _, expired := range []bool{false, true} {
		d := NewDriverLRU(1)
		obj := testObject("old")
		if expired {
			obj.Expires = time.Now().Add(-time.Minute)
		}
		for range 5 {
			d.Lookup(ctx, "old")
		}
		d.Store(ctx, &Store{URLKey: "old", Options: &Options{Epoch: 1}, ObjectKey: "old", Object: obj})
		fetch(t, d, "new", "x")
		rec, _ := d.Lookup(ctx, "new")
		if kept := rec.Object != nil; kept != expired {
			t.Errorf("frequent victim expired %v: newcomer admitted %v", expired, kept)
		}
	}
}

// Records read again are promoted to protected, which holds up to 80% of
// the main part, with or without a byte limit.
func TestDriverLRUProtected(t *testing.T) {
	for _, d := range []*DriverLRU{NewDriverLRU(20), NewDriverLRUBytes(20, 1<<20)} {
		for i := range 20 {
			fetch(t, d, "k"+strconv.Itoa(i), "x")
			fetch(t, d, "k"+strconv.Itoa(i), "x") // a hit: the ref bit
		}
		for i := range 40 {
			fetch(t, d, "once"+strconv.Itoa(i), "x") // admission walks promote
		}
		prot := d.policy.lists[segProtected].n
		if prot.objs < 10 || prot.exceeds(d.policy.prot) {
			t.Errorf("protected holds %+v, limit %+v", prot, d.policy.prot)
		}
	}
}
