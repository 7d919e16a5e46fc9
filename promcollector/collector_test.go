package promcollector_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/promcollector"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// origin answers by path: /flaky is stored stale at once the first time
// and fails with 503 after; /500 fails; /slow waits for its Timeout;
// /panic panics; anything else says hello.
func origin() http.Handler {
	var mu sync.Mutex
	flaky := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky":
			mu.Lock()
			flaky++
			first := flaky == 1
			mu.Unlock()
			if !first {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set(microcache.HeaderTTL, "0")
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
			return
		case "/slow":
			<-r.Context().Done()
			return
		case "/panic":
			panic(errors.New("boom"))
		}
		io.WriteString(w, "hello "+r.URL.Path)
	})
}

// serve sends one request to h and returns its status; a panic from h is
// recovered (net/http would abort the connection) and reported as 0.
func serve(h http.Handler, r *http.Request) (status int) {
	defer func() {
		if recover() != nil {
			status = 0
		}
	}()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr.Code
}

func get(h http.Handler, path string) int {
	return serve(h, httptest.NewRequest(http.MethodGet, path, nil))
}

// gather returns the value of the one sample of name with the given
// labels in reg, and whether there was one.
func gather(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				return value(m), true
			}
		}
	}
	return 0, false
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// Every outcome and failure kind, driven through the middleware, lands in
// its series.
func TestCollector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		passes := promcollector.NewPassCounter(promcollector.Options{})
		cache := microcache.New(microcache.Config{
			TTL:          time.Minute,
			StaleIfError: time.Hour,
			Timeout:      time.Second,
			Observe:      passes.Observe,
		})
		defer cache.Stop()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(promcollector.New(cache, promcollector.Options{}), passes)

		h := cache.Middleware(origin())
		steps := []struct {
			req    *http.Request
			status int
		}{
			{httptest.NewRequest(http.MethodGet, "/a", nil), 200},                 // miss, stored
			{httptest.NewRequest(http.MethodGet, "/a", nil), 200},                 // hit
			{httptest.NewRequest(http.MethodGet, "/a", nil), 200},                 // hit
			{httptest.NewRequest(http.MethodPost, "/form", nil), 200},             // pass (method)
			{httptest.NewRequest(http.MethodGet, "/flaky", nil), 200},             // miss, stored stale
			{httptest.NewRequest(http.MethodGet, "/flaky", nil), 200},             // 503: stale for error
			{httptest.NewRequest(http.MethodGet, "/500", nil), 500},               // miss, 5xx
			{httptest.NewRequest(http.MethodGet, "/slow", nil), 503},              // miss, timeout
			{httptest.NewRequest(http.MethodGet, "/panic", nil), 0},               // miss, panic
			{httptest.NewRequest(http.MethodHead, "/never-fetched", nil), 200},    // pass (head-miss)
			{withHeader(httptest.NewRequest(http.MethodGet, "/a", nil)), 200},     // pass (credentials)
			{withHeader(httptest.NewRequest(http.MethodGet, "/other", nil)), 200}, // pass (credentials)
		}
		for i, s := range steps {
			if got := serve(h, s.req); got != s.status {
				t.Errorf("step %d: %s %s: status %d, want %d", i, s.req.Method, s.req.URL.Path, got, s.status)
			}
		}
		synctest.Wait()

		const want = `
# HELP microcache_backend_calls_total Calls to the wrapped handler, background revalidations included; collapsed requests share one call.
# TYPE microcache_backend_calls_total counter
microcache_backend_calls_total 10
# HELP microcache_backend_errors_total Backend failures, by kind: status_5xx (a 5xx answer), timeout (past Config.Timeout), panic; each counted once however many requests shared it.
# TYPE microcache_backend_errors_total counter
microcache_backend_errors_total{kind="panic"} 1
microcache_backend_errors_total{kind="status_5xx"} 2
microcache_backend_errors_total{kind="timeout"} 1
# HELP microcache_cache_errors_total Driver and compressor failures and corrupt stored objects; they never fail a request.
# TYPE microcache_cache_errors_total counter
microcache_cache_errors_total 0
# HELP microcache_evictions_total Records the cache's driver evicted to respect its limits (0 when the driver does not implement microcache.DriverUsage).
# TYPE microcache_evictions_total counter
microcache_evictions_total 0
# HELP microcache_passes_total Requests passed straight through to the backend, uncached both ways, by reason (see microcache.PassReason).
# TYPE microcache_passes_total counter
microcache_passes_total{reason="body"} 0
microcache_passes_total{reason="credentials"} 2
microcache_passes_total{reason="driver-error"} 0
microcache_passes_total{reason="head-miss"} 1
microcache_passes_total{reason="key-too-long"} 0
microcache_passes_total{reason="method"} 1
microcache_passes_total{reason="predicate"} 0
microcache_passes_total{reason="session-cookie"} 0
microcache_passes_total{reason="uncacheable"} 0
microcache_passes_total{reason="upgrade"} 0
# HELP microcache_requests_total Requests handled by the cache, by outcome: hit (fresh object), stale (stale object), miss (answered by the backend through the cache), pass (passed straight through).
# TYPE microcache_requests_total counter
microcache_requests_total{outcome="hit"} 2
microcache_requests_total{outcome="miss"} 5
microcache_requests_total{outcome="pass"} 4
microcache_requests_total{outcome="stale"} 1
# HELP microcache_revalidations_skipped_total Stale objects served without a background refresh because Config.MaxRevalidations refreshes were running.
# TYPE microcache_revalidations_skipped_total counter
microcache_revalidations_skipped_total 0
`
		names := []string{
			"microcache_backend_calls_total",
			"microcache_backend_errors_total",
			"microcache_cache_errors_total",
			"microcache_evictions_total",
			"microcache_passes_total",
			"microcache_requests_total",
			"microcache_revalidations_skipped_total",
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
			t.Error(err)
		}

		// /a and /flaky are stored; what else is (the options learned
		// for other URLs, say) is the driver's business, so only bounds
		// are checked.
		if n, ok := gather(t, reg, "microcache_stored_objects", nil); !ok || n < 2 {
			t.Errorf("stored objects = %v (present %v), want at least 2", n, ok)
		}
		if n, ok := gather(t, reg, "microcache_stored_bytes", nil); !ok || n < float64(len("hello /a")) {
			t.Errorf("stored bytes = %v (present %v), want the bodies at least", n, ok)
		}
		if s := cache.Stats(); s.Size < 0 || s.StoredBytes <= 0 {
			t.Errorf("stats %+v: the default driver should report its usage", s)
		}

		problems, err := testutil.GatherAndLint(reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	})
}

