package microcache

import (
	"context"
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
