package microcache_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// heldStoreDriver is an in-process driver (it offers no fetch leases)
// whose Store may be held, so that a miss's commit can be caught in the
// act.
type heldStoreDriver struct {
	microcache.Driver
	mu   sync.Mutex
	gate chan struct{}
}

func (d *heldStoreDriver) hold() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate = make(chan struct{})
	return d.gate
}

func (d *heldStoreDriver) Store(ctx context.Context, st *microcache.Store) (bool, error) {
	d.mu.Lock()
	gate := d.gate
	d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return d.Driver.Store(ctx, st)
}

// sharedDriver stands for a driver shared by a fleet (it offers fetch
// leases, always granted here) whose Store may be held, as a remote
// store's round trip is.
type sharedDriver struct{ heldStoreDriver }

func newSharedDriver() *sharedDriver {
	return &sharedDriver{heldStoreDriver{Driver: microcache.NewDriverLRU(100)}}
}

func (d *sharedDriver) Lease(context.Context, string, time.Duration) (func(), bool, error) {
	return func() {}, true, nil
}

func (d *sharedDriver) Wait(context.Context, string) error { return nil }

// With a shared driver, a miss's response (its header and its whole
// body) reaches its client without waiting for the Store (a round trip to
// the shared store): the Store runs while the response is sent. Over
// HTTP/1.1 and HTTP/2, with a real server.
func TestSharedDriverStoreOffTheClientsPath(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "h1", true: "h2"}[h2], func(t *testing.T) {
			d := newSharedDriver()
			var calls sync.WaitGroup
			app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "fresh")
			})
			_, s := servePair(t, microcache.Config{TTL: time.Minute, Exposed: true, CollapsedForwarding: true, Driver: d}, app, h2)
			gate := d.hold()
			opened := false
			open := func() {
				if !opened {
					opened = true
					close(gate)
				}
			}
			defer open()
			type answer struct {
				state, body string
				err         error
			}
			got := make(chan answer, 1)
			calls.Add(1)
			go func() {
				defer calls.Done()
				res, err := s.Client().Get(s.URL + "/item")
				if err != nil {
					got <- answer{err: err}
					return
				}
				defer res.Body.Close()
				// The whole body, by its length: over HTTP/2 the stream's
				// end follows the Store (the handler waits for it).
				b := make([]byte, res.ContentLength)
				_, err = io.ReadFull(res.Body, b)
				got <- answer{state(res), string(b), err}
			}()
			select {
			case a := <-got:
				if a.err != nil || a.state != "MISS" || a.body != "fresh" {
					t.Errorf("first GET: %q %q, %v", a.state, a.body, a.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the client got no answer while the Store was held: the Store is on its path")
			}
			open()
			calls.Wait()
			d.mu.Lock()
			d.gate = nil
			d.mu.Unlock()
			deadline := time.Now().Add(10 * time.Second)
			for {
				res, err := s.Client().Get(s.URL + "/item")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if state(res) == "HIT" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no HIT once the Store went through: %s", state(res))
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// With a shared driver, a slow client leading a collapsed miss holds up
// neither the Store nor later requests for the key: they are hits.
func TestSharedDriverSlowLeaderDoesNotHoldTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-release
			io.WriteString(w, "call "+itoa(n))
		}}
		d := newSharedDriver()
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true, Driver: d}).Middleware(be)
		slow := newBlockingWriter()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(slow, httptest.NewRequest("GET", "/", nil))
		}()
		synctest.Wait() // the slow client leads the backend call
		close(release)
		<-slow.entered
		synctest.Wait() // the Store, concurrent with the blocked write
		expect(t, get(t, h, "/"), "HIT", "call 1")
		close(slow.unblock)
		<-done
		expect(t, slow.Result(), "MISS", "call 1")
	})
}

// panickingStoreDriver is a shared driver whose Store panics.
type panickingStoreDriver struct{ *sharedDriver }

func (d *panickingStoreDriver) Store(context.Context, *microcache.Store) (bool, error) {
	panic("store exploded")
}

// A shared driver's Store that panics, while it runs beside the response,
// panics in the request's own goroutine, as an in-process driver's does
// (net/http then recovers it for that request), rather than on a
// goroutine of its own, which would end the process; and the next
// request for the URL is not held by the failed call.
func TestSharedDriverStorePanicStaysWithItsRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &panickingStoreDriver{newSharedDriver()}
		be := &backend{}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true, Driver: d}).Middleware(be)
		for i := range 2 {
			func() {
				defer func() {
					if p := recover(); p != "store exploded" {
						t.Errorf("request %d: recovered %v, want the Store's panic", i, p)
					}
				}()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			}()
		}
	})
}
