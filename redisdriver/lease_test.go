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

// One process holds a lease at a time; its release wakes a waiting
// process at once (by pub/sub: the poll interval here is far longer than
// the test); a token-checked release never frees another holder's lease.
func TestLeaseRelease(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	opts := redisdriver.Options{Prefix: "lease:", LeasePoll: time.Hour, OpTimeout: time.Second}
	a, b := newDriver(t, c, opts), newDriver(t, c, opts)
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	ctx := context.Background()
	release, held, err := a.Lease(ctx, "obj", time.Minute)
	if err != nil || !held {
		t.Fatalf("first Lease: held %v, %v", held, err)
	}
	if _, held, err := b.Lease(ctx, "obj", time.Minute); err != nil || held {
		t.Fatalf("second Lease while held: held %v, %v", held, err)
	}
	waited := make(chan error)
	go func() { waited <- b.Wait(ctx, "obj") }()
	select {
	case err := <-waited:
		t.Fatalf("Wait returned %v while the lease is held", err)
	case <-time.After(50 * time.Millisecond):
	}
	start := time.Now()
	release()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("waiter woken %v after the release", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("the release did not wake the waiter")
	}
	// A's lease is gone: b takes it; a's second release is a no-op and
	// leaves b's lease alone.
	_, held, err = b.Lease(ctx, "obj", time.Minute)
	if err != nil || !held {
		t.Fatalf("Lease after the release: held %v, %v", held, err)
	}
	release()
	if _, held, _ := a.Lease(ctx, "obj", time.Minute); held {
		t.Error("a stale release freed another process's lease")
	}
}

// A leaseholder that dies never releases: the others wait until the
// lease's time to live has passed, found by polling.
func TestLeaseExpires(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	opts := redisdriver.Options{Prefix: "lease:", LeasePoll: 10 * time.Millisecond, OpTimeout: time.Second}
	dead, alive := newDriver(t, c, opts), newDriver(t, c, opts)
	ctx := context.Background()
	const ttl = 200 * time.Millisecond
	if _, held, err := dead.Lease(ctx, "obj", ttl); err != nil || !held {
		t.Fatalf("Lease: held %v, %v", held, err)
	}
	start := time.Now()
	if err := alive.Wait(ctx, "obj"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < ttl/2 || took > ttl+500*time.Millisecond {
		t.Errorf("waited %v for a dead holder's lease of %v", took, ttl)
	}
	if _, held, err := alive.Lease(ctx, "obj", ttl); err != nil || !held {
		t.Errorf("Lease after expiry: held %v, %v", held, err)
	}
	// Wait honours its context.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := dead.Wait(wctx, "obj"); err != context.DeadlineExceeded {
		t.Errorf("Wait with a context that ends: %v, want DeadlineExceeded", err)
	}
}

// A process that looked an object up, found none, and only then tries
// the lease, after another process stored the object and released its
// lease, is not given the lease (which would make it fetch a second
// time): Lease answers not held, Wait returns at once, and the Lookup
// that follows finds the object.
func TestLeaseAfterAnotherStored(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	opts := redisdriver.Options{Prefix: "late:", OpTimeout: time.Second}
	a, b := newDriver(t, c, opts), newDriver(t, c, opts)
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	ctx := context.Background()
	for _, tc := range []struct{ urlKey, objKey string }{{"plain", "plain"}, {"varied", "varied|variant"}} {
		urlKey, objKey := tc.urlKey, tc.objKey
		t.Run(objKey, func(t *testing.T) {
			if rec, err := b.Lookup(ctx, urlKey); err != nil || rec.Object != nil {
				t.Fatalf("b's first Lookup: %+v, %v", rec, err)
			}
			if o, err := b.Object(ctx, objKey); err != nil || (o != nil && objKey != urlKey) {
				t.Fatalf("b's first Object: %v, %v", o, err)
			}
			release, held, err := a.Lease(ctx, objKey, time.Minute)
			if err != nil || !held {
				t.Fatalf("a's Lease: held %v, %v", held, err)
			}
			rec, _ := a.Lookup(ctx, urlKey)
			obj := &microcache.Object{Status: 200, Body: []byte("x"), Size: 1, Date: time.Now(), Expires: time.Now().Add(time.Hour)}
			st := &microcache.Store{URLKey: urlKey, Epoch: rec.Epoch, ObjectKey: objKey, Object: obj}
			if rec.Epoch == 0 {
				st.Options = &microcache.Options{Epoch: 7, TTL: time.Minute}
				st.Object.Epoch = 7
			} else {
				st.Object.Epoch = rec.Epoch
			}
			if ok, err := a.Store(ctx, st); !ok || err != nil {
				t.Fatalf("a's Store: %v, %v", ok, err)
			}
			release()
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if err := a.Wait(wctx, objKey); err != nil { // until the release is done
				t.Fatalf("a's Wait for its own release: %v", err)
			}
			_, held, err = b.Lease(ctx, objKey, time.Minute)
			if err != nil || held {
				t.Fatalf("b's Lease after a stored the object: held %v, %v; want not held", held, err)
			}
			if err := b.Wait(wctx, objKey); err != nil {
				t.Fatalf("b's Wait: %v", err)
			}
			var got *microcache.Object
			if objKey == urlKey {
				r, _ := b.Lookup(ctx, urlKey)
				got = r.Object
			} else {
				got, _ = b.Object(ctx, objKey)
			}
			if got == nil || got.Epoch != st.Object.Epoch {
				t.Fatalf("b's Lookup after the wait: %v, want the object a stored", got)
			}
		})
	}
	if n := b.Stats().LateLeases; n != 2 {
		t.Errorf("Stats().LateLeases = %d, want 2", n)
	}
}

// An object gone from Redis (expired, or flushed) while a process's L1
// still holds it does not refuse that process the lease: nobody fetched
// it, and refusing would make every replica fetch without one.
func TestLeaseAfterTheObjectWentAway(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	d := newDriver(t, c, redisdriver.Options{Prefix: "gone:", OpTimeout: time.Second})
	waitSubscribed(t, d)
	ctx := context.Background()
	obj := &microcache.Object{Status: 200, Body: []byte("x"), Size: 1, Epoch: 7, Date: time.Now(), Expires: time.Now().Add(time.Hour)}
	opts := &microcache.Options{Epoch: 7, TTL: time.Hour}
	if ok, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: opts, ObjectKey: "u", Object: obj}); !ok || err != nil {
		t.Fatalf("Store: %v, %v", ok, err)
	}
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if o, _ := d.L1().Object(ctx, "u"); o != obj {
		t.Fatal("L1 does not hold the object stored")
	}
	if _, held, err := d.Lease(ctx, "u", time.Minute); err != nil || !held {
		t.Errorf("Lease after the object left Redis: held %v, %v; want held", held, err)
	}
}

// A process that read an object from Redis which its L1 does not keep (too
// large for L1's byte limit here; evicted, or refused admission, alike)
// gets the lease when nobody stored anything since it read: what it read
// is remembered apart from L1. (Taking "L1 holds nothing" for "read
// nothing" refused it the lease, and every replica in that state fetched
// without one.)
func TestLeaseForAnObjectL1DoesNotKeep(t *testing.T) {
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
