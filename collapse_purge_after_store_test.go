package microcache_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// lateReplyDriver makes its Stores and then, when held, waits before
// returning: a remote store's reply still on its way once the write has
// landed. Wrapped in lateReplySharedDriver it offers fetch leases (a
// shared driver: the Store runs off the client's path).
type lateReplyDriver struct {
	microcache.Driver
	mu   sync.Mutex
	gate chan struct{} // when not nil, the next Store waits for it after landing
}

func (d *lateReplyDriver) hold() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate = make(chan struct{})
	return d.gate
}

func (d *lateReplyDriver) Store(ctx context.Context, st *microcache.Store) (bool, error) {
	ok, err := d.Driver.Store(ctx, st)
	d.mu.Lock()
	gate := d.gate
	d.gate = nil // once
	d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return ok, err
}

type lateReplySharedDriver struct{ *lateReplyDriver }

func (d lateReplySharedDriver) Lease(context.Context, string, time.Duration) (func(), bool, error) {
	return func() {}, true, nil
}

func (d lateReplySharedDriver) Wait(context.Context, string) error { return nil }

// A GET that arrives after a POST's answer is not given the answer of a
// backend call made before the POST, even when that answer's Store landed
// before the purge: the flight of the miss is still registered until the
// Store's reply is back, and a request that joins it then (its lookup saw
// the purge) must not take the purged answer.
func TestCollapsedRequestAfterAPurgeThatFollowedTheStore(t *testing.T) {
	for name, shared := range map[string]bool{"in-process": false, "shared": true} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := newVersionedOrigin()
				ld := &lateReplyDriver{Driver: microcache.NewDriverLRU(100)}
				var d microcache.Driver = ld
				if shared {
					d = lateReplySharedDriver{ld}
				}
				h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, CollapsedForwarding: true, Driver: d}).Middleware(o)
				gate := ld.hold()
				done := make(chan struct{})
				go func() {
					defer close(done)
					expect(t, get(t, h, "/doc"), "MISS", "v1")
				}()
				synctest.Wait() // v1 is stored; the Store's reply is held, the flight registered
				if res := serve(t, h, http.MethodPost, "/doc"); res.StatusCode != http.StatusOK {
					t.Fatalf("POST: status %d", res.StatusCode)
				}
				// The POST has been answered: a GET now must see v2.
				got := make(chan *http.Response, 1)
				go func() { got <- get(t, h, "/doc") }()
				synctest.Wait()
				close(gate)
				<-done
				res := <-got
				if b := body(t, res); b != "v2" {
					t.Errorf("GET after the POST's answer: %s %q, want v2 (the purged answer of a flight whose Store's reply was late)", state(res), b)
				}
			})
		})
	}
}
