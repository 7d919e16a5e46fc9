package microcache_test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/drivertest"
)

// testDrivers are the drivers the interleaving tests run on: the in-memory
// one, which keeps pointers, and ones that keep records as bytes.
func testDrivers() map[string]func() microcache.Driver {
	return map[string]func() microcache.Driver{
		"lru":      func() microcache.Driver { return microcache.NewDriverLRU(100) },
		"encoding": func() microcache.Driver { return drivertest.NewEncodingDriver() },
	}
}

// versionedOrigin answers GET with "v<N>", N the number of successful
// POSTs so far plus one, read when the GET arrives; a GET waits on gate
// when slow is set; POST bumps the version.
type versionedOrigin struct {
	version atomic.Int64
	slow    atomic.Bool
	gate    chan struct{}
	header  func(h http.Header, r *http.Request)
}

func newVersionedOrigin() *versionedOrigin {
	o := &versionedOrigin{gate: make(chan struct{})}
	o.version.Store(1)
	return o
}

func (o *versionedOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		o.version.Add(1)
		io.WriteString(w, "posted")
		return
	}
	v := o.version.Load()
	if o.slow.Load() {
		<-o.gate
	}
	if o.header != nil {
		o.header(w.Header(), r)
	}
	io.WriteString(w, "v"+itoa(v))
}

// A successful POST that lands while the URL's very first GET waits for
// the backend wins: the GET's answer predates the POST and is not stored.
// Before purges left a mark on URLs without options, the pre-POST answer
// was stored and served for the whole TTL.
func TestInterleavingPurgeBeatsFirstGet(t *testing.T) {
	for name, newDriver := range testDrivers() {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := newVersionedOrigin()
				h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, Driver: newDriver()}).Middleware(o)
				o.slow.Store(true)
				done := make(chan struct{})
				go func() {
					defer close(done)
					expect(t, get(t, h, "/doc"), "MISS", "v1")
				}()
				synctest.Wait() // the first GET waits in the backend
				o.slow.Store(false)
				if res := serve(t, h, http.MethodPost, "/doc"); res.StatusCode != http.StatusOK {
					t.Fatalf("POST: status %d", res.StatusCode)
				}
				close(o.gate)
				<-done
				expect(t, get(t, h, "/doc"), "MISS", "v2")
				expect(t, get(t, h, "/doc"), "HIT", "v2")
			})
		})
	}
}

// A pass-through GET that relearns an uncacheable URL's options must not
// write back the epoch it read before its backend call: a POST that landed
// meanwhile would be undone, and a variant stored before the URL turned
// uncacheable would come back as a HIT with pre-POST content.
func TestInterleavingPurgeBeatsRelearn(t *testing.T) {
	for name, newDriver := range testDrivers() {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := newVersionedOrigin()
				var nocache atomic.Bool
				o.header = func(h http.Header, r *http.Request) {
					h.Set("Vary", "X-Lang")
					if r.Header.Get("X-Lang") == "en" {
						h.Set(microcache.HeaderTTL, "1") // fr keeps the Config's hour
					}
					if nocache.Load() {
						h.Set(microcache.HeaderNocache, "1")
					}
				}
				h := newCache(t, microcache.Config{TTL: time.Hour, Exposed: true, Driver: newDriver()}).Middleware(o)
				expect(t, get(t, h, "/doc", "X-Lang", "en"), "MISS", "v1")
				expect(t, get(t, h, "/doc", "X-Lang", "fr"), "MISS", "v1")
				expect(t, get(t, h, "/doc", "X-Lang", "fr"), "HIT", "v1")
				// en turns uncacheable: the URL passes through from now on,
				// while fr's object of this epoch stays in the driver.
				nocache.Store(true)
				time.Sleep(2 * time.Second) // en is stale, fr fresh
				expect(t, get(t, h, "/doc", "X-Lang", "en"), "MISS", "v1")
				// A slow pass-through whose answer is storable again.
				nocache.Store(false)
				o.slow.Store(true)
				done := make(chan struct{})
				go func() {
					defer close(done)
					get(t, h, "/doc", "X-Lang", "en")
				}()
				synctest.Wait()
				o.slow.Store(false)
				if res := serve(t, h, http.MethodPost, "/doc"); res.StatusCode != http.StatusOK {
					t.Fatalf("POST: status %d", res.StatusCode)
				}
				close(o.gate)
				<-done
				if res := get(t, h, "/doc", "X-Lang", "fr"); state(res) == microcache.StatusHit {
					t.Errorf("fr after the POST: HIT %q: the purge was undone by the relearning GET", body(t, res))
				}
			})
		})
	}
}

