package microcache_test

import (
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// Benchmarks of the request paths against a bare handler writing the same
// bytes, measured in the same run. Responses go to discardWriter, which
// reuses one header map and drops the body, so B/op and allocs/op are the
// handler's and the middleware's own. Every benchmark reports
// backend-calls/op, so it is visible which path was measured.
//
//	go test -run '^$' -bench . -benchmem -count 5 | tee new.txt

var benchSizes = []int{1 << 10, 10 << 10, 100 << 10}

type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func newDiscardWriter() *discardWriter { return &discardWriter{h: make(http.Header, 8)} }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discardWriter) reset()                      { clear(w.h); w.status, w.n = 0, 0 }

// benchBody is a body of the given size: the JSON corpus when one is that
// large (so compression sees realistic data), else a repeated pattern.
func benchBody(size int) []byte {
	if corpus, err := os.ReadFile(filepath.Join("testdata", "corpus", "feed-100k.json")); err == nil && len(corpus) >= size {
		return corpus[:size]
	}
	const pattern = `{"id":12345,"name":"widget","tags":["a","b"],"price":9.99},`
	b := make([]byte, size)
	for i := range b {
		b[i] = pattern[i%len(pattern)]
	}
	return b
}

// origin is the bare handler: fixed headers and body, counted calls.
func origin(body []byte, calls *atomic.Int64) http.Handler {
	clen := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", clen)
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
}

func benchRequest(path string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://bench.example"+path, nil)
	return r
}

func serveBench(b *testing.B, h http.Handler, w *discardWriter, r *http.Request, size int) {
	w.reset()
	h.ServeHTTP(w, r)
	if w.n != size {
		b.Fatalf("got %d body bytes (status %d), want %d", w.n, w.status, size)
	}
}

func forSizes(b *testing.B, fn func(b *testing.B, size int)) {
	for _, size := range benchSizes {
		b.Run("size="+strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			fn(b, size)
		})
	}
}

func reportCalls(b *testing.B, calls *atomic.Int64, before int64) {
	b.ReportMetric(float64(calls.Load()-before)/float64(b.N), "backend-calls/op")
}

func benchCache(b *testing.B, cfg microcache.Config) *microcache.Microcache {
	if cfg.Driver == nil {
		cfg.Driver = microcache.NewDriverLRU(10000)
	}
	cfg.Exposed = true
	c := microcache.New(cfg)
	b.Cleanup(c.Stop)
	return c
}

// serial runs one request per iteration on a fixed request.
func serial(b *testing.B, h http.Handler, path string, size int, calls *atomic.Int64) {
	w, r := newDiscardWriter(), benchRequest(path)
	serveBench(b, h, w, r, size) // warm
	before := calls.Load()
	b.ResetTimer()
	for b.Loop() {
		serveBench(b, h, w, r, size)
	}
	b.StopTimer()
	reportCalls(b, calls, before)
}

func BenchmarkBare(b *testing.B) {
	forSizes(b, func(b *testing.B, size int) {
		var calls atomic.Int64
		serial(b, origin(benchBody(size), &calls), "/", size, &calls)
	})
}

func BenchmarkHit(b *testing.B) {
	forSizes(b, func(b *testing.B, size int) {
		var calls atomic.Int64
		c := benchCache(b, microcache.Config{TTL: time.Hour, CollapsedForwarding: true})
		serial(b, c.Middleware(origin(benchBody(size), &calls)), "/hit", size, &calls)
	})
}

// BenchmarkHitCompressed: hits on a Snappy- or S2-compressed object.
func BenchmarkHitCompressed(b *testing.B) {
	for _, comp := range []struct {
		name string
		c    microcache.Compressor
	}{{"snappy", microcache.CompressorSnappy{}}, {"s2", microcache.CompressorS2{}}} {
		b.Run(comp.name, func(b *testing.B) {
			forSizes(b, func(b *testing.B, size int) {
				var calls atomic.Int64
				c := benchCache(b, microcache.Config{TTL: time.Hour, Compressor: comp.c})
				serial(b, c.Middleware(origin(benchBody(size), &calls)), "/hit", size, &calls)
			})
		})
	}
}

