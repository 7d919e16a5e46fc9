package redisdriver_test

// Benchmarks for the README's "Scaling out" table:
//
//	go test -run '^$' -bench . -benchtime 2000x ./    # latencies (p50/p99 in µs)
//	go test -run '^$' -bench OriginCalls -benchtime 20x ./
//
// Latencies are of whole requests through the middleware (a 10 KiB
// body), beside a raw GET of the same value from the same server over the
// same unix socket; ns/op is their mean.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
	"github.com/redis/go-redis/v9"
)

const benchBodySize = 10 << 10

var benchBody = strings.Repeat("0123456789abcdef", benchBodySize/16)

// discard is a ResponseWriter that keeps nothing but the status and the
// byte count.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) WriteHeader(code int)        { w.status = code }
func (w *discard) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func serve(b *testing.B, h http.Handler, path string) string {
	w := &discard{h: make(http.Header, 8)}
	r, _ := http.NewRequest(http.MethodGet, "http://bench.example"+path, nil)
	h.ServeHTTP(w, r)
	if w.n != benchBodySize {
		b.Fatalf("GET %s: %d bytes (status %d), want %d", path, w.n, w.status, benchBodySize)
	}
	return w.h.Get(microcache.HeaderStatus)
}

func benchOrigin(calls *atomic.Int64, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if delay > 0 {
			time.Sleep(delay)
		}
		io.WriteString(w, benchBody)
	})
}

func benchReplica(b *testing.B, d microcache.Driver, h http.Handler) http.Handler {
	m := microcache.New(microcache.Config{TTL: time.Hour, CollapsedForwarding: true, Exposed: true, Driver: d})
	b.Cleanup(m.Stop)
	return m.Middleware(h)
}

// hits serves one request again and again, reusing the request and the
// writer, so that what is measured is the middleware and the driver.
func hits(b *testing.B, h http.Handler) {
	w := &discard{h: make(http.Header, 8)}
	r, _ := http.NewRequest(http.MethodGet, "http://bench.example/hit", nil)
	for b.Loop() {
		clear(w.h)
		w.n = 0
		h.ServeHTTP(w, r)
		if w.n != benchBodySize {
			b.Fatalf("%d bytes, want %d", w.n, benchBodySize)
		}
	}
}

// BenchmarkHit compares a hit from L1 with a hit from a plain DriverLRU:
// the L1 hit must stay within 10% of it.
func BenchmarkHit(b *testing.B) {
	var calls atomic.Int64
	b.Run("driver=DriverLRU", func(b *testing.B) {
		h := benchReplica(b, microcache.NewDriverLRU(10000), benchOrigin(&calls, 0))
		serve(b, h, "/hit")
		hits(b, h)
	})
	b.Run("driver=redisdriver-L1", func(b *testing.B) {
		s := redistest.StartT(b)
		d := newDriver(b, client(b, s), redisdriver.Options{MaxOptionsAge: time.Hour})
		waitSubscribed(b, d)
		h := benchReplica(b, d, benchOrigin(&calls, 0))
		serve(b, h, "/hit")
		if st := serve(b, h, "/hit"); st != "HIT" {
			b.Fatalf("status %s, want HIT", st)
		}
		hits(b, h)
	})
}

// BenchmarkHitInterleaved measures the same two hits as BenchmarkHit in
// one process, alternating rounds of 1000 requests through each, so that
// both see the same machine state (a second sub-benchmark in a process
// otherwise runs on a bigger heap, after a redis-server started): it
// reports each mean (lru-ns/hit, l1-ns/hit) and l1/lru, the ratio the 10%
// bar is about. url=varied is a hit on a URL whose answers vary on a
// request header (two driver calls: Lookup, Object).
func BenchmarkHitInterleaved(b *testing.B) {
	for _, varied := range []bool{false, true} {
		b.Run(map[bool]string{false: "url=plain", true: "url=varied"}[varied], func(b *testing.B) {
			benchHitInterleaved(b, varied)
		})
	}
}

