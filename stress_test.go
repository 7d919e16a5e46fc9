package microcache_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

var errStressPanic = errors.New("stress: injected backend panic")

// TestStress runs many goroutines against a cache in front of a faulty
// backend on the real clock, with short TTLs so that every path (hits,
// misses, stale answers, background refreshes, timeouts, collapsing,
// streaming) is taken, and checks invariants only, never timings:
//
//   - every 200 answer is for its own request (path and X-V variant);
//   - a 5xx reaches a client only for a path whose backend failed
//     (answered 5xx, or ran into the Timeout) at least once;
//   - the only panics reaching a client are the backend's own;
//   - every request counts exactly once in Stats, and Stats.Backend is the
//     number of backend calls, which caching and collapsing keep bounded.
func TestStress(t *testing.T) {
	duration, maxPerWorker := 2*time.Second, 1_000_000
	if testing.Short() {
		duration, maxPerWorker = 300*time.Millisecond, 2_000
	}
	const (
		workers   = 16
		keys      = 50
		maxObject = 2 << 10
	)
	variants := []string{"a", "b", "c"}

	var (
		seq          atomic.Int64
		backendCalls atomic.Int64
		failures     [keys]atomic.Int64 // per path: backend 5xx answers and calls past the Timeout
		backendPanic atomic.Int64
	)
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backendCalls.Add(1)
		k, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/k/"))
		if err != nil || k < 0 || k >= keys {
			t.Errorf("backend got path %q", r.URL.Path)
			return
		}
		defer func() {
			// The client may have got a 503 for this call however it ends:
			// the Timeout passed while it ran, or before it started.
			if r.Context().Err() != nil {
				failures[k].Add(1)
			}
		}()
		h := w.Header()
		h.Set("Vary", "X-V")
		if k%2 == 0 {
			h.Set(microcache.HeaderCollapsedForwarding, "1")
		}
		switch x := rand.IntN(100); {
		case x < 5:
			failures[k].Add(1)
			w.WriteHeader(500 + rand.IntN(4))
			fmt.Fprint(w, "injected failure")
			return
		case x < 7:
			backendPanic.Add(1)
			if x == 5 {
				panic(errStressPanic)
			}
			panic(http.ErrAbortHandler)
		case x < 9:
			failures[k].Add(1)
			time.Sleep(40 * time.Millisecond) // past the Timeout, ignoring the context
		}
		fmt.Fprintf(w, "%s|%s|%d|", r.URL.Path, r.Header.Get("X-V"), seq.Add(1))
		if rand.IntN(20) == 0 {
			fmt.Fprint(w, strings.Repeat(".", maxObject+100)) // streamed, not stored
		}
	})

	mon := &statsMonitor{}
	c := newUnmanaged(microcache.Config{
		TTL:                  50 * time.Millisecond,
		StaleWhileRevalidate: 50 * time.Millisecond,
		StaleIfError:         100 * time.Millisecond,
		Timeout:              20 * time.Millisecond,
		MaxObjectSize:        maxObject,
		Exposed:              true,
		Monitor:              mon,
	})
	h := c.Middleware(be)

	var (
		requests, panicked, violations atomic.Int64
		saw5xx                         [keys]atomic.Bool
		statuses                       sync.Map // int -> *atomic.Int64
	)
	violation := func(format string, args ...any) {
		if violations.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxPerWorker && time.Now().Before(deadline); i++ {
				k, xv := rand.IntN(keys), variants[rand.IntN(len(variants))]
				method := http.MethodGet
				if rand.IntN(20) == 0 {
					method = http.MethodHead
				}
				path := "/k/" + strconv.Itoa(k)
				r := httptest.NewRequest(method, path, nil)
				r.Header.Set("X-V", xv)
				if rand.IntN(30) == 0 {
					r.Header.Set("Authorization", "Bearer stress")
				}
				rr := httptest.NewRecorder()
				p := func() (p any) {
					defer func() { p = recover() }()
					h.ServeHTTP(rr, r)
					return nil
				}()
				requests.Add(1)
				if p != nil {
					panicked.Add(1)
					if p != errStressPanic && p != http.ErrAbortHandler {
						violation("%s %s: panic %#v is not the backend's", method, path, p)
					}
					continue
				}
				n, _ := statuses.LoadOrStore(rr.Code, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				b := rr.Body.String()
				switch {
				case rr.Code == http.StatusOK:
					if method == http.MethodHead && b == "" {
						break // from the cache; a HEAD passed through records the body
					}
					parts := strings.SplitN(b, "|", 4)
					if len(parts) != 4 || parts[0] != path || parts[1] != xv || strings.Trim(parts[3], ".") != "" {
						violation("%s %s (X-V %s): body %.60q belongs to another request", method, path, xv, b)
					}
				case rr.Code >= 500:
					saw5xx[k].Store(true)
				default:
					violation("%s %s: unexpected status %d", method, path, rr.Code)
				}
			}
		}()
	}
	wg.Wait()
	c.Stop() // waits for refreshes and abandoned handlers; reports the last Stats

	for k := range keys {
		if saw5xx[k].Load() && failures[k].Load() == 0 {
			violation("/k/%d: a client got a 5xx although the backend never failed there", k)
		}
	}
	total := requests.Load()
	s := mon.total
	if got := int64(s.Hits + s.Misses + s.Stales + s.Passes); got != total {
		violation("Stats count %d requests (%+v), clients made %d", got, s, total)
	}
	calls := backendCalls.Load()
	// Stop waits for background work before its last report, so every
	// backend call is counted.
	if int64(s.Backend) != calls {
		violation("Stats.Backend = %d, the backend counted %d calls", s.Backend, calls)
	}
	if calls > 2*total {
		violation("%d backend calls for %d requests", calls, total)
	}
	var codes []string
	statuses.Range(func(k, v any) bool {
		codes = append(codes, fmt.Sprintf("%d:%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("%d requests (%d panicked, backend panicked %d times), %d backend calls (%.2f per request); statuses %v; stats %+v",
		total, panicked.Load(), backendPanic.Load(), calls, float64(calls)/float64(max(total, 1)), codes, s)
}

// The LRU driver's byte budget bounds the memory stored objects really
// hold: compressed bodies must not keep the worst-case buffer the
// compressor encoded into (about the uncompressed size), nor may the
// budget count only the bytes in use.
func TestStressMemoryBudget(t *testing.T) {
	const (
		budget  = 2 << 20
		objects = 500
		size    = 32 << 10
	)
	payload := []byte(strings.Repeat("compressible ", size/13+1))[:size]
	driver := microcache.NewDriverLRUBytes(100_000, budget)
	c := newCache(t, microcache.Config{TTL: time.Hour, Driver: driver, Compressor: microcache.CompressorSnappy{}})
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := range objects {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/o/"+strconv.Itoa(i), nil))
	}
	after := heap()
	runtime.KeepAlive(h)
	grown := int64(after) - int64(before)
	t.Logf("%d objects stored (driver counts %d bytes), heap grew by %d bytes", driver.Len(), driver.Bytes(), grown)
	if grown > 4*budget {
		t.Errorf("the stored objects hold %.1f MiB for a budget of %.1f MiB", float64(grown)/(1<<20), float64(budget)/(1<<20))
	}
}
