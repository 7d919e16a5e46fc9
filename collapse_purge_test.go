package microcache_test

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// A GET that arrives after a POST's answer (the POST purged the URL) is
// not given the answer of a backend call made before the POST: the flight
// of a miss stays registered until its Store is made, and that Store
// fails (the purge won), so a request that joins the flight meanwhile
// waits for the Store and, seeing it fail, calls the backend itself.
func TestCollapsedRequestAfterAPurge(t *testing.T) {
	for name, shared := range map[string]bool{"in-process": false, "shared": true} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := newVersionedOrigin()
				var d microcache.Driver
				var hold func() chan struct{}
				if shared {
					sd := newSharedDriver()
					d, hold = sd, sd.hold
				} else {
					hd := &heldStoreDriver{Driver: microcache.NewDriverLRU(100)}
					d, hold = hd, hd.hold
				}
				h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, CollapsedForwarding: true, Driver: d}).Middleware(o)
				gate := hold()
				done := make(chan struct{})
				go func() {
					defer close(done)
					expect(t, get(t, h, "/doc"), "MISS", "v1")
				}()
				synctest.Wait() // the first GET's Store is held; its flight is registered
				if res := serve(t, h, http.MethodPost, "/doc"); res.StatusCode != http.StatusOK {
					t.Fatalf("POST: status %d", res.StatusCode)
				}
				// The POST has been answered: a GET now must see v2.
				got := make(chan *http.Response, 1)
				go func() { got <- get(t, h, "/doc") }()
				synctest.Wait()
				select {
				case res := <-got:
					if b := body(t, res); b != "v2" {
						t.Errorf("GET after the POST's answer: %s %q, want v2 (the pre-POST answer of a flight whose Store was still held)", state(res), b)
					}
					close(gate)
				default:
					close(gate)
					res := <-got
					if b := body(t, res); b != "v2" {
						t.Errorf("GET after the POST's answer: %s %q, want v2", state(res), b)
					}
				}
				<-done
			})
		})
	}
}

// The same with the leader still in its backend call when the POST is
// answered: a GET that joins the flight after the POST's answer does not
// get the leader's answer (produced by a call made before the POST), whose
// Store fails.
func TestCollapsedRequestAfterAPurgeSlowBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newVersionedOrigin()
		h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, CollapsedForwarding: true, Driver: microcache.NewDriverLRU(100)}).Middleware(o)
		o.slow.Store(true)
		done := make(chan struct{})
		go func() {
			defer close(done)
			expect(t, get(t, h, "/doc"), "MISS", "v1")
		}()
		synctest.Wait() // the first GET waits in the backend, having read v1
		o.slow.Store(false)
		if res := serve(t, h, http.MethodPost, "/doc"); res.StatusCode != http.StatusOK {
			t.Fatalf("POST: status %d", res.StatusCode)
		}
		got := make(chan *http.Response, 1)
		go func() { got <- get(t, h, "/doc") }() // after the POST's answer
		synctest.Wait()                          // it joins the flight
		close(o.gate)
		<-done
		res := <-got
		if b := body(t, res); b != "v2" {
			t.Errorf("GET after the POST's answer: %s %q, want v2", state(res), b)
		}
	})
}
