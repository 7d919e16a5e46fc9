package microcache

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"
)

func testObject(body string) *Object {
	return &Object{Status: 200, Body: []byte(body), Size: len(body)}
}

// The object limit holds per shard; evicted records are counted; Len
// counts objects only.
func TestDriverLRUObjectLimit(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(lruShards) // one object per shard
	for i := range 1000 {
		d.SetObject(ctx, "k"+strconv.Itoa(i), testObject("x"))
	}
	if n := d.Len(); n > lruShards || n == 0 {
		t.Errorf("Len = %d, want 1..%d", n, lruShards)
	}
	if d.Evictions() < 1000-lruShards {
		t.Errorf("Evictions = %d, want at least %d", d.Evictions(), 1000-lruShards)
	}
}

// The byte limit evicts least recently used records; an object larger
// than a shard's share is never retained.
func TestDriverLRUByteLimit(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRUBytes(1<<20, 16*8<<10) // 8 KiB per shard
	big := testObject(string(make([]byte, 16<<10)))
	d.SetObject(ctx, "big", big)
	if obj, _ := d.GetObject(ctx, "big"); obj != nil {
		t.Error("an object over the shard's byte share was retained")
	}
	if d.Bytes() != 0 {
		t.Errorf("Bytes = %d after evicting everything", d.Bytes())
	}
	for i := range 1000 {
		d.SetObject(ctx, "k"+strconv.Itoa(i), testObject(string(make([]byte, 1000))))
	}
	if b := d.Bytes(); b > 16*8<<10 || b <= 0 {
		t.Errorf("Bytes = %d, want within the 128 KiB budget", b)
	}
}

// A record read since the last additions survives eviction before ones
// that were not (recency is approximate but real).
func TestDriverLRURecency(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(lruShards * 3)
	// Find three keys of one shard.
	var keys []string
	s0 := d.shard("a0")
	for i := 0; len(keys) < 4; i++ {
		k := "a" + strconv.Itoa(i)
		if d.shard(k) == s0 {
			keys = append(keys, k)
		}
	}
	for _, k := range keys[:3] {
		d.SetObject(ctx, k, testObject(k))
	}
	d.GetObject(ctx, keys[0]) // now the most recently used
	d.SetObject(ctx, keys[3], testObject(keys[3]))
	if obj, _ := d.GetObject(ctx, keys[0]); obj == nil {
		t.Error("the recently read record was evicted")
	}
	if obj, _ := d.GetObject(ctx, keys[1]); obj != nil {
		t.Error("the least recently used record survived")
	}
}

// Options and the plain object share a record: deleting the object keeps
// the options, and one lookup returns both.
func TestDriverLRUSharedRecord(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(10)
	d.SetOptions(ctx, "k", Options{Epoch: 7, TTL: time.Second})
	d.SetObject(ctx, "k", testObject("body"))
	if o, obj, ok := d.lookup("k"); !ok || o.Epoch != 7 || obj == nil {
		t.Fatalf("lookup: %v %v %v", o, obj, ok)
	}
	before := d.Bytes()
	d.DeleteObject(ctx, "k")
	if o, obj, ok := d.lookup("k"); !ok || o.Epoch != 7 || obj != nil {
		t.Errorf("after DeleteObject: %v %v %v", o, obj, ok)
	}
	if d.Bytes() >= before || d.Len() != 0 || d.Evictions() != 0 {
		t.Errorf("Bytes %d (was %d), Len %d, Evictions %d", d.Bytes(), before, d.Len(), d.Evictions())
	}
}