func withHeader(r *http.Request) *http.Request {
	r.Header.Set("Authorization", "Bearer x")
	return r
}

// testutil.ToFloat64 reads single series through a collector that
// exposes only the metric of interest.
func TestToFloat64(t *testing.T) {
	cache := microcache.New(microcache.Config{TTL: time.Minute})
	defer cache.Stop()
	col := promcollector.New(cache, promcollector.Options{})
	h := cache.Middleware(origin())
	for range 3 {
		get(h, "/")
	}
	if got := testutil.ToFloat64(only(col, "microcache_backend_calls_total")); got != 1 {
		t.Errorf("backend calls = %v, want 1", got)
	}
	if got := testutil.ToFloat64(only(col, "microcache_stored_objects")); got < 1 {
		t.Errorf("stored objects = %v, want at least 1", got)
	}
	if got := testutil.CollectAndCount(col, "microcache_requests_total"); got != 4 {
		t.Errorf("requests_total series = %d, want 4 (one per outcome)", got)
	}
}

// only returns a collector that passes on the metrics of c named name.
func only(c prometheus.Collector, name string) prometheus.Collector {
	return filtered{c, name}
}

type filtered struct {
	prometheus.Collector
	name string
}

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		f.Collector.Collect(all)
		close(all)
	}()
	for m := range all {
		if strings.Contains(m.Desc().String(), `fqName: "`+f.name+`"`) {
			ch <- m
		}
	}
}

// CollectAndLint finds nothing to complain about, with and without
// constant labels and a namespace of one's own.
func TestLint(t *testing.T) {
	cache := microcache.New(microcache.Config{TTL: time.Minute})
	defer cache.Stop()
	for _, opts := range []promcollector.Options{
		{},
		{Namespace: "edge", ConstLabels: prometheus.Labels{"cache": "pages"}},
	} {
		for _, c := range []prometheus.Collector{promcollector.New(cache, opts), promcollector.NewPassCounter(opts)} {
			problems, err := testutil.CollectAndLint(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%+v: lint: %s: %s", opts, p.Metric, p.Text)
			}
		}
	}
}

