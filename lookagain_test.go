package microcache_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// gatedLeaser is a shared driver whose fetch lease is always held by
// another process: Lease refuses it, and Wait returns when the test
// releases the n-th wait. Lookups numbered in holdLookups wait for
// lookupGate.
type gatedLeaser struct {
	microcache.Driver
	mu          sync.Mutex
	waits       []chan struct{} // by Wait call, in order
	waitCalls   atomic.Int64
	lookups     atomic.Int64
	holdLookups map[int64]bool
	lookupGate  chan struct{}
}

func (d *gatedLeaser) Lease(context.Context, string, time.Duration) (func(), bool, error) {
	return nil, false, nil
}

func (d *gatedLeaser) wait(i int) chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.waits) <= i {
		d.waits = append(d.waits, make(chan struct{}))
	}
	return d.waits[i]
}

func (d *gatedLeaser) Wait(ctx context.Context, _ string) error {
	ch := d.wait(int(d.waitCalls.Add(1) - 1))
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *gatedLeaser) Lookup(ctx context.Context, urlKey string) (microcache.Record, error) {
	if d.holdLookups[d.lookups.Add(1)] {
		<-d.lookupGate
	}
	return d.Driver.Lookup(ctx, urlKey)
}

// A request looks the object up again at most once after waiting for
// another process's lease: if, looking again, it joins a flight whose
// leader was itself told to look again, it calls the backend rather than
// look again and again.
func TestLookAgainAtMostOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &gatedLeaser{Driver: microcache.NewDriverLRU(100), holdLookups: map[int64]bool{2: true}, lookupGate: make(chan struct{})}
		var calls atomic.Int64
		be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "call "+itoa(calls.Add(1)))
		})
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Driver: d}).Middleware(be)
		var wg sync.WaitGroup
		wg.Go(func() { get(t, h, "/") }) // A: lookup 1, leads, waits (wait 0)
		synctest.Wait()
		close(d.wait(0)) // A looks again: lookup 2, held
		synctest.Wait()
		wg.Go(func() { get(t, h, "/") }) // C: lookup 3, leads a new flight, waits (wait 1)
		synctest.Wait()
		close(d.lookupGate) // A's second lookup misses: it joins C's flight
		synctest.Wait()
		close(d.wait(1)) // C is told to look again, and so is everyone in its flight
		synctest.Wait()
		for i := 2; i < 10; i++ {
			close(d.wait(i)) // nothing should wait any more
		}
		wg.Wait()
		// A: 2 lookups; C: 2 lookups. A third lookup by A is a second look.
		if n := d.lookups.Load(); n != 4 {
			t.Errorf("%d lookups, want 4: a request looked the object up again more than once", n)
		}
	})
}