func benchHitInterleaved(b *testing.B, varied bool) {
	var calls atomic.Int64
	origin := benchOrigin(&calls, 0)
	if varied {
		next := origin
		origin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Vary", "X-Lang")
			next.ServeHTTP(w, r)
		})
	}
	lru := benchReplica(b, microcache.NewDriverLRU(10000), origin)
	s := redistest.StartT(b)
	d := newDriver(b, client(b, s), redisdriver.Options{MaxOptionsAge: time.Hour})
	waitSubscribed(b, d)
	l1 := benchReplica(b, d, origin)
	w := &discard{h: make(http.Header, 8)}
	r, _ := http.NewRequest(http.MethodGet, "http://bench.example/hit", nil)
	if varied {
		r.Header.Set("X-Lang", "en")
	}
	round := func(h http.Handler, n int) time.Duration {
		start := time.Now()
		for range n {
			clear(w.h)
			w.n = 0
			h.ServeHTTP(w, r)
		}
		took := time.Since(start)
		if w.n != benchBodySize {
			b.Fatalf("%d bytes, want %d", w.n, benchBodySize)
		}
		return took
	}
	for _, h := range []http.Handler{lru, l1} {
		round(h, 2)
		if st := w.h.Get(microcache.HeaderStatus); st != "HIT" {
			b.Fatalf("status %s, want HIT", st)
		}
	}
	const per = 1000
	var tLRU, tL1 time.Duration
	n := 0
	b.ResetTimer()
	for b.Loop() {
		tLRU += round(lru, per)
		tL1 += round(l1, per)
		n += per
	}
	b.ReportMetric(float64(tLRU.Nanoseconds())/float64(n), "lru-ns/hit")
	b.ReportMetric(float64(tL1.Nanoseconds())/float64(n), "l1-ns/hit")
	b.ReportMetric(float64(tL1)/float64(tLRU), "l1/lru")
}

// timed runs op b.N times and reports the mean as ns/op and the 50th and
// 99th percentiles in µs. setup, when not nil, runs before each op,
// untimed.
func timed(b *testing.B, setup func(i int), op func(i int)) {
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		if setup != nil {
			b.StopTimer()
			setup(i)
			b.StartTimer()
		}
		start := time.Now()
		op(i)
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p int) float64 { return float64(took[(len(took)-1)*p/100]) / 1e3 }
	b.ReportMetric(pct(50), "p50-µs")
	b.ReportMetric(pct(99), "p99-µs")
}

// BenchmarkLatency: a raw Redis GET of a stored object's bytes, and
// requests answered from L1, from L2 (a replica that never saw the
// object), and by the backend (a miss: lookup, lease, backend, store,
// release), with the shared tier; and a miss with a plain DriverLRU.
func BenchmarkLatency(b *testing.B) {
	var calls atomic.Int64
	b.Run("op=redis-GET", func(b *testing.B) {
		s := redistest.StartT(b)
		c := client(b, s)
		ctx := context.Background()
		c.Set(ctx, "k", benchBody, 0)
		timed(b, nil, func(int) {
			if v, err := c.Get(ctx, "k").Result(); err != nil || len(v) != benchBodySize {
				b.Fatal(err)
			}
		})
	})
	b.Run("op=L1-hit", func(b *testing.B) {
		s := redistest.StartT(b)
		d := newDriver(b, client(b, s), redisdriver.Options{MaxOptionsAge: time.Hour})
		waitSubscribed(b, d)
		h := benchReplica(b, d, benchOrigin(&calls, 0))
		serve(b, h, "/x")
		timed(b, nil, func(int) { serve(b, h, "/x") })
	})
	b.Run("op=L2-hit", func(b *testing.B) {
		s := redistest.StartT(b)
		c := client(b, s)
		opts := redisdriver.Options{Prefix: "l2:"}
		writer := benchReplica(b, newDriver(b, c, opts), benchOrigin(&calls, 0))
		reader := benchReplica(b, newDriver(b, c, opts), benchOrigin(&calls, 0))
		timed(b, func(i int) { serve(b, writer, fmt.Sprintf("/k%d", i)) }, func(i int) {
			if st := serve(b, reader, fmt.Sprintf("/k%d", i)); st != "HIT" {
				b.Fatalf("status %s, want HIT", st)
			}
		})
	})
	b.Run("op=miss", func(b *testing.B) {
		s := redistest.StartT(b)
		d := newDriver(b, client(b, s), redisdriver.Options{})
		waitSubscribed(b, d)
		h := benchReplica(b, d, benchOrigin(&calls, 0))
		timed(b, nil, func(i int) { serve(b, h, fmt.Sprintf("/m%d", i)) })
	})
	b.Run("op=miss-DriverLRU", func(b *testing.B) {
		h := benchReplica(b, microcache.NewDriverLRU(1<<20), benchOrigin(&calls, 0))
		timed(b, nil, func(i int) { serve(b, h, fmt.Sprintf("/m%d", i)) })
	})
	// A miss as an HTTP/1.1 client on loopback sees it: until it has read
	// the whole body (by its Content-Length), whatever the handler does
	// after; with a round trip added to every Redis command, as a Redis
	// on another host costs.
	for _, rtt := range []time.Duration{0, time.Millisecond} {
		name := "op=miss-client-h1"
		if rtt > 0 {
			name += "-rtt" + rtt.String()
		}
		b.Run(name, func(b *testing.B) { benchMissClient(b, rtt, &calls) })
	}
}

