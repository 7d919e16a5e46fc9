package microcache_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// Within the stale-while-revalidate window the stale object is served at
// once and one background request refreshes it, however many requests
// arrive.
func TestStaleWhileRevalidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 2 {
				<-release
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: 10 * time.Second, StaleWhileRevalidate: 20 * time.Second, Exposed: true}).Middleware(be)
		get(t, h, "/")
		time.Sleep(15 * time.Second)
		for range 20 {
			res := get(t, h, "/")
			expect(t, res, "STALE", "call 1")
			if age := res.Header.Get("Age"); age != "15" {
				t.Errorf("Age = %q, want 15", age)
			}
		}
		synctest.Wait()
		if be.n() != 2 {
			t.Errorf("backend calls = %d, want 1 refresh", be.n()-1)
		}
		close(release)
		synctest.Wait()
		expect(t, get(t, h, "/"), "HIT", "call 2")
		time.Sleep(30 * time.Second) // past TTL and the stale window
		expect(t, get(t, h, "/"), "MISS", "call 3")
	})
}

// trackingWriter fails the test if it is used after its handler returned.
type trackingWriter struct {
	*httptest.ResponseRecorder
	t    *testing.T
	done atomic.Bool
}

func (w *trackingWriter) Header() http.Header {
	if w.done.Load() {
		w.t.Error("ResponseWriter used after ServeHTTP returned")
	}
	return w.ResponseRecorder.Header()
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	if w.done.Load() {
		w.t.Error("ResponseWriter used after ServeHTTP returned")
	}
	return w.ResponseRecorder.Write(b)
}

// The background refresh outlives the client: its context is not cancelled
// when the client goes away, it never touches the client's writer, and it
// keeps the client's context values.
func TestRevalidationIsDetached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type ctxKey struct{}
		release := make(chan struct{})
		var refreshErr atomic.Pointer[error]
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 2 {
				<-release
				err := r.Context().Err()
				refreshErr.Store(&err)
				if r.Context().Value(ctxKey{}) != "v" {
					t.Error("background request lost the context value")
				}
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: time.Second, StaleWhileRevalidate: time.Minute, Exposed: true}).Middleware(be)
		get(t, h, "/")
		time.Sleep(2 * time.Second)
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
		w := &trackingWriter{ResponseRecorder: httptest.NewRecorder(), t: t}
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
		w.done.Store(true)
		cancel()
		close(release)
		synctest.Wait()
		if p := refreshErr.Load(); p == nil || *p != nil {
			t.Errorf("background context: %v", p)
		}
		expect(t, get(t, h, "/"), "HIT", "call 2")
	})
}

// Regression: a panic in a background refresh killed the process. It is
// recovered, counted as an error, and the stale object stays.
func TestRevalidationPanicIsRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mon := &statsMonitor{}
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n > 1 {
				panic("refresh exploded")
			}
			io.WriteString(w, "call 1")
		}}
		c := newUnmanaged(microcache.Config{TTL: time.Second, StaleWhileRevalidate: time.Minute, Exposed: true, Monitor: mon})
		h := c.Middleware(be)
		get(t, h, "/")
		time.Sleep(2 * time.Second)
		expect(t, get(t, h, "/"), "STALE", "call 1")
		synctest.Wait()
		expect(t, get(t, h, "/"), "STALE", "call 1")
		synctest.Wait()
		c.Stop()
		if mon.total.Panics != 2 || mon.total.Errors != 2 {
			t.Errorf("stats %+v, want 2 panics counted as errors", mon.total)
		}
		for _, ev := range mon.events {
			if !ev.Background || ev.Kind != microcache.ErrorPanic {
				t.Errorf("event %+v", ev)
			}
		}
	})
}

// The background refresh is bounded by Timeout.
func TestRevalidationTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mon := &statsMonitor{}
		var cancelled atomic.Int64 // fake-clock nanoseconds when the refresh's context ended
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n > 1 {
				<-r.Context().Done()
				cancelled.Store(time.Now().UnixNano())
				return
			}
			io.WriteString(w, "call 1")
		}}
		c := newUnmanaged(microcache.Config{TTL: time.Second, StaleWhileRevalidate: time.Minute, Timeout: 3 * time.Second, Exposed: true, Monitor: mon})
		h := c.Middleware(be)
		get(t, h, "/")
		time.Sleep(2 * time.Second)
		start := time.Now()
		expect(t, get(t, h, "/"), "STALE", "call 1")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if d := time.Duration(cancelled.Load() - start.UnixNano()); d != 3*time.Second {
			t.Errorf("refresh cancelled after %v, want the 3s Timeout", d)
		}
		c.Stop()
		if mon.total.Timeouts != 1 || mon.total.Errors != 1 {
			t.Errorf("stats %+v, want 1 timeout", mon.total)
		}
	})
}

// failing returns a backend that answers "call 1" first and then fails in
// the given way.
func failing(mode string) *backend {
	return &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			io.WriteString(w, "call 1")
			return
		}
		switch mode {
		case "500":
			w.WriteHeader(500)
			io.WriteString(w, "broken")
		case "503":
			w.WriteHeader(503)
		case "timeout":
			<-r.Context().Done()
		case "panic":
			panic("backend exploded")
		case "abort":
			panic(http.ErrAbortHandler)
		}
	}}
}

