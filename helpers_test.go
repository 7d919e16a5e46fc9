package microcache_test

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/drivertest"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: monitor
// loops, background revalidations and timed-out handlers must all end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backend is a test origin that counts its calls and answers with a body
// naming the call, so tests can tell which call produced a response.
type backend struct {
	calls atomic.Int64
	serve func(w http.ResponseWriter, r *http.Request, call int64)
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := b.calls.Add(1)
	if b.serve != nil {
		b.serve(w, r, n)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "call "+itoa(n))
}

func (b *backend) n() int64 { return b.calls.Load() }

func itoa(n int64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(buf[i:])
		}
	}
}

// testDriver selects the driver that tests which do not choose one run on:
// "" keeps the default DriverLRU; "encoding" stores every record as
// MarshalBinary bytes and decodes it on every read, as a remote store
// would, so the behavioural suite also proves the Driver contract is all
// the flow relies on (CI runs the package both ways).
var testDriver = flag.String("microcache.driver", "", `driver for tests that choose none: "" (DriverLRU) or "encoding"`)

// withTestDriver returns cfg with the driver selected by -microcache.driver
// when cfg has none.
func withTestDriver(cfg microcache.Config) microcache.Config {
	if cfg.Driver == nil && *testDriver == "encoding" {
		cfg.Driver = drivertest.NewEncodingDriver()
	}
	return cfg
}

// encodingDriverRun reports whether tests that choose no driver run on the
// encoding driver, which keeps no usage figures.
func encodingDriverRun() bool { return *testDriver == "encoding" }

// newUnmanaged returns a started cache on the test driver; the caller
// stops it.
func newUnmanaged(cfg microcache.Config) *microcache.Microcache {
	return microcache.New(withTestDriver(cfg))
}

// newCache returns a started cache and registers its Stop.
func newCache(t testing.TB, cfg microcache.Config) *microcache.Microcache {
	t.Helper()
	c := newUnmanaged(cfg)
	t.Cleanup(c.Stop)
	return c
}

// serve runs one request through h and returns what the client received.
// hdr holds alternating header names and values.
func serve(t testing.TB, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return serveReq(h, r)
}

func serveReq(h http.Handler, r *http.Request) *http.Response {
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr.Result()
}

func get(t testing.TB, h http.Handler, target string, hdr ...string) *http.Response {
	t.Helper()
	return serve(t, h, http.MethodGet, target, hdr...)
}

func body(t testing.TB, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func state(res *http.Response) string { return res.Header.Get(microcache.HeaderStatus) }

// expect checks the cache state and body of a response.
func expect(t testing.TB, res *http.Response, wantState, wantBody string) {
	t.Helper()
	if got := state(res); got != wantState {
		t.Errorf("state = %q, want %q (status %d)", got, wantState, res.StatusCode)
	}
	if got := body(t, res); got != wantBody {
		t.Errorf("body = %q, want %q", got, wantBody)
	}
}

// noControlHeaders fails if a microcache-* header reached the client.
func noControlHeaders(t testing.TB, res *http.Response) {
	t.Helper()
	for k := range res.Header {
		if strings.HasPrefix(strings.ToLower(k), "microcache-") {
			t.Errorf("control header %q reached the client", k)
		}
	}
}

// statsMonitor collects Stats and error events for tests.
type statsMonitor struct {
	mu     sync.Mutex
	total  microcache.Stats
	events []microcache.ErrorEvent
}

func (s *statsMonitor) Interval() time.Duration { return time.Hour }

func (s *statsMonitor) Log(st microcache.Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total.Size = st.Size
	s.total.Hits += st.Hits
	s.total.Misses += st.Misses
	s.total.Stales += st.Stales
	s.total.Passes += st.Passes
	s.total.Backend += st.Backend
	s.total.Errors += st.Errors
	s.total.Timeouts += st.Timeouts
	s.total.Panics += st.Panics
	s.total.CacheErrors += st.CacheErrors
	s.total.RevalidationsSkipped += st.RevalidationsSkipped
	s.total.StoredBytes = st.StoredBytes
	s.total.Evictions += st.Evictions
}

func (s *statsMonitor) ReportError(ev microcache.ErrorEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
}

func (s *statsMonitor) kinds() []microcache.ErrorKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	var k []microcache.ErrorKind
	for _, ev := range s.events {
		k = append(k, ev.Kind)
	}
	return k
}
