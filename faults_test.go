package microcache_test

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

var errBoom = errors.New("faults_test: boom")

// panicValues are the panics a handler may raise: any value, an error, and
// the sentinel that aborts a response on purpose.
var panicValues = []struct {
	name  string
	value any
}{
	{"string", "boom"},
	{"error", errBoom},
	{"ErrAbortHandler", http.ErrAbortHandler},
}

// A panic on the foreground path (no stale copy allowed) reaches the caller
// as the same value, with or without a Timeout (which runs the handler on
// its own goroutine). Nothing it wrote leaks, nothing is stored, and no
// lock is left held: the next request for the key is answered.
func TestFaultPanicForeground(t *testing.T) {
	for _, pv := range panicValues {
		for _, timeout := range []time.Duration{0, time.Second} {
			t.Run(pv.name+"/timeout="+timeout.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
						if n == 1 {
							w.Header().Set("X-Partial", "1")
							io.WriteString(w, "partial")
							panic(pv.value)
						}
						io.WriteString(w, "call "+itoa(n))
					}}
					h := newCache(t, microcache.Config{TTL: time.Minute, Timeout: timeout, Exposed: true}).Middleware(be)
					res, p := serveRecover(h, "/")
					if p != pv.value {
						t.Fatalf("panic %#v, want %#v", p, pv.value)
					}
					if b := body(t, res); b != "" || res.Header.Get("X-Partial") != "" {
						t.Errorf("the panicking response leaked: %q %v", b, res.Header)
					}
					expect(t, get(t, h, "/"), "MISS", "call 2")
					expect(t, get(t, h, "/"), "HIT", "call 2")
				})
			})
		}
	}
}

// A panic after the response started streaming (it outgrew MaxObjectSize,
// or the handler flushed) must still reach net/http: that is how a handler
// tells net/http to abort the connection, so that the client sees a
// truncated response instead of one that looks complete.
func TestFaultPanicAfterStreaming(t *testing.T) {
	for _, pv := range panicValues {
		for _, how := range []string{"oversized", "flushed"} {
			t.Run(pv.name+"/"+how, func(t *testing.T) {
				be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
					if how == "flushed" {
						io.WriteString(w, "first event")
						http.NewResponseController(w).Flush()
					} else {
						writeChunks(w, streamPayload(4<<10))
					}
					if n == 1 {
						panic(pv.value)
					}
				}}
				h := newCache(t, microcache.Config{TTL: time.Minute, MaxObjectSize: 1 << 10}).Middleware(be)
				if _, p := serveRecover(h, "/"); p != pv.value {
					t.Errorf("panic %#v, want %#v", p, pv.value)
				}
				if res := get(t, h, "/"); res.StatusCode != 200 || be.n() != 2 {
					t.Errorf("next request: status %d after %d backend calls", res.StatusCode, be.n())
				}

				// On the wire: without the cache the client sees a
				// broken response; it must through the cache too.
				for _, s := range []struct {
					name string
					h    http.Handler
				}{
					{"without the cache", be},
					{"through the cache", newCache(t, microcache.Config{TTL: time.Minute, MaxObjectSize: 1 << 10}).Middleware(be)},
				} {
					be.calls.Store(0)
					srv := httptest.NewUnstartedServer(s.h)
					srv.Config.ErrorLog = log.New(io.Discard, "", 0)
					srv.Start()
					res, err := srv.Client().Get(srv.URL + "/")
					if err == nil {
						_, err = io.ReadAll(res.Body)
						res.Body.Close()
					}
					srv.Close()
					if err == nil {
						t.Errorf("%s: the client read a complete response although the handler panicked", s.name)
					}
				}
			})
		}
	}
}

