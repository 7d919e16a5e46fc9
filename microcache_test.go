package microcache_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

func TestMissThenHit(t *testing.T) {
	be := &backend{}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)

	first := get(t, h, "http://example.com/a")
	expect(t, first, "MISS", "call 1")
	if first.Header.Get("Age") != "" {
		t.Errorf("MISS carries Age %q", first.Header.Get("Age"))
	}
	second := get(t, h, "http://example.com/a")
	expect(t, second, "HIT", "call 1")
	if got := second.Header.Get("Age"); got != "0" {
		t.Errorf("Age = %q, want 0", got)
	}
	if be.n() != 1 {
		t.Errorf("backend calls = %d, want 1", be.n())
	}
}

// The middleware plugs into routers as a func(http.Handler) http.Handler.
func TestMiddlewareShape(t *testing.T) {
	c := newCache(t, microcache.Config{})
	var mw func(http.Handler) http.Handler = c.Middleware
	if mw(http.NotFoundHandler()) == nil {
		t.Fatal("nil handler")
	}
	defer func() {
		if recover() == nil {
			t.Error("Middleware(nil) did not panic")
		}
	}()
	c.Middleware(nil)
}

// New copies the Config: changing it, or its slices, later has no effect.
func TestConfigIsCopied(t *testing.T) {
	be := &backend{}
	cfg := microcache.Config{TTL: time.Minute, Exposed: true, HashQuery: true, QueryIgnore: []string{"utm"}}
	h := newCache(t, cfg).Middleware(be)
	cfg.TTL = 0
	cfg.Exposed = false
	cfg.QueryIgnore[0] = "other"
	get(t, h, "/?utm=1")
	expect(t, get(t, h, "/?utm=2"), "HIT", "call 1")
}

// Regression: a second Stop blocked forever in the original design.
func TestStopStartIdempotent(t *testing.T) {
	mon := &statsMonitor{}
	c := newUnmanaged(microcache.Config{Monitor: microcache.MonitorFunc(time.Millisecond, mon.Log)})
	c.Start() // already started by New: no second monitor
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop() }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); c.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
	c.Start()
	c.Start()
	c.Stop()
	c.Stop()
}

// Regression: a cached 301 was replayed as 200 when a compressor was set.
func TestStatusSurvivesStorage(t *testing.T) {
	for _, comp := range []microcache.Compressor{nil, microcache.CompressorSnappy{}, microcache.CompressorGzip{}} {
		for _, status := range []int{200, 203, 204, 301, 302, 307, 308} {
			name := "none"
			if comp != nil {
				name = typeName(comp)
			}
			t.Run(name+"/"+strconv.Itoa(status), func(t *testing.T) {
				be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set("Location", "/elsewhere")
					w.WriteHeader(status)
					if status != 204 {
						io.WriteString(w, "moved")
					}
				}}
				h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, Compressor: comp}).Middleware(be)
				get(t, h, "/")
				res := get(t, h, "/")
				if res.StatusCode != status || state(res) != "HIT" || res.Header.Get("Location") != "/elsewhere" {
					t.Errorf("got %d %s Location %q, want %d HIT", res.StatusCode, state(res), res.Header.Get("Location"), status)
				}
				wantCL := "5"
				if status == 204 {
					wantCL = ""
				}
				if cl := res.Header.Get("Content-Length"); cl != wantCL {
					t.Errorf("Content-Length = %q, want %q", cl, wantCL)
				}
			})
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case microcache.CompressorSnappy:
		return "snappy"
	case microcache.CompressorGzip:
		return "gzip"
	}
	return "other"
}

// 206, 304, 4xx and 5xx are never stored.
func TestUnstoredStatuses(t *testing.T) {
	for _, status := range []int{206, 304, 400, 404, 410, 500, 502, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				w.WriteHeader(status)
			}}
			h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
			get(t, h, "/")
			if res := get(t, h, "/"); state(res) == "HIT" || res.StatusCode != status {
				t.Errorf("second request: %d %s", res.StatusCode, state(res))
			}
			if be.n() != 2 {
				t.Errorf("backend calls = %d, want 2", be.n())
			}
		})
	}
}