// parallel runs requests from GOMAXPROCS goroutines over the given paths.
func parallel(b *testing.B, h http.Handler, paths []string, size int, calls *atomic.Int64) {
	reqs := make([]*http.Request, len(paths))
	for i, p := range paths {
		reqs[i] = benchRequest(p)
		serveBench(b, h, newDiscardWriter(), reqs[i], size) // warm
	}
	before := calls.Load()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := newDiscardWriter()
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			w.reset()
			h.ServeHTTP(w, reqs[i%len(reqs)])
			if w.n != size {
				b.Errorf("got %d body bytes, want %d", w.n, size)
				return
			}
		}
	})
	b.StopTimer()
	reportCalls(b, calls, before)
}

func BenchmarkBareParallel(b *testing.B) {
	forSizes(b, func(b *testing.B, size int) {
		var calls atomic.Int64
		parallel(b, origin(benchBody(size), &calls), []string{"/"}, size, &calls)
	})
}

// BenchmarkHitParallel: hits from GOMAXPROCS goroutines on one hot key and
// spread over 10,000 keys.
func BenchmarkHitParallel(b *testing.B) {
	for _, keys := range []int{1, 10000} {
		b.Run("keys="+strconv.Itoa(keys), func(b *testing.B) {
			forSizes(b, func(b *testing.B, size int) {
				var calls atomic.Int64
				c := benchCache(b, microcache.Config{TTL: time.Hour, Driver: microcache.NewDriverLRU(2 * keys)})
				paths := make([]string, keys)
				for i := range paths {
					paths[i] = "/k/" + strconv.Itoa(i)
				}
				parallel(b, c.Middleware(origin(benchBody(size), &calls)), paths, size, &calls)
			})
		})
	}
}

// BenchmarkHitParallelMonitor: parallel hits on one key with a Monitor
// counting them, to compare with BenchmarkHitParallel/keys=1/size=1KiB.
func BenchmarkHitParallelMonitor(b *testing.B) {
	const size = 1 << 10
	b.ReportAllocs()
	var calls atomic.Int64
	c := benchCache(b, microcache.Config{TTL: time.Hour, Monitor: microcache.MonitorFunc(time.Hour, func(microcache.Stats) {})})
	parallel(b, c.Middleware(origin(benchBody(size), &calls)), []string{"/k/0"}, size, &calls)
}

// BenchmarkMissCold: requests cycle over twice the LRU's capacity, so every
// request misses, stores and evicts.
func BenchmarkMissCold(b *testing.B) {
	forSizes(b, func(b *testing.B, size int) {
		var calls atomic.Int64
		const lru = 1000
		c := benchCache(b, microcache.Config{TTL: time.Hour, CollapsedForwarding: true, Driver: microcache.NewDriverLRU(lru)})
		h := c.Middleware(origin(benchBody(size), &calls))
		reqs := make([]*http.Request, 2*lru)
		for i := range reqs {
			reqs[i] = benchRequest("/cold/" + strconv.Itoa(i))
		}
		w := newDiscardWriter()
		i := 0
		b.ResetTimer()
		for b.Loop() {
			serveBench(b, h, w, reqs[i%len(reqs)], size)
			i++
		}
		b.StopTimer()
		reportCalls(b, &calls, 0)
	})
}