// With CollapsedForwarding, a panic in the shared call reaches its leader
// and releases every waiter at once: each makes its own backend call (in
// parallel, without waiting for the clock) and gets an answer. The next
// request for the key is answered.
func TestFaultPanicCollapsedReleasesWaiters(t *testing.T) {
	for _, pv := range panicValues {
		for _, timeout := range []time.Duration{0, time.Second} {
			t.Run(pv.name+"/timeout="+timeout.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					const waiters = 8
					release := make(chan struct{})
					be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
						if n == 1 {
							<-release
							panic(pv.value)
						}
						io.WriteString(w, "call "+itoa(n))
					}}
					h := newCache(t, microcache.Config{TTL: time.Minute, Timeout: timeout, CollapsedForwarding: true, Exposed: true}).Middleware(be)
					var wg sync.WaitGroup
					var panics, answers atomic.Int64
					run := func() {
						defer wg.Done()
						res, p := serveRecover(h, "/")
						switch {
						case p == pv.value:
							panics.Add(1)
						case p != nil:
							t.Errorf("panic %#v, want %#v", p, pv.value)
						case res.StatusCode == 200:
							answers.Add(1)
						default:
							t.Errorf("status %d", res.StatusCode)
						}
					}
					wg.Add(1)
					go run() // the leader
					synctest.Wait()
					for range waiters {
						wg.Add(1)
						go run()
					}
					synctest.Wait() // every waiter is waiting for the leader
					if be.n() != 1 {
						t.Fatalf("backend calls = %d before the panic: not collapsed", be.n())
					}
					start := time.Now()
					close(release)
					wg.Wait()
					if time.Since(start) != 0 {
						t.Errorf("waiters were released after %v", time.Since(start))
					}
					if panics.Load() != 1 || answers.Load() != waiters || be.n() != 1+waiters {
						t.Errorf("%d panics, %d answers, %d backend calls; want 1, %d, %d", panics.Load(), answers.Load(), be.n(), waiters, 1+waiters)
					}
					// (A HIT only once concurrent first fetches keep each
					// other's epoch; see TestFaultConcurrentFirstFetches.)
					if res := get(t, h, "/"); res.StatusCode != 200 {
						t.Errorf("next request: status %d", res.StatusCode)
					}
				})
			})
		}
	}
}

// blockingWriter is a client that stops reading: its first Write blocks
// until unblock is closed.
type blockingWriter struct {
	*httptest.ResponseRecorder
	entered chan struct{} // closed when Write is first called
	unblock chan struct{}
	once    sync.Once
}

func newBlockingWriter() *blockingWriter {
	return &blockingWriter{ResponseRecorder: httptest.NewRecorder(), entered: make(chan struct{}), unblock: make(chan struct{})}
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.unblock
	return w.ResponseRecorder.Write(b)
}

// A slow client on a HIT, on a STALE answer, and as the leader of a
// collapsed miss, holds up no other request for the key.
func TestSlowClientDoesNotBlockKey(t *testing.T) {
	t.Run("hit", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			be := &backend{}
			h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true}).Middleware(be)
			expect(t, get(t, h, "/"), "MISS", "call 1")
			slow := newBlockingWriter()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(slow, httptest.NewRequest("GET", "/", nil))
			}()
			<-slow.entered
			start := time.Now()
			for range 5 {
				expect(t, get(t, h, "/"), "HIT", "call 1")
			}
			if time.Since(start) != 0 {
				t.Errorf("hits took %v", time.Since(start))
			}
			close(slow.unblock)
			<-done
			expect(t, slow.Result(), "HIT", "call 1")
		})
	})

	t.Run("stale", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			be := &backend{}
			h := newCache(t, microcache.Config{TTL: time.Second, StaleWhileRevalidate: time.Minute, Exposed: true}).Middleware(be)
			get(t, h, "/")
			time.Sleep(2 * time.Second)
			slow := newBlockingWriter()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(slow, httptest.NewRequest("GET", "/", nil))
			}()
			<-slow.entered
			synctest.Wait() // the background refresh has ended
			expect(t, get(t, h, "/"), "HIT", "call 2")
			close(slow.unblock)
			<-done
			expect(t, slow.Result(), "STALE", "call 1")
		})
	})

	t.Run("collapsed leader", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				<-release
				io.WriteString(w, "call "+itoa(n))
			}}
			h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true}).Middleware(be)
			slow := newBlockingWriter()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(slow, httptest.NewRequest("GET", "/", nil))
			}()
			synctest.Wait() // the slow client leads the backend call
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					expect(t, get(t, h, "/"), "MISS", "call 1")
				}()
			}
			synctest.Wait()
			close(release)
			<-slow.entered
			wg.Wait() // while the leader's client is still blocked
			expect(t, get(t, h, "/"), "HIT", "call 1")
			close(slow.unblock)
			<-done
			expect(t, slow.Result(), "MISS", "call 1")
		})
	})
}