// Within the stale-if-error window a failing backend is answered with the
// stale object; past it, the failure reaches the client.
func TestStaleIfError(t *testing.T) {
	for _, mode := range []string{"500", "503", "timeout", "panic"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				be := failing(mode)
				h := newCache(t, microcache.Config{TTL: 10 * time.Second, StaleIfError: time.Minute, Timeout: 5 * time.Second, Exposed: true}).Middleware(be)
				get(t, h, "/")
				time.Sleep(30 * time.Second)
				res := get(t, h, "/")
				if res.StatusCode != 200 {
					t.Errorf("status %d, want the stale 200", res.StatusCode)
				}
				expect(t, res, "STALE", "call 1")
				if age := res.Header.Get("Age"); age == "" || age == "0" {
					t.Errorf("Age = %q on a stale answer", age)
				}
				time.Sleep(time.Minute) // past the window
				res, panicked := serveRecover(h, "/")
				switch mode {
				case "panic":
					if panicked != "backend exploded" {
						t.Errorf("panic %v, want the backend's", panicked)
					}
				case "timeout":
					if res.StatusCode != 503 {
						t.Errorf("status %d, want 503", res.StatusCode)
					}
				default:
					if res.StatusCode != atoiOr(mode) {
						t.Errorf("status %d, want %s", res.StatusCode, mode)
					}
				}
			})
		})
	}
}

func atoiOr(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// serveRecover runs a GET and returns the panic value that escaped, if any.
func serveRecover(h http.Handler, target string) (res *http.Response, panicked any) {
	rr := httptest.NewRecorder()
	func() {
		defer func() { panicked = recover() }()
		h.ServeHTTP(rr, httptest.NewRequest("GET", target, nil))
	}()
	return rr.Result(), panicked
}

// http.ErrAbortHandler is an abort, not a failure: it reaches net/http even
// when a stale object could be served.
func TestAbortHandlerIsNotSwallowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newCache(t, microcache.Config{TTL: time.Second, StaleIfError: time.Hour, Exposed: true}).Middleware(failing("abort"))
		get(t, h, "/")
		time.Sleep(2 * time.Second)
		if _, p := serveRecover(h, "/"); p != http.ErrAbortHandler {
			t.Errorf("panic %v, want http.ErrAbortHandler", p)
		}
	})
}

// With stale recache, the stale object served for an error is stored again
// as fresh for its TTL: the failing backend is not asked again until then,
// and Age keeps counting from the original fetch.
func TestStaleRecache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := failing("500")
		h := newCache(t, microcache.Config{TTL: 10 * time.Second, StaleIfError: time.Hour, StaleRecache: true, Exposed: true}).Middleware(be)
		get(t, h, "/")
		time.Sleep(20 * time.Second)
		expect(t, get(t, h, "/"), "STALE", "call 1")
		time.Sleep(9 * time.Second)
		res := get(t, h, "/")
		expect(t, res, "HIT", "call 1")
		if age := res.Header.Get("Age"); age != "29" {
			t.Errorf("Age = %q, want 29 (from the original fetch)", age)
		}
		if be.n() != 2 {
			t.Errorf("backend calls = %d, want 2", be.n())
		}
		time.Sleep(time.Second)
		expect(t, get(t, h, "/"), "STALE", "call 1")
		if be.n() != 3 {
			t.Errorf("backend calls = %d, want 3", be.n())
		}
	})
}

// The header overrides of the stale options.
func TestStaleHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n > 1 {
				w.WriteHeader(500)
				return
			}
			w.Header().Set(microcache.HeaderStaleIfError, "60")
			w.Header().Set(microcache.HeaderStaleRecache, "1")
			io.WriteString(w, "call 1")
		}}
		h := newCache(t, microcache.Config{TTL: 10 * time.Second, Exposed: true}).Middleware(be)
		get(t, h, "/")
		time.Sleep(30 * time.Second)
		expect(t, get(t, h, "/"), "STALE", "call 1")
		expect(t, get(t, h, "/"), "HIT", "call 1") // recached
	})
}

// Past Timeout a buffered request gets 503 (no stale copy allowed); its
// context is cancelled and what the handler writes later is discarded.
// A handler that ignores its context does not hold the client.
func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		late := make(chan error, 1)
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-release // ignores its context
			if r.Context().Err() == nil {
				t.Error("context not cancelled after the timeout")
			}
			_, err := io.WriteString(w, "too late")
			late <- err
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, Timeout: 2 * time.Second, Exposed: true}).Middleware(be)
		start := time.Now()
		res := get(t, h, "/")
		if res.StatusCode != 503 || time.Since(start) != 2*time.Second {
			t.Errorf("status %d after %v, want 503 after 2s", res.StatusCode, time.Since(start))
		}
		close(release)
		if err := <-late; !errors.Is(err, http.ErrHandlerTimeout) {
			t.Errorf("late write error %v, want http.ErrHandlerTimeout", err)
		}
	})
}

// Pass-through requests are never cut off by Timeout.
func TestTimeoutSparesPassThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			time.Sleep(10 * time.Second)
			io.WriteString(w, "done")
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, Timeout: time.Second}).Middleware(be)
		res := serve(t, h, http.MethodPost, "/")
		if res.StatusCode != 200 || body(t, res) != "done" {
			t.Errorf("POST cut off: %d", res.StatusCode)
		}
	})
}