// Replay sends every header value, multi-valued ones included, sets rather
// than adds headers an outer middleware already set, sets Content-Length,
// and drops hop-by-hop headers.
func TestReplayHeaders(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		h := w.Header()
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		h.Set("X-Outer", "inner")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Age", "100")
		io.WriteString(w, "hello")
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute}).Middleware(be)
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Outer", "outer")
		h.ServeHTTP(w, r)
	})
	get(t, outer, "/")
	res := get(t, outer, "/")
	if got := res.Header.Values("X-Multi"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("X-Multi = %q", got)
	}
	if got := res.Header.Values("X-Outer"); !slices.Equal(got, []string{"inner"}) {
		t.Errorf("X-Outer = %q, want just the stored value", got)
	}
	if got := res.Header.Get("Content-Length"); got != "5" {
		t.Errorf("Content-Length = %q", got)
	}
	for _, hop := range []string{"Connection", "X-Hop", "Keep-Alive"} {
		if v := res.Header.Get(hop); v != "" {
			t.Errorf("hop-by-hop %s = %q replayed", hop, v)
		}
	}
	if got := res.Header.Get("Age"); got != "100" {
		t.Errorf("Age = %q, want the backend's 100 plus the 0 s it was stored", got)
	}
	if res.Header.Get(microcache.HeaderStatus) != "" {
		t.Error("status header set without Exposed")
	}
}

// Downstream code may change the header values it receives without
// changing what is stored.
func TestReplayDoesNotAliasStoredHeaders(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("X-Value", "stored")
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute}).Middleware(be)
	mutate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		rr.Header()["X-Value"][0] = "mutated"
	})
	get(t, mutate, "/")
	get(t, mutate, "/")
	if got := get(t, h, "/").Header.Get("X-Value"); got != "stored" {
		t.Errorf("X-Value = %q after a downstream mutation", got)
	}
}

func TestAgeHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{}
		h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
		get(t, h, "/")
		time.Sleep(42*time.Second + 500*time.Millisecond)
		res := get(t, h, "/")
		if got := res.Header.Get("Age"); got != "42" || state(res) != "HIT" {
			t.Errorf("Age = %q (%s), want 42 HIT", got, state(res))
		}
		hq := newCache(t, microcache.Config{TTL: time.Minute, SuppressAgeHeader: true}).Middleware(be)
		get(t, hq, "/")
		if got := get(t, hq, "/").Header.Get("Age"); got != "" {
			t.Errorf("Age = %q with SuppressAgeHeader", got)
		}
	})
}

func TestTTLExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{}
		h := newCache(t, microcache.Config{TTL: 10 * time.Second, Exposed: true}).Middleware(be)
		expect(t, get(t, h, "/"), "MISS", "call 1")
		time.Sleep(9 * time.Second)
		expect(t, get(t, h, "/"), "HIT", "call 1")
		time.Sleep(time.Second)
		expect(t, get(t, h, "/"), "MISS", "call 2")
	})
}

// Evictions are reported per interval.
func TestMonitorEvictions(t *testing.T) {
	mon := &statsMonitor{}
	c := newUnmanaged(microcache.Config{TTL: time.Minute, Monitor: mon, Driver: microcache.NewDriverLRU(1)})
	h := c.Middleware(&backend{})
	for i := range 40 {
		get(t, h, "/"+itoa(int64(i)))
	}
	c.Stop()
	if mon.total.Evictions == 0 || mon.total.Size > 16 {
		t.Errorf("stats %+v: want evictions and at most 16 objects (one per shard)", mon.total)
	}
}

// Stats count each request exactly once, and Stop sends a last report.
func TestMonitorCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var reports []microcache.Stats
		mon := microcache.MonitorFunc(10*time.Second, func(s microcache.Stats) {
			mu.Lock()
			reports = append(reports, s)
			mu.Unlock()
		})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if r.URL.Path == "/fail" {
				w.WriteHeader(500)
				return
			}
			io.WriteString(w, "ok")
		}}
		c := newUnmanaged(microcache.Config{TTL: time.Minute, Monitor: mon})
		h := c.Middleware(be)
		get(t, h, "/a") // miss
		get(t, h, "/a") // hit
		get(t, h, "/a") // hit
		time.Sleep(10 * time.Second)
		synctest.Wait()
		get(t, h, "/b")                    // miss
		serve(t, h, http.MethodPost, "/b") // pass
		get(t, h, "/fail")                 // miss, error
		c.Stop()
		mu.Lock()
		defer mu.Unlock()
		if encodingDriverRun() {
			// No usage figures, and the purged object may stay: drivers
			// may drop records when they like, or not.
			for i := range reports {
				reports[i].Size = 1
			}
		} else if reports[0].StoredBytes <= 0 || reports[1].StoredBytes <= reports[0].StoredBytes {
			t.Errorf("stored bytes %d then %d: want positive and growing", reports[0].StoredBytes, reports[1].StoredBytes)
		}
		for i := range reports {
			reports[i].StoredBytes = 0
		}
		want := []microcache.Stats{
			{Size: 1, Hits: 2, Misses: 1, Backend: 1},
			{Size: 1, Misses: 2, Passes: 1, Backend: 3, Errors: 1},
		}
		if !slices.Equal(reports, want) {
			t.Errorf("reports =\n%+v\nwant\n%+v", reports, want)
		}
	})
}