// A backend that ignores its context after the Timeout holds neither its
// client (503 exactly at the Timeout) nor later requests for the key, with
// or without collapsed forwarding; and while it still runs, later requests
// for the key do not start another handler (which would hang the same
// way, one goroutine per request): they get 503 at once. Its goroutine
// ends when it returns, and Stop waits for that.
func TestFaultTimeoutIgnoredContext(t *testing.T) {
	for _, collapse := range []bool{false, true} {
		name := "plain"
		if collapse {
			name = "collapsed"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				late := make(chan error, 1)
				be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
					if n == 1 {
						<-release // ignores r.Context()
						_, err := io.WriteString(w, "too late")
						late <- err
						return
					}
					io.WriteString(w, "call "+itoa(n))
				}}
				c := newUnmanaged(microcache.Config{TTL: time.Minute, Timeout: time.Second, CollapsedForwarding: collapse, Exposed: true})
				h := c.Middleware(be)
				start := time.Now()
				res := get(t, h, "/")
				if res.StatusCode != http.StatusServiceUnavailable || time.Since(start) != time.Second {
					t.Errorf("status %d after %v, want 503 after 1s", res.StatusCode, time.Since(start))
				}
				for range 20 {
					if res := get(t, h, "/"); res.StatusCode != http.StatusServiceUnavailable {
						t.Fatalf("while the abandoned handler runs: status %d, want 503 at once", res.StatusCode)
					}
				}
				if time.Since(start) != time.Second || be.n() != 1 {
					t.Errorf("later requests waited %v for the stalled backend, or called it (%d calls)", time.Since(start), be.n())
				}

				stopped := make(chan struct{})
				go func() {
					c.Stop()
					close(stopped)
				}()
				synctest.Wait()
				select {
				case <-stopped:
					t.Error("Stop returned while the abandoned handler was still running")
				default:
				}
				close(release)
				<-stopped
				if err := <-late; !errors.Is(err, http.ErrHandlerTimeout) {
					t.Errorf("late write: %v, want http.ErrHandlerTimeout", err)
				}
				// Once it has returned, the key is fetched again.
				expect(t, get(t, h, "/"), "MISS", "call 2")
				expect(t, get(t, h, "/"), "HIT", "call 2")
			})
		})
	}
}

// deadlineWriter is a client connection that records deadline changes made
// after its handler returned (when net/http may already be serving the
// next request on the same connection).
type deadlineWriter struct {
	*httptest.ResponseRecorder
	done atomic.Bool
	late atomic.Int64
}

func (w *deadlineWriter) SetWriteDeadline(time.Time) error {
	if w.done.Load() {
		w.late.Add(1)
	}
	return nil
}

func (w *deadlineWriter) SetReadDeadline(time.Time) error {
	if w.done.Load() {
		w.late.Add(1)
	}
	return nil
}

// A handler abandoned after the Timeout cannot reach its client's
// connection any more: writes, flushes and deadline changes all fail with
// http.ErrHandlerTimeout instead of touching a connection that may be
// serving another request by then.
func TestFaultAbandonedHandlerCannotReachClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		type lateErrs struct{ write, flush, writeDeadline, readDeadline error }
		late := make(chan lateErrs, 1)
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-release
			rc := http.NewResponseController(w)
			var e lateErrs
			e.writeDeadline = rc.SetWriteDeadline(time.Now().Add(time.Minute))
			e.readDeadline = rc.SetReadDeadline(time.Now().Add(time.Minute))
			_, e.write = io.WriteString(w, "late")
			e.flush = rc.Flush()
			late <- e
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, Timeout: time.Second}).Middleware(be)
		cw := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
		h.ServeHTTP(cw, httptest.NewRequest("GET", "/", nil))
		cw.done.Store(true)
		if cw.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", cw.Code)
		}
		close(release)
		e := <-late
		for what, err := range map[string]error{"Write": e.write, "Flush": e.flush, "SetWriteDeadline": e.writeDeadline, "SetReadDeadline": e.readDeadline} {
			if !errors.Is(err, http.ErrHandlerTimeout) {
				t.Errorf("%s after the timeout: %v, want http.ErrHandlerTimeout", what, err)
			}
		}
		if n := cw.late.Load(); n != 0 {
			t.Errorf("%d deadline changes reached the client's connection after its handler returned", n)
		}
	})
}

// Stop's last report comes after the background work it waits for, so
// that nothing that work counts is lost: here a refresh still running when
// Stop is called fails once Stop has cancelled it.
func TestFaultStopReportsBackgroundWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 2 {
				<-release
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		mon := &statsMonitor{}
		c := newUnmanaged(microcache.Config{TTL: time.Second, StaleWhileRevalidate: time.Minute, Monitor: mon})
		h := c.Middleware(be)
		get(t, h, "/")
		time.Sleep(2 * time.Second)
		get(t, h, "/") // stale; starts the refresh, which blocks
		synctest.Wait()
		stopped := make(chan struct{})
		go func() {
			c.Stop()
			close(stopped)
		}()
		synctest.Wait() // Stop waits for the refresh
		close(release)
		<-stopped
		mon.mu.Lock()
		defer mon.mu.Unlock()
		if s := mon.total; s.Backend != 2 || s.Errors != 1 || len(mon.events) != 1 {
			t.Errorf("stats %+v and %d error events after Stop, want 2 backend calls and 1 error", s, len(mon.events))
		}
	})
}