// Stale recache stores the stale fallback again as fresh when the backend
// fails, but never over a newer object that another request stored while
// the failing call ran: that newer object keeps being served.
func TestInterleavingRecacheKeepsNewerObject(t *testing.T) {
	for name, newDriver := range testDrivers() {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gate := make(chan struct{})
				be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
					switch n {
					case 2: // fails, slowly
						<-gate
						w.WriteHeader(http.StatusInternalServerError)
					default:
						io.WriteString(w, "call "+itoa(n))
					}
				}}
				h := newCache(t, microcache.Config{
					TTL: time.Second, StaleIfError: time.Hour, StaleRecache: true,
					Exposed: true, Driver: newDriver(),
				}).Middleware(be)
				expect(t, get(t, h, "/"), "MISS", "call 1")
				time.Sleep(2 * time.Second) // stale, within stale-if-error
				done := make(chan struct{})
				go func() {
					defer close(done)
					expect(t, get(t, h, "/"), "STALE", "call 1") // call 2 fails
				}()
				synctest.Wait()
				expect(t, get(t, h, "/"), "MISS", "call 3") // stored, fresh
				close(gate)
				<-done
				expect(t, get(t, h, "/"), "HIT", "call 3")
			})
		})
	}
}

// callCounter wraps a Driver and counts the calls made to it, the way a
// decorator (metrics, tracing) would: it must keep every guarantee and the
// call budget of the driver it wraps.
type callCounter struct {
	microcache.Driver
	lookups, objects, stores, purges atomic.Int64
}

func (c *callCounter) Lookup(ctx context.Context, key string) (microcache.Record, error) {
	c.lookups.Add(1)
	return c.Driver.Lookup(ctx, key)
}

func (c *callCounter) Object(ctx context.Context, key string) (*microcache.Object, error) {
	c.objects.Add(1)
	return c.Driver.Object(ctx, key)
}

func (c *callCounter) Store(ctx context.Context, s *microcache.Store) (bool, error) {
	c.stores.Add(1)
	return c.Driver.Store(ctx, s)
}

func (c *callCounter) Purge(ctx context.Context, key string, epoch uint64) error {
	c.purges.Add(1)
	return c.Driver.Purge(ctx, key, epoch)
}

// take returns the calls since the previous take, as lookups, objects,
// stores, purges.
func (c *callCounter) take() [4]int64 {
	return [4]int64{c.lookups.Swap(0), c.objects.Swap(0), c.stores.Swap(0), c.purges.Swap(0)}
}

// The driver call budget: a plain hit costs one call, a varied hit two, a
// miss two (three on a varied URL) including the store, a purge one write,
// and a pass-through that relearns a Lookup, a Purge and a Store. A wrapped driver
// keeps it: the flow asserts no concrete driver type.
func TestDriverCallBudget(t *testing.T) {
	for name, newDriver := range testDrivers() {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &callCounter{Driver: newDriver()}
				var nocache atomic.Bool
				be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
					if r.URL.Path == "/varied" {
						w.Header().Set("Vary", "X-Lang")
					}
					if nocache.Load() {
						w.Header().Set(microcache.HeaderNocache, "1")
					}
					io.WriteString(w, "call "+itoa(n))
				}}
				h := newCache(t, microcache.Config{TTL: time.Second, Exposed: true, Driver: d}).Middleware(be)
				step := func(what string, want [4]int64, method, target string, hdr ...string) {
					t.Helper()
					serve(t, h, method, target, hdr...)
					if got := d.take(); got != want {
						t.Errorf("%s: calls (lookup, object, store, purge) = %v, want %v", what, got, want)
					}
				}
				step("first miss", [4]int64{1, 0, 1, 0}, "GET", "/")
				step("plain hit", [4]int64{1, 0, 0, 0}, "GET", "/")
				step("purge", [4]int64{0, 0, 0, 1}, "POST", "/")
				step("plain miss", [4]int64{1, 0, 1, 0}, "GET", "/")
				step("first miss, varied", [4]int64{1, 0, 1, 0}, "GET", "/varied", "X-Lang", "en")
				step("varied hit", [4]int64{1, 1, 0, 0}, "GET", "/varied", "X-Lang", "en")
				step("varied miss", [4]int64{1, 1, 1, 0}, "GET", "/varied", "X-Lang", "fr")
				time.Sleep(2 * time.Second)
				nocache.Store(true)
				step("miss turning uncacheable", [4]int64{1, 0, 1, 0}, "GET", "/")
				step("pass-through", [4]int64{1, 0, 0, 0}, "GET", "/")
				nocache.Store(false)
				step("pass-through relearning", [4]int64{1, 0, 1, 1}, "GET", "/")
				step("miss after relearning", [4]int64{1, 0, 1, 0}, "GET", "/")
				step("hit again", [4]int64{1, 0, 0, 0}, "GET", "/")
			})
		})
	}
}