// Two caches register with one registry when their constant labels tell
// them apart, and a namespace renames every metric.
func TestSeveralCaches(t *testing.T) {
	pages := microcache.New(microcache.Config{TTL: time.Minute})
	defer pages.Stop()
	api := microcache.New(microcache.Config{TTL: time.Minute})
	defer api.Stop()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(
		promcollector.New(pages, promcollector.Options{Namespace: "edge", ConstLabels: prometheus.Labels{"cache": "pages"}}),
		promcollector.New(api, promcollector.Options{Namespace: "edge", ConstLabels: prometheus.Labels{"cache": "api"}}),
	)
	get(pages.Middleware(origin()), "/")
	for range 2 {
		get(api.Middleware(origin()), "/")
	}
	const want = `
# HELP edge_requests_total Requests handled by the cache, by outcome: hit (fresh object), stale (stale object), miss (answered by the backend through the cache), pass (passed straight through).
# TYPE edge_requests_total counter
edge_requests_total{cache="api",outcome="hit"} 1
edge_requests_total{cache="api",outcome="miss"} 1
edge_requests_total{cache="api",outcome="pass"} 0
edge_requests_total{cache="api",outcome="stale"} 0
edge_requests_total{cache="pages",outcome="hit"} 0
edge_requests_total{cache="pages",outcome="miss"} 1
edge_requests_total{cache="pages",outcome="pass"} 0
edge_requests_total{cache="pages",outcome="stale"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "edge_requests_total"); err != nil {
		t.Error(err)
	}

	// The same labels twice collide.
	err := reg.Register(promcollector.New(api, promcollector.Options{Namespace: "edge", ConstLabels: prometheus.Labels{"cache": "api"}}))
	if err == nil {
		t.Error("registering a second collector with the same labels succeeded")
	}
}

// A bounded driver reports what it evicts, and the objects it keeps.
func TestEvictions(t *testing.T) {
	cache := microcache.New(microcache.Config{TTL: time.Minute, Driver: microcache.NewDriverLRU(16)})
	defer cache.Stop()
	col := promcollector.New(cache, promcollector.Options{})
	h := cache.Middleware(origin())
	const urls = 200
	for i := range urls {
		get(h, "/"+strconv.Itoa(i))
	}
	evicted := testutil.ToFloat64(only(col, "microcache_evictions_total"))
	stored := testutil.ToFloat64(only(col, "microcache_stored_objects"))
	if evicted == 0 || stored == 0 || stored > 16 {
		t.Errorf("evictions %v, stored %v: want some of each, and at most 16 stored", evicted, stored)
	}
	if s := cache.Stats(); float64(s.Evictions) != evicted || float64(s.Size) != stored {
		t.Errorf("stats %+v, metrics evicted %v stored %v", s, evicted, stored)
	}
}

// unknownSize hides its driver's size and usage.
type unknownSize struct{ microcache.Driver }

func (unknownSize) Len() int { return -1 }

// A driver that cannot count its objects gives no stored objects series
// (rather than a -1 that would read as a count), and no bytes.
func TestUnknownSize(t *testing.T) {
	cache := microcache.New(microcache.Config{TTL: time.Minute, Driver: unknownSize{microcache.NewDriverLRU(100)}})
	defer cache.Stop()
	col := promcollector.New(cache, promcollector.Options{})
	get(cache.Middleware(origin()), "/")
	if n := testutil.CollectAndCount(col, "microcache_stored_objects"); n != 0 {
		t.Errorf("stored_objects series = %d, want none", n)
	}
	if got := testutil.ToFloat64(only(col, "microcache_stored_bytes")); got != 0 {
		t.Errorf("stored bytes = %v, want 0", got)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	if _, err := reg.Gather(); err != nil {
		t.Error(err)
	}
}

// Scrapes racing traffic (run with -race) see counters that never go down,
// and the pass counter agrees with the collector once traffic stops.
func TestConcurrentScrapes(t *testing.T) {
	passes := promcollector.NewPassCounter(promcollector.Options{})
	cache := microcache.New(microcache.Config{TTL: time.Minute, Observe: passes.Observe})
	defer cache.Stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(promcollector.New(cache, promcollector.Options{}), passes)
	h := cache.Middleware(origin())

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				switch i % 4 {
				case 0:
					get(h, "/500")
				case 1:
					serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
				default:
					get(h, "/"+strconv.Itoa(w*1000+i%7))
				}
			}
		})
	}
	done := make(chan struct{})
	scraped := make(chan error)
	go func() {
		prev := map[string]float64{}
		for {
			mfs, err := reg.Gather()
			if err != nil {
				scraped <- err
				return
			}
			for _, mf := range mfs {
				if mf.GetType() != dto.MetricType_COUNTER {
					continue
				}
				for _, m := range mf.GetMetric() {
					key := mf.GetName()
					for _, lp := range m.GetLabel() {
						key += " " + lp.GetName() + "=" + lp.GetValue()
					}
					v := m.GetCounter().GetValue()
					if v < prev[key] {
						scraped <- errors.New(key + " went down")
						return
					}
					prev[key] = v
				}
			}
			select {
			case <-done:
				scraped <- nil
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(done)
	if err := <-scraped; err != nil {
		t.Error(err)
	}

	s := cache.Stats()
	if got, ok := gather(t, reg, "microcache_passes_total", map[string]string{"reason": "method"}); !ok || got != float64(s.Passes) {
		t.Errorf("passes{reason=method} = %v, Stats.Passes = %d", got, s.Passes)
	}
	if got, _ := gather(t, reg, "microcache_backend_errors_total", map[string]string{"kind": "status_5xx"}); got != float64(s.Errors) {
		t.Errorf("5xx = %v, Stats.Errors = %d", got, s.Errors)
	}
}

// New refuses a nil cache at once, rather than at the first scrape.
func TestNewNil(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "promcollector: ") {
			t.Errorf("recovered %v, want a promcollector panic", r)
		}
	}()
	promcollector.New(nil, promcollector.Options{})
}