// Concurrent first fetches of one URL (here two variants) must not make
// each other's objects unreachable. The first to finish creates the URL's
// epoch; the second read no epoch, so its store fails (it cannot tell the
// first's epoch from one a purge set meanwhile) and its response is
// served unstored: the next request for it is a miss that stores it.
func TestFaultConcurrentFirstFetches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gates := map[string]chan struct{}{"en": make(chan struct{}), "fr": make(chan struct{})}
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			lang := r.Header.Get("X-Lang")
			if n <= 2 {
				<-gates[lang]
			}
			w.Header().Set("Vary", "X-Lang")
			io.WriteString(w, lang+" "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
		var wg sync.WaitGroup
		for _, lang := range []string{"en", "fr"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				get(t, h, "/doc", "X-Lang", lang)
			}()
		}
		synctest.Wait() // both in the backend
		close(gates["en"])
		synctest.Wait() // en stored
		close(gates["fr"])
		wg.Wait() // fr stored
		if res := get(t, h, "/doc", "X-Lang", "en"); state(res) != microcache.StatusHit {
			t.Errorf("en after fr was stored: %s %q, want a HIT", state(res), body(t, res))
		}
		expect(t, get(t, h, "/doc", "X-Lang", "fr"), "MISS", "fr 3")
		expect(t, get(t, h, "/doc", "X-Lang", "fr"), "HIT", "fr 3")
		if res := get(t, h, "/doc", "X-Lang", "en"); state(res) != microcache.StatusHit {
			t.Errorf("en at the end: %s %q, want a HIT", state(res), body(t, res))
		}
	})
}

// A purge (a successful POST) that happens while a GET for another variant
// of the URL waits for the backend stays in force: when the GET finishes
// it must not write back the epoch it read before the purge, which would
// make every purged variant reachable again.
func TestFaultPurgeDuringSlowMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var version atomic.Int64
		version.Store(1)
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if r.Method == http.MethodPost {
				version.Add(1)
				io.WriteString(w, "posted")
				return
			}
			lang := r.Header.Get("X-Lang")
			v := version.Load() // the content as of now
			if lang == "fr" {
				<-release
			}
			w.Header().Set("Vary", "X-Lang")
			io.WriteString(w, lang+" v"+itoa(v))
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
		expect(t, get(t, h, "/doc", "X-Lang", "en"), "MISS", "en v1")
		expect(t, get(t, h, "/doc", "X-Lang", "en"), "HIT", "en v1")
		done := make(chan struct{})
		go func() {
			defer close(done)
			get(t, h, "/doc", "X-Lang", "fr") // slow miss; read the options first
		}()
		synctest.Wait()
		if res := serve(t, h, http.MethodPost, "/doc"); res.StatusCode != 200 {
			t.Fatalf("POST: %d", res.StatusCode)
		}
		close(release)
		<-done
		res := get(t, h, "/doc", "X-Lang", "en")
		if b := body(t, res); b != "en v2" {
			t.Errorf("en after the purge and the slow miss: %s %q, want MISS \"en v2\": the purge was undone", state(res), b)
		}
		// The slow response predates the purge: it was not stored either.
		res = get(t, h, "/doc", "X-Lang", "fr")
		if b := body(t, res); b != "fr v2" {
			t.Errorf("fr after the purge: %s %q, want \"fr v2\"", state(res), b)
		}
	})
}

// The same for a URL without variants: the slow miss's response, which
// predates the purge, is not stored. This pins the epoch check; that no
// purge can land between the check and the store is DriverLRU's one
// locked step (Driver.Store's contract), which a test through the
// public API cannot time (drivertest does).
func TestFaultPurgeDuringSlowPlainMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var version atomic.Int64
		version.Store(1)
		release := make(chan struct{})
		var slow atomic.Bool
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if r.Method == http.MethodPost {
				version.Add(1)
				io.WriteString(w, "posted")
				return
			}
			v := version.Load() // the content as of now
			if slow.Load() {
				<-release
			}
			io.WriteString(w, "v"+itoa(v))
		}}
		h := newCache(t, microcache.Config{TTL: time.Second, Exposed: true}).Middleware(be)
		expect(t, get(t, h, "/doc"), "MISS", "v1")
		time.Sleep(2 * time.Second) // expired: the next GET refetches with the options known
		slow.Store(true)
		done := make(chan struct{})
		go func() {
			defer close(done)
			get(t, h, "/doc")
		}()
		synctest.Wait()
		slow.Store(false)
		if res := serve(t, h, http.MethodPost, "/doc"); res.StatusCode != 200 {
			t.Fatalf("POST: %d", res.StatusCode)
		}
		close(release)
		<-done
		res := get(t, h, "/doc")
		if b := body(t, res); b != "v2" {
			t.Errorf("after the purge and the slow miss: %s %q, want MISS \"v2\": the purge was undone", state(res), b)
		}
	})
}
