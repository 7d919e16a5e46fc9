// Command soak runs the microcache middleware under sustained load against a
// backend with injected faults, and checks that memory and goroutines stay
// bounded and that every response body belongs to its request.
//
//	go run ./tools/soak -duration 30s [-workers 32] [-max-requests N] [-keys N]
//
// It starts an HTTP server on 127.0.0.1:0 with the middleware in front of a
// backend that answers 5% of requests with a 5xx, panics on 1%, stalls past
// the Timeout on 1% and otherwise returns a 1-64 KiB body that encodes the
// request's path and query. An in-process load generator drives it over
// keep-alive connections until -duration passes or -max-requests requests
// were made. It prints a report at start and end, and exits with status 1
// when the heap at the end exceeds the start plus the driver's byte budget
// plus 64 MiB, when more than 20 goroutines outlive the load and the
// server, or when any response body did not belong to its request.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/httpimp/microcache"
)

// config is what one soak run does.
type config struct {
	Duration    time.Duration // load stops after this long
	Workers     int           // concurrent clients
	MaxRequests int64         // load stops after this many requests
	Keys        int           // distinct path+query combinations

	MinBody, MaxBody int // body sizes, in bytes

	TTL, StaleIfError, StaleWhileRevalidate, Timeout time.Duration

	DriverObjects int
	DriverBytes   int64 // also the heap budget for stored objects
	MonitorEvery  time.Duration

	Rate5xx, RatePanic, RateStall float64 // fractions of backend calls

	Out io.Writer // progress and the report
}

func defaultConfig() config {
	return config{
		Duration:             30 * time.Second,
		Workers:              32,
		MaxRequests:          50_000_000,
		Keys:                 20_000,
		MinBody:              1 << 10,
		MaxBody:              64 << 10,
		TTL:                  time.Second,
		StaleIfError:         10 * time.Second,
		StaleWhileRevalidate: time.Second,
		Timeout:              200 * time.Millisecond,
		DriverObjects:        100_000,
		DriverBytes:          32 << 20,
		MonitorEvery:         time.Second,
		Rate5xx:              0.05,
		RatePanic:            0.01,
		RateStall:            0.01,
		Out:                  os.Stdout,
	}
}

// snapshot is the process state at one moment.
type snapshot struct {
	HeapAlloc   uint64
	Goroutines  int
	DriverBytes int64
	DriverLen   int
	Evictions   uint64
}

func (s snapshot) String() string {
	return fmt.Sprintf("HeapAlloc=%.1fMiB NumGoroutine=%d driver: Len=%d Bytes=%.1fMiB Evictions=%d",
		float64(s.HeapAlloc)/(1<<20), s.Goroutines, s.DriverLen, float64(s.DriverBytes)/(1<<20), s.Evictions)
}

// report is the outcome of a run.
type report struct {
	Requests     int64         // responses received (any status)
	Statuses     map[int]int64 // by status code
	ClientErrors int64         // requests that failed other than by an aborted connection
	Aborted      int64         // connections closed mid-request (how a panic reaches a client)
	Mismatches   int64         // 200 bodies that did not belong to their request
	Elapsed      time.Duration

	BackendCalls, Injected5xx, InjectedPanics, InjectedStalls int64
	ServerPanics                                              int64 // panics net/http logged

	Start, End snapshot
	Failures   []string // reasons to exit non-zero
}

func main() {
	cfg := defaultConfig()
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to apply load")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent client workers")
	flag.Int64Var(&cfg.MaxRequests, "max-requests", cfg.MaxRequests, "stop after this many requests")
	flag.IntVar(&cfg.Keys, "keys", cfg.Keys, "distinct path+query combinations")
	flag.Parse()
	rep, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if len(rep.Failures) > 0 {
		os.Exit(1)
	}
}