// Records with equal options but for the epoch share one stored copy;
// each keeps its own epoch, and the caller's slices are not retained.
func TestDriverLRUSharedPolicy(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(100)
	vary := []string{"Accept-Encoding"}
	d.SetOptions(ctx, "a", Options{Epoch: 1, TTL: time.Second, Vary: vary})
	d.SetOptions(ctx, "b", Options{Epoch: 2, TTL: time.Second, Vary: []string{"Accept-Encoding"}})
	d.SetOptions(ctx, "c", Options{Epoch: 3, TTL: 2 * time.Second, Vary: vary})
	vary[0] = "Cookie" // the caller reuses its slice

	record := func(key string) *lruRecord {
		s := d.shard(key)
		r, ok := s.records.Peek(key)
		if !ok {
			t.Fatalf("no record under %q", key)
		}
		return r
	}
	if record("a").policy == nil || record("a").policy != record("b").policy {
		t.Error("equal options are stored twice")
	}
	if record("a").policy == record("c").policy {
		t.Error("options with another TTL share a copy")
	}
	for key, want := range map[string]Options{
		"a": {Epoch: 1, TTL: time.Second, Vary: []string{"Accept-Encoding"}},
		"b": {Epoch: 2, TTL: time.Second, Vary: []string{"Accept-Encoding"}},
		"c": {Epoch: 3, TTL: 2 * time.Second, Vary: []string{"Accept-Encoding"}},
	} {
		got, ok, _ := d.GetOptions(ctx, key)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("GetOptions(%q) = %+v, %v; want %+v", key, got, ok, want)
		}
	}
	// Interleaved stores of a few policies keep one copy of each.
	for i := range 40 {
		d.SetOptions(ctx, "k"+strconv.Itoa(i), Options{Epoch: uint64(i), TTL: time.Duration(1+i%3) * time.Second})
	}
	copies := map[*Options]bool{}
	for i := range 40 {
		copies[record("k"+strconv.Itoa(i)).policy] = true
	}
	if len(copies) != 3 {
		t.Errorf("40 records of 3 policies hold %d copies, want 3", len(copies))
	}
	// A new epoch for one URL (a purge) leaves the others' alone.
	d.SetOptions(ctx, "a", Options{Epoch: 9, TTL: time.Second, Vary: []string{"Accept-Encoding"}})
	if o, _, _ := d.GetOptions(ctx, "b"); o.Epoch != 2 {
		t.Errorf("b's epoch is %d after a's changed, want 2", o.Epoch)
	}
}

// storeFetched checks the epoch and stores options and object in one step.
func TestDriverLRUStoreFetched(t *testing.T) {
	ctx := context.Background()
	d := NewDriverLRU(10)

	// A first call stores its own epoch; a concurrent first call adopts it.
	obj := testObject("one")
	if epoch, ok := d.storeFetched("k", Options{Epoch: 5, TTL: time.Second}, false, obj, false); !ok || epoch != 5 || obj.Epoch != 5 {
		t.Fatalf("first store: epoch %d ok %v, object epoch %d", epoch, ok, obj.Epoch)
	}
	obj2 := testObject("two")
	if epoch, ok := d.storeFetched("k", Options{Epoch: 6, TTL: time.Second}, false, obj2, false); !ok || epoch != 5 || obj2.Epoch != 5 {
		t.Errorf("concurrent first store: epoch %d ok %v, object epoch %d; want 5", epoch, ok, obj2.Epoch)
	}

	// A call that started from another epoch (purged since) stores nothing.
	before := d.Bytes()
	if _, ok := d.storeFetched("k", Options{Epoch: 4, TTL: time.Hour}, true, testObject("stale"), false); ok {
		t.Error("a call from a purged epoch stored")
	}
	if o, got, _ := d.lookup("k"); got != obj2 || o.TTL != time.Second || d.Bytes() != before {
		t.Errorf("after the refused store: object %v, TTL %v, bytes %d (was %d)", got, o.TTL, d.Bytes(), before)
	}

	// drop removes the object and keeps the options.
	if _, ok := d.storeFetched("k", Options{Epoch: 5, TTL: time.Second, Uncacheable: true}, true, nil, true); !ok {
		t.Fatal("drop refused")
	}
	if o, got, found := d.lookup("k"); !found || !o.Uncacheable || got != nil || d.Len() != 0 {
		t.Errorf("after drop: options %+v found %v, object %v, Len %d", o, found, got, d.Len())
	}
	if got, _ := d.GetObject(ctx, "k"); got != nil {
		t.Error("GetObject after drop returned an object")
	}
}