// browserRequest is a GET carrying the header a browser sends, canonical
// as net/http's server parses it, so the middleware's reads of the request
// header cost what they do in production (benchRequest has no header).
func browserRequest(path string) *http.Request {
	r := benchRequest(path)
	for name, value := range map[string]string{
		"Accept":                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Accept-Encoding":           "gzip, deflate, br, zstd",
		"Accept-Language":           "en-GB,en;q=0.9",
		"Cache-Control":             "no-cache",
		"Connection":                "keep-alive",
		"Cookie":                    "session=3f9a1c; theme=dark",
		"Pragma":                    "no-cache",
		"Sec-Fetch-Dest":            "document",
		"Sec-Fetch-Mode":            "navigate",
		"Sec-Fetch-Site":            "none",
		"Upgrade-Insecure-Requests": "1",
		"User-Agent":                "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
	} {
		r.Header.Set(name, value)
	}
	return r
}

// besideBare runs two sub-benchmarks on the 1 KiB response to the request
// mk returns: "bare", the origin alone, and name, the origin behind a cache
// configured with cfg.
func besideBare(b *testing.B, name string, cfg microcache.Config, mk func() *http.Request) {
	const size = 1 << 10
	body := benchBody(size)
	run := func(b *testing.B, h http.Handler, calls *atomic.Int64) {
		b.SetBytes(size)
		b.ReportAllocs()
		w, r := newDiscardWriter(), mk()
		serveBench(b, h, w, r, size) // warm
		before := calls.Load()
		for b.Loop() {
			serveBench(b, h, w, r, size)
		}
		reportCalls(b, calls, before)
	}
	b.Run("bare", func(b *testing.B) {
		var calls atomic.Int64
		run(b, origin(body, &calls), &calls)
	})
	b.Run(name, func(b *testing.B) {
		var calls atomic.Int64
		c := benchCache(b, cfg)
		run(b, c.Middleware(origin(body, &calls)), &calls)
	})
}

// BenchmarkHitBrowser: hits for requests with a browser's header, beside
// the bare handler answering the same request.
func BenchmarkHitBrowser(b *testing.B) {
	besideBare(b, "hit", microcache.Config{TTL: time.Hour}, func() *http.Request {
		return browserRequest("/browser")
	})
}

// BenchmarkPassThrough: a URL known to be uncacheable, the cost the
// middleware adds to responses it does not store.
func BenchmarkPassThrough(b *testing.B) {
	forSizes(b, func(b *testing.B, size int) {
		var calls atomic.Int64
		c := benchCache(b, microcache.Config{TTL: time.Hour, Nocache: true})
		serial(b, c.Middleware(origin(benchBody(size), &calls)), "/pass", size, &calls)
	})
}

// BenchmarkPassThroughBypass: a request that is uncacheable on its face (it
// carries credentials), which passes through without a lookup, beside the
// bare handler answering the same request.
func BenchmarkPassThroughBypass(b *testing.B) {
	besideBare(b, "bypass", microcache.Config{TTL: time.Hour}, func() *http.Request {
		r := benchRequest("/private")
		r.Header.Set("Authorization", "Bearer 0123456789abcdef")
		return r
	})
}

// BenchmarkHerd: 1000 goroutines request one cold key at once; the backend
// takes 50 ms. One op is one herd against a fresh cache. Run it with a
// fixed count: -bench Herd -benchtime 5x.
func BenchmarkHerd(b *testing.B) {
	const herdSize, delay, size = 1000, 50 * time.Millisecond, 1024
	body := benchBody(size)
	var lat []time.Duration
	var calls atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		origin(body, &calls).ServeHTTP(w, r)
	})
	for b.Loop() {
		c := microcache.New(microcache.Config{TTL: time.Minute, CollapsedForwarding: true})
		h := c.Middleware(slow)
		got := make([]time.Duration, herdSize)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for j := range herdSize {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, r := newDiscardWriter(), benchRequest("/herd")
				<-start
				t0 := time.Now()
				h.ServeHTTP(w, r)
				got[j] = time.Since(t0)
				if w.n != size {
					b.Errorf("caller %d got %d bytes", j, w.n)
				}
			}()
		}
		close(start)
		wg.Wait()
		c.Stop()
		lat = append(lat, got...)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(calls.Load())/float64(b.N), "backend-calls/op")
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// The hit path's allocation budget: the bare handler allocates 2 times per
// request (its two header values), and a hit may cost at most 2 more.
func TestHitAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled || encodingDriverRun() {
		t.Skip("allocation counts differ under -cover and -race, and with a decoding driver")
	}
	var calls atomic.Int64
	c := newCache(t, microcache.Config{TTL: time.Hour, Exposed: true})
	h := c.Middleware(origin(benchBody(10<<10), &calls))
	w, r := newDiscardWriter(), benchRequest("/allocs")
	h.ServeHTTP(w, r)
	allocs := testing.AllocsPerRun(1000, func() {
		w.reset()
		h.ServeHTTP(w, r)
	})
	if calls.Load() != 1 {
		t.Fatalf("backend calls = %d, want 1", calls.Load())
	}
	if allocs > 2 {
		t.Errorf("a hit allocates %v times, budget 2", allocs)
	}
}