// run performs one soak run and prints its report to cfg.Out.
func run(cfg config) (*report, error) {
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	rep := &report{Statuses: make(map[int]int64)}
	driver := microcache.NewDriverLRUBytes(cfg.DriverObjects, cfg.DriverBytes)
	takeSnapshot := func() snapshot {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return snapshot{
			HeapAlloc:   ms.HeapAlloc,
			Goroutines:  runtime.NumGoroutine(),
			DriverBytes: driver.Bytes(),
			DriverLen:   driver.Len(),
			Evictions:   driver.Evictions(),
		}
	}
	rep.Start = takeSnapshot()
	fmt.Fprintf(out, "soak: start: %v\n", rep.Start)

	began := time.Now()
	cache := microcache.New(microcache.Config{
		Nocache:              true, // the backend opts in with microcache-cache: 1
		Timeout:              cfg.Timeout,
		TTL:                  cfg.TTL,
		StaleIfError:         cfg.StaleIfError,
		StaleRecache:         true,
		StaleWhileRevalidate: cfg.StaleWhileRevalidate,
		CollapsedForwarding:  true,
		HashQuery:            true,
		Exposed:              true,
		Monitor: microcache.MonitorFunc(cfg.MonitorEvery, func(s microcache.Stats) {
			fmt.Fprintf(out, "soak: %5.1fs stats: Size=%d Hits=%d Misses=%d Stales=%d Passes=%d Backend=%d Errors=%d Timeouts=%d Panics=%d CacheErrors=%d driver Bytes=%.1fMiB\n",
				time.Since(began).Seconds(), s.Size, s.Hits, s.Misses, s.Stales, s.Passes, s.Backend, s.Errors, s.Timeouts, s.Panics, s.CacheErrors,
				float64(driver.Bytes())/(1<<20))
		}),
		Driver:     driver,
		Compressor: microcache.CompressorSnappy{},
	})
	be := &faultyBackend{cfg: cfg}
	panicLog := &lineCounter{match: []byte("panic serving")}
	srv := &http.Server{
		Handler:           cache.Middleware(be),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(panicLog, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cache.Stop()
		return nil, err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "soak: serving on http://%s, %d workers for %v (at most %d requests) over %d keys\n",
		ln.Addr(), cfg.Workers, cfg.Duration, cfg.MaxRequests, cfg.Keys)

	load(cfg, "http://"+ln.Addr().String(), rep)
	rep.Elapsed = time.Since(began)

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		rep.Failures = append(rep.Failures, "server shutdown: "+err.Error())
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		rep.Failures = append(rep.Failures, fmt.Sprintf("serve: %v", err))
	}
	cache.Stop() // waits for background refreshes and abandoned handlers

	// Idle connections of the client and the server close asynchronously.
	for i := 0; i < 300 && runtime.NumGoroutine() > rep.Start.Goroutines+20; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	rep.End = takeSnapshot()
	runtime.KeepAlive(driver) // what it holds counts in the end heap

	rep.BackendCalls = be.calls.Load()
	rep.Injected5xx, rep.InjectedPanics, rep.InjectedStalls = be.errors.Load(), be.panics.Load(), be.stalls.Load()
	rep.ServerPanics = panicLog.count.Load()

	budget := uint64(cfg.DriverBytes) + 64<<20
	if rep.End.HeapAlloc > rep.Start.HeapAlloc+budget {
		rep.Failures = append(rep.Failures, fmt.Sprintf("heap grew from %d to %d bytes, more than the %d bytes allowed",
			rep.Start.HeapAlloc, rep.End.HeapAlloc, budget))
	}
	if d := rep.End.Goroutines - rep.Start.Goroutines; d > 20 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d goroutines outlived the load and the server", d))
	}
	if rep.Mismatches > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d response bodies did not belong to their request", rep.Mismatches))
	}
	if rep.Requests == 0 {
		rep.Failures = append(rep.Failures, "no request was answered")
	}
	printReport(out, rep)
	return rep, nil
}

func printReport(out io.Writer, rep *report) {
	codes := make([]int, 0, len(rep.Statuses))
	for c := range rep.Statuses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var st []string
	for _, c := range codes {
		st = append(st, fmt.Sprintf("%d:%d", c, rep.Statuses[c]))
	}
	fmt.Fprintf(out, "soak: served %d requests in %v (%.0f/s); statuses %s\n",
		rep.Requests, rep.Elapsed.Round(time.Millisecond), float64(rep.Requests)/rep.Elapsed.Seconds(), strings.Join(st, " "))
	fmt.Fprintf(out, "soak: client errors %d, aborted connections %d, body mismatches %d\n",
		rep.ClientErrors, rep.Aborted, rep.Mismatches)
	fmt.Fprintf(out, "soak: backend calls %d (%.3f per request); injected 5xx %d, panics %d (net/http logged %d), stalls %d\n",
		rep.BackendCalls, float64(rep.BackendCalls)/float64(max(rep.Requests, 1)), rep.Injected5xx, rep.InjectedPanics, rep.ServerPanics, rep.InjectedStalls)
	fmt.Fprintf(out, "soak: end:   %v\n", rep.End)
	if len(rep.Failures) == 0 {
		fmt.Fprintln(out, "soak: PASS")
		return
	}
	for _, f := range rep.Failures {
		fmt.Fprintln(out, "soak: FAIL:", f)
	}
}

