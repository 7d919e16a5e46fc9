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

func bigObject(epoch uint64, size int, date time.Time) *microcache.Object {
	body := bytes.Repeat([]byte{'x'}, size)
	return &microcache.Object{Status: 200, Body: body, Size: size, Epoch: epoch, Date: date, Expires: time.Now().Add(time.Hour)}
}

// A replica that already holds a large object reads only its header from
// Redis when it checks it again ("=" from the lookup script), and the
// whole object when it changed (a recache keeps the Date but not the
// Expires). Objects over MaxObjectBytes stay in the L1 of the replica that
// stored them.
func TestLargeObjects(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	opts := redisdriver.Options{Prefix: "big:", MaxObjectBytes: 100 << 10, MaxOptionsAge: time.Nanosecond, OpTimeout: time.Second}
	a, b := newDriver(t, c, opts), newDriver(t, c, opts)
	ctx := context.Background()
	const e = 99
	date := time.Now()
	first := bigObject(e, 64<<10, date)
	if ok, err := a.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: e}, ObjectKey: "u", Object: first}); !ok || err != nil {
		t.Fatalf("Store: %v %v", ok, err)
	}
	r1, err := b.Lookup(ctx, "u")
	if err != nil || r1.Object == nil || !bytes.Equal(r1.Object.Body, first.Body) {
		t.Fatalf("first lookup on b: %v, object %v", err, r1.Object != nil)
	}
	r2, err := b.Lookup(ctx, "u")
	if err != nil || r2.Object != r1.Object {
		t.Fatalf("second lookup on b: %v; want the object b already held (same pointer)", err)
	}
	again := *first
	again.Expires = first.Expires.Add(time.Minute)
	if ok, err := a.Store(ctx, &microcache.Store{URLKey: "u", Epoch: e, ObjectKey: "u", Object: &again, IfDate: date}); !ok || err != nil {
		t.Fatalf("recache: %v %v", ok, err)
	}
	r3, err := b.Lookup(ctx, "u")
	if err != nil || r3.Object == nil || !r3.Object.Expires.Equal(again.Expires) {
		t.Fatalf("lookup after the recache: %v; want the recached object", err)
	}

	huge := bigObject(e, 200<<10, date)
	if ok, err := a.Store(ctx, &microcache.Store{URLKey: "u", Epoch: e, ObjectKey: "u", Object: huge}); !ok || err != nil {
		t.Fatalf("Store of a huge object: %v %v", ok, err)
	}
	if r, _ := a.Lookup(ctx, "u"); r.Object != huge {
		t.Error("the replica that stored a huge object does not serve it from L1")
	}
	if r, _ := b.Lookup(ctx, "u"); r.Object != nil || r.Epoch != e {
		t.Errorf("another replica: epoch %d, object %v; want epoch %d and no object (huge objects stay in L1)", r.Epoch, r.Object != nil, e)
	}
	// Variants take the same paths through Object.
	v := bigObject(e, 64<<10, date)
	if ok, err := a.Store(ctx, &microcache.Store{URLKey: "u", Epoch: e, ObjectKey: "u|v", Object: v}); !ok || err != nil {
		t.Fatalf("Store of a variant: %v %v", ok, err)
	}
	o1, _ := b.Object(ctx, "u|v")
	o2, _ := b.Object(ctx, "u|v")
	if o1 == nil || o2 != o1 {
		t.Error("Object on b: want the variant, then the same pointer again")
	}
}