// benchMissClient times misses as an HTTP/1.1 client on loopback sees
// them, with rtt added to every Redis command (a Redis on another host).
func benchMissClient(b *testing.B, rtt time.Duration, calls *atomic.Int64) {
	{
		s := redistest.StartT(b)
		c := client(b, s)
		if rtt > 0 {
			c.AddHook(delayed(rtt))
		}
		d := newDriver(b, c, redisdriver.Options{})
		waitSubscribed(b, d)
		srv := httptest.NewServer(benchReplica(b, d, benchOrigin(calls, 0)))
		b.Cleanup(srv.Close)
		// A connection per request: a kept-alive connection would carry
		// the next request only once the handler returned, whatever the
		// client got before.
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		timed(b, nil, func(i int) {
			res, err := hc.Get(fmt.Sprintf("%s/c%d", srv.URL, i))
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if n != benchBodySize {
				b.Fatalf("%d bytes, want %d", n, benchBodySize)
			}
		})
	}
}

// delayed is a go-redis hook that delays every command by a round trip.
type delayed time.Duration

func (d delayed) DialHook(next redis.DialHook) redis.DialHook { return next }

func (d delayed) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		time.Sleep(time.Duration(d))
		return next(ctx, cmd)
	}
}

func (d delayed) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		time.Sleep(time.Duration(d))
		return next(ctx, cmds)
	}
}

// BenchmarkDown: requests while the Redis server is killed, once the
// breaker is open: hits from L1 and misses, with no network call.
func BenchmarkDown(b *testing.B) {
	var calls atomic.Int64
	setup := func(b *testing.B) http.Handler {
		s := redistest.StartT(b)
		d := newDriver(b, client(b, s), redisdriver.Options{})
		waitSubscribed(b, d)
		h := benchReplica(b, d, benchOrigin(&calls, 0))
		serve(b, h, "/x")
		s.Kill()
		for i := 0; d.Available(); i++ {
			serve(b, h, fmt.Sprintf("/open%d", i))
		}
		return h
	}
	b.Run("op=L1-hit", func(b *testing.B) {
		h := setup(b)
		timed(b, nil, func(int) { serve(b, h, "/x") })
	})
	b.Run("op=miss", func(b *testing.B) {
		h := setup(b)
		timed(b, nil, func(i int) { serve(b, h, fmt.Sprintf("/m%d", i)) })
	})
}

// BenchmarkOriginCalls: backend calls per key per TTL under steady load
// (six clients spread over the replicas, ten keys, a TTL of 100ms, a
// backend taking 2ms), for one and three replicas, each with its own
// DriverLRU or all sharing Redis. One op is one TTL of load.
func BenchmarkOriginCalls(b *testing.B) {
	const (
		ttl     = 100 * time.Millisecond
		keys    = 10
		clients = 6
	)
	for _, replicas := range []int{1, 3} {
		for _, shared := range []bool{false, true} {
			b.Run(fmt.Sprintf("replicas=%d/shared=%v", replicas, shared), func(b *testing.B) {
				var calls atomic.Int64
				origin := benchOrigin(&calls, 2*time.Millisecond)
				var hs []http.Handler
				var c *redis.Client
				if shared {
					c = client(b, redistest.StartT(b))
				}
				for range replicas {
					var d microcache.Driver = microcache.NewDriverLRU(10000)
					if shared {
						rd := newDriver(b, c, redisdriver.Options{Prefix: "oc:"})
						waitSubscribed(b, rd)
						d = rd
					}
					m := microcache.New(microcache.Config{TTL: ttl, CollapsedForwarding: true, Driver: d})
					b.Cleanup(m.Stop)
					hs = append(hs, m.Middleware(origin))
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for i := range clients {
					wg.Go(func() {
						tick := time.NewTicker(200 * time.Microsecond)
						defer tick.Stop()
						for k := i; ; k++ {
							select {
							case <-stop:
								return
							case <-tick.C:
							}
							w := httptest.NewRecorder()
							r, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://bench.example/k%d", k%keys), nil)
							hs[(i+k)%replicas].ServeHTTP(w, r)
						}
					})
				}
				b.ResetTimer()
				time.Sleep(time.Duration(b.N) * ttl)
				b.StopTimer()
				close(stop)
				wg.Wait()
				b.ReportMetric(float64(calls.Load())/float64(keys*b.N), "origin-calls/key/TTL")
			})
		}
	}
}