// load drives the server at base until cfg.Duration passes or
// cfg.MaxRequests requests were made.
func load(cfg config, base string, rep *report) {
	transport := &http.Transport{
		MaxIdleConns:        cfg.Workers * 2,
		MaxIdleConnsPerHost: cfg.Workers * 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	deadline := time.Now().Add(cfg.Duration)
	var issued atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			zipf := rand.NewZipf(rng, 1.1, 1, uint64(max(cfg.Keys-1, 1)))
			local := report{Statuses: make(map[int]int64)}
			for time.Now().Before(deadline) && issued.Add(1) <= cfg.MaxRequests {
				k := zipf.Uint64()
				uri := "/item/" + strconv.FormatUint(k/8, 10) + "?v=" + strconv.FormatUint(k%8, 10)
				res, err := client.Get(base + uri)
				var b []byte
				if err == nil {
					b, err = io.ReadAll(res.Body)
					res.Body.Close()
				}
				switch {
				case err != nil && isAbort(err):
					local.Aborted++
					continue
				case err != nil:
					local.ClientErrors++
					continue
				}
				local.Requests++
				local.Statuses[res.StatusCode]++
				if res.StatusCode == http.StatusOK && !belongsTo(b, uri) {
					if local.Mismatches++; local.Mismatches <= 5 {
						fmt.Fprintf(cfg.Out, "soak: body for %s does not belong to it: %.80q\n", uri, b)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Requests += local.Requests
			rep.ClientErrors += local.ClientErrors
			rep.Aborted += local.Aborted
			rep.Mismatches += local.Mismatches
			for c, n := range local.Statuses {
				rep.Statuses[c] += n
			}
		}()
	}
	wg.Wait()
}

// isAbort reports whether err is a connection the server closed or reset
// mid-request, which is how a handler's panic reaches a client.
func isAbort(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// faultyBackend answers with a body that encodes the request, after
// injecting faults at the configured rates.
type faultyBackend struct {
	cfg                           config
	calls, errors, panics, stalls atomic.Int64
	seq                           atomic.Int64
}

var errInjectedPanic = errors.New("soak: injected backend panic")

func (b *faultyBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	x := rand.Float64()
	switch {
	case x < b.cfg.Rate5xx:
		b.errors.Add(1)
		w.WriteHeader(500 + rand.IntN(4))
		io.WriteString(w, "injected failure\n")
		return
	case x < b.cfg.Rate5xx+b.cfg.RatePanic:
		b.panics.Add(1)
		panic(errInjectedPanic)
	case x < b.cfg.Rate5xx+b.cfg.RatePanic+b.cfg.RateStall:
		b.stalls.Add(1)
		time.Sleep(b.cfg.Timeout + 100*time.Millisecond) // ignores the context
	}
	size := b.cfg.MinBody + rand.IntN(b.cfg.MaxBody-b.cfg.MinBody+1)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set(microcache.HeaderCache, "1")
	w.Write(makeBody(r.URL.RequestURI(), size, b.seq.Add(1)))
}

// makeBody returns a body of size bytes (or just its first line, when that
// is longer): a line naming uri, size and seq, then uri and a space
// repeated.
func makeBody(uri string, size int, seq int64) []byte {
	b := fmt.Appendf(make([]byte, 0, size+len(uri)+1), "uri=%s size=%d seq=%d\n", uri, size, seq)
	head := len(b)
	for len(b) < size {
		b = append(b, uri...)
		b = append(b, ' ')
	}
	return b[:max(size, head)]
}

// belongsTo reports whether body is, whole, what makeBody made for uri.
func belongsTo(body []byte, uri string) bool {
	line, _, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return false
	}
	f := strings.Fields(string(line))
	if len(f) != 3 || f[0] != "uri="+uri {
		return false
	}
	size, err1 := strconv.Atoi(strings.TrimPrefix(f[1], "size="))
	seq, err2 := strconv.ParseInt(strings.TrimPrefix(f[2], "seq="), 10, 64)
	if err1 != nil || err2 != nil || size != len(body) {
		return false
	}
	return bytes.Equal(body, makeBody(uri, size, seq))
}

// lineCounter counts the log writes that contain match.
type lineCounter struct {
	match []byte
	count atomic.Int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	if bytes.Contains(p, c.match) {
		c.count.Add(1)
	}
	return len(p), nil
}