// A hit on a varied URL builds its variant key in a pooled buffer, so it
// stays within the same budget.
func TestVariedHitAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled || encodingDriverRun() {
		t.Skip("allocation counts differ under -cover and -race, and with a decoding driver")
	}
	var calls atomic.Int64
	body := benchBody(1 << 10)
	c := newCache(t, microcache.Config{TTL: time.Hour, Exposed: true})
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Vary", "Accept-Encoding")
		w.Write(body)
	}))
	w, r := newDiscardWriter(), benchRequest("/varied")
	r.Header.Set("Accept-Encoding", "gzip")
	h.ServeHTTP(w, r) // learns the options and stores the variant
	allocs := testing.AllocsPerRun(1000, func() {
		w.reset()
		h.ServeHTTP(w, r)
	})
	if calls.Load() != 1 {
		t.Fatalf("backend calls = %d, want 1", calls.Load())
	}
	if allocs > 2 {
		t.Errorf("a varied hit allocates %v times, budget 2", allocs)
	}
}

// Hit ratios through the middleware, for DriverLRU and for a plain LRU of
// the same size (plainLRU, the policy DriverLRU replaced): under a flood of
// one-off keys (paths, query values, Vary values), the hot keys' ratio;
// under a Zipf popularity, the ratio of all requests. Each iteration
// replays the whole trace into a new cache and reports the ratio measured
// after a warm-up; one iteration is enough:
//
//	go test -run '^$' -bench 'HitRatio' -benchtime 1x

// ratioCapacity is the object limit of the caches compared.
const ratioCapacity = 1000

var ratioDrivers = []struct {
	name string
	new  func(size int) microcache.Driver
}{
	{"DriverLRU", func(n int) microcache.Driver { return microcache.NewDriverLRU(n) }},
	{"plainLRU", func(n int) microcache.Driver { return newPlainLRU(n) }},
}

// ratioServer serves requests through a cache on d and counts its hits.
type ratioServer struct {
	h http.Handler
	w *memWriter
}

func newRatioServer(b *testing.B, d microcache.Driver, respHdr ...string) *ratioServer {
	c := microcache.New(microcache.Config{TTL: time.Hour, HashQuery: true, Exposed: true, Driver: d})
	b.Cleanup(c.Stop)
	return &ratioServer{h: c.Middleware(memOrigin(respHdr...)), w: &memWriter{h: make(http.Header, 4)}}
}

// serve serves r and reports whether it was a hit.
func (s *ratioServer) serve(b *testing.B, r *http.Request) bool {
	clear(s.w.h)
	s.w.status = 0
	s.h.ServeHTTP(s.w, r)
	if s.w.status != http.StatusOK {
		b.Fatalf("status %d", s.w.status)
	}
	return s.w.h.Get(microcache.HeaderStatus) == microcache.StatusHit
}

