package microcache_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// Every outcome kind carries its RFC 9211 Cache-Status, and the Observe
// hook receives the same outcome once per request.
func TestCacheStatusAndObserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen []microcache.Outcome
		fail := false
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			switch {
			case r.URL.Path == "/nocache":
				w.Header().Set(microcache.HeaderNocache, "1")
			case r.URL.Path == "/varied":
				w.Header().Set("Vary", "X-Lang")
			case fail:
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{
			TTL: 10 * time.Second, StaleIfError: time.Hour, CacheStatus: "edge", Exposed: true,
			Passthrough: func(r *http.Request) bool { return r.URL.Path == "/admin" },
			Observe: func(r *http.Request, o microcache.Outcome) {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, o)
			},
		}).Middleware(be)
		steps := []struct {
			method, path string
			hdr          []string
			want         string
		}{
			{"GET", "/", nil, "edge; fwd=uri-miss; fwd-status=200; stored"},
			{"GET", "/", nil, "edge; hit; ttl=10"},
			{"GET", "/varied", []string{"X-Lang", "en"}, "edge; fwd=uri-miss; fwd-status=200; stored"},
			{"GET", "/varied", []string{"X-Lang", "fr"}, "edge; fwd=vary-miss; fwd-status=200; stored"},
			{"GET", "/", []string{"Authorization", "Bearer x"}, "edge; fwd=bypass; detail=credentials"},
			{"GET", "/admin", nil, "edge; fwd=bypass; detail=predicate"},
			{"POST", "/other", nil, "edge; fwd=method"},
			{"GET", "/nocache", nil, "edge; fwd=uri-miss; fwd-status=200"},
			{"GET", "/nocache", nil, "edge; fwd=bypass; detail=uncacheable"},
			{"SLEEP", "", nil, ""},
			{"GET", "/", nil, "edge; fwd=stale; fwd-status=503; ttl=-2"},
		}
		for _, s := range steps {
			if s.method == "SLEEP" {
				time.Sleep(12 * time.Second)
				fail = true
				continue
			}
			res := serve(t, h, s.method, s.path, s.hdr...)
			if got := res.Header.Get("Cache-Status"); got != s.want {
				t.Errorf("%s %s %v: Cache-Status %q, want %q", s.method, s.path, s.hdr, got, s.want)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		kinds := make([]string, len(seen))
		for i, o := range seen {
			kinds[i] = o.Kind.String()
			if o.Kind == microcache.OutcomePass {
				kinds[i] += "/" + o.Pass.String()
			}
		}
		want := "miss hit miss miss pass/credentials pass/predicate pass/method miss pass/uncacheable stale"
		if got := strings.Join(kinds, " "); got != want {
			t.Errorf("observed %q, want %q", got, want)
		}
		if last := seen[len(seen)-1]; !last.ForError || last.BackendStatus != 503 || last.Status != 200 {
			t.Errorf("stale-if-error outcome %+v", last)
		}
	})
}

// Stats are cumulative since New and not reset by reading, beside a
// Monitor that still receives the counts since its previous report.
func TestStatsCumulative(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var reports []microcache.Stats
		mon := microcache.MonitorFunc(time.Minute, func(s microcache.Stats) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, s)
		})
		be := &backend{}
		c := newCache(t, microcache.Config{TTL: time.Hour, Monitor: mon})
		h := c.Middleware(be)
		get(t, h, "/")
		get(t, h, "/")
		if s := c.Stats(); s.Misses != 1 || s.Hits != 1 || s.Backend != 1 || s.Size != 1 {
			t.Errorf("Stats after a miss and a hit: %+v", s)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		get(t, h, "/")
		serve(t, h, http.MethodPost, "/")
		if s := c.Stats(); s.Misses != 1 || s.Hits != 2 || s.Passes != 1 || s.Backend != 2 {
			t.Errorf("Stats read twice: %+v, want cumulative counts", s)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(reports) != 2 || reports[0].Hits != 1 || reports[1].Hits != 1 || reports[1].Passes != 1 || reports[1].Misses != 0 {
			t.Errorf("monitor reports %+v, want the counts of each interval", reports)
		}
	})
}

// The Passthrough predicate sends a request straight to the handler:
// nothing is looked up or stored, and a POST it passes does not purge.
func TestPassthroughPredicate(t *testing.T) {
	be := &backend{}
	skip := func(r *http.Request) bool { return r.Header.Get("X-Preview") != "" }
	h := newCache(t, microcache.Config{TTL: time.Hour, Exposed: true, Passthrough: skip}).Middleware(be)
	expect(t, get(t, h, "/"), "MISS", "call 1")
	expect(t, get(t, h, "/", "X-Preview", "1"), "MISS", "call 2")
	expect(t, get(t, h, "/"), "HIT", "call 1")
	serve(t, h, http.MethodPost, "/", "X-Preview", "1")
	expect(t, get(t, h, "/"), "HIT", "call 1")
}

// Cache-Status names a backend status only when the backend answered: a
// timed-out call, and a request answered at once because that call still
// runs, say no fwd-status (the client's 503 is the cache's own).
func TestCacheStatusWithoutBackendAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-r.Context().Done()
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, Timeout: time.Second, CacheStatus: "edge"}).Middleware(be)
		for range 2 {
			res := get(t, h, "/")
			if got := res.Header.Get("Cache-Status"); res.StatusCode != http.StatusServiceUnavailable || got != "edge; fwd=uri-miss" {
				t.Errorf("%d, Cache-Status %q; want 503 and \"edge; fwd=uri-miss\"", res.StatusCode, got)
			}
		}
	})
}
