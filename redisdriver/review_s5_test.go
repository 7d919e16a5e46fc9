package redisdriver_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
)

// A process that read an object from Redis which its L1 does not keep (too
// large for L1's byte limit here; evicted, or refused admission, alike)
// is refused the lease although nobody stored anything since it read
// (Lease takes "L1 holds nothing" as "read nothing"): it then waits for
// no one, looks again, and fetches without a lease, as every other
// replica in that state does, so the fleet's misses of that key are not
// collapsed and LateLeases counts leases that were not late.
func TestReviewS5LeaseRefusedForAnObjectL1DoesNotKeep(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	opts := redisdriver.Options{Prefix: "l1drop:", OpTimeout: time.Second, L1Bytes: 16 << 10}
	a, b := newDriver(t, c, opts), newDriver(t, c, opts)
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 64<<10)
	// Stale already (a miss for the middleware), kept in Redis for its
	// stale-if-error window.
	obj := &microcache.Object{Status: 200, Body: body, Size: len(body), Epoch: 7, Date: time.Now().Add(-time.Minute),
		Expires: time.Now().Add(-time.Second), StaleIfError: time.Hour}
	st := &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: 7, TTL: time.Minute, StaleIfError: time.Hour}, ObjectKey: "u", Object: obj}
	if ok, err := a.Store(ctx, st); !ok || err != nil {
		t.Fatalf("a's Store: %v, %v", ok, err)
	}
	rec, err := b.Lookup(ctx, "u")
	if err != nil || rec.Object == nil || !bytes.Equal(rec.Object.Body, body) {
		t.Fatalf("b's Lookup: %v, %v", rec.Object != nil, err)
	}
	// Nothing was stored since b's Lookup: b should get the lease.
	release, held, err := b.Lease(ctx, "u", time.Minute)
	if err != nil || !held {
		t.Errorf("b's Lease right after its Lookup, nothing stored since: held %v, %v (LateLeases %d); want held",
			held, err, b.Stats().LateLeases)
	}
	if release != nil {
		release()
	}
}