// BenchmarkFloodHitRatio: 100 hot keys requested in turn, each after 20
// one-off keys of an attacker, into 1,000 slots; the hot keys' hit ratio
// after 10 rounds of warm-up, over 30 more.
func BenchmarkFloodHitRatio(b *testing.B) {
	const hot, k, warm, rounds = 100, 20, 10, 40
	cases := []struct {
		name    string
		respHdr []string
		req     func(key string) *http.Request
	}{
		{"paths", nil, func(key string) *http.Request { return plainRequest("/p/"+key, "", nil) }},
		{"query", nil, func(key string) *http.Request { return plainRequest("/search", "q="+key, nil) }},
		{"vary", []string{"Vary", "X-Id"}, func(key string) *http.Request {
			return plainRequest("/", "", http.Header{"X-Id": {key}})
		}},
	}
	for _, tc := range cases {
		for _, drv := range ratioDrivers {
			b.Run(tc.name+"/"+drv.name, func(b *testing.B) {
				var ratio float64
				for range b.N {
					s := newRatioServer(b, drv.new(ratioCapacity), tc.respHdr...)
					rng := rand.New(rand.NewPCG(1, 2))
					hits, reads := 0, 0
					for round := range rounds {
						for i := range hot {
							for range k {
								s.serve(b, tc.req(strconv.FormatUint(rng.Uint64(), 36)))
							}
							hit := s.serve(b, tc.req("hot"+strconv.Itoa(i)))
							if round >= warm {
								reads++
								if hit {
									hits++
								}
							}
						}
					}
					ratio = float64(hits) / float64(reads)
				}
				b.ReportMetric(ratio, "hot-hit-ratio")
			})
		}
	}
}

// BenchmarkZipfHitRatio: paths drawn from 100,000 with Zipf(1.0)
// popularity into 1,000 slots; the hit ratio of 300,000 requests after
// 200,000 of warm-up, beside the static optimum (the probability of the
// 1,000 most popular paths, 0.619).
func BenchmarkZipfHitRatio(b *testing.B) {
	const keys, warm, measured = 100_000, 200_000, 300_000
	paths := make([]string, keys)
	for i := range paths {
		paths[i] = "/z/" + strconv.Itoa(i)
	}
	for _, drv := range ratioDrivers {
		b.Run(drv.name, func(b *testing.B) {
			var ratio float64
			z := newZipf(keys, 1.0, 3)
			for range b.N {
				s := newRatioServer(b, drv.new(ratioCapacity))
				hits := 0
				for i := range warm + measured {
					if s.serve(b, plainRequest(paths[z.next()], "", nil)) && i >= warm {
						hits++
					}
				}
				ratio = float64(hits) / measured
			}
			b.ReportMetric(ratio, "hit-ratio")
			b.ReportMetric(z.optimum(ratioCapacity), "optimum")
		})
	}
}

// BenchmarkHitFeatures: a 1 KiB hit with each per-request feature of the
// operations surface configured, beside none (the plain hit), so that what
// each costs on the hit path is measured in the same run.
func BenchmarkHitFeatures(b *testing.B) {
	var observed atomic.Int64
	features := []struct {
		name string
		cfg  microcache.Config
	}{
		{"none", microcache.Config{}},
		{"cache-status", microcache.Config{CacheStatus: "edge"}},
		{"observe", microcache.Config{Observe: func(*http.Request, microcache.Outcome) { observed.Add(1) }}},
		{"passthrough", microcache.Config{Passthrough: func(r *http.Request) bool { return r.URL.Path == "/admin" }}},
		{"session-cookies", microcache.Config{SessionCookies: []string{"sid"}}},
		{"etag", microcache.Config{ETag: true}},
	}
	for _, f := range features {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			var calls atomic.Int64
			f.cfg.TTL = time.Hour
			c := benchCache(b, f.cfg)
			serial(b, c.Middleware(origin(benchBody(1<<10), &calls)), "/features", 1<<10, &calls)
		})
	}
}
