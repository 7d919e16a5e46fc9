// Command basic is a demo server for the microcache middleware: a slow,
// random backend (10-100 ms, 10-100 KB per response) wrapped by a
// Microcache configured as in the README's full example.
//
//	go run ./examples/basic [-addr localhost:8080]
//
// Request the same URL twice (curl -i http://localhost:8080/) and compare
// the "Microcache" and "Age" response headers: MISS, then HIT. Stats are
// logged every 5 seconds, and once more on shutdown (Ctrl-C).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/httpimp/microcache"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on (host:port; port 0 picks a free one)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if err := run(*addr); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(addr string) error {
	// Bind first, so that a port in use is reported before anything else
	// starts.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("microcache demo: %w", err)
	}

	cache := microcache.New(microcache.Config{
		// Only responses carrying "microcache-cache: 1" are cached (the
		// backend below sets it). Without Nocache every storable response
		// is cached unless it says "microcache-nocache: 1".
		Nocache: true,

		// A backend request running longer than 3s is cancelled: the client
		// gets the stale copy when StaleIfError allows it, else 503 Service
		// Unavailable. Also bounds background revalidations.
		Timeout: 3 * time.Second,

		// A stored response is fresh (served as HIT) for 30s.
		// Per response: "microcache-ttl: 30".
		TTL: 30 * time.Second,

		// For up to 1h after expiry, the stale copy answers in place of a
		// 5xx, a timeout or a panic of the backend.
		// Per response: "microcache-stale-if-error: 3600".
		StaleIfError: time.Hour,

		// A stale copy served because the backend failed is stored again as
		// fresh for its TTL, so the failing backend is not asked again on
		// every request. Its Age keeps counting.
		StaleRecache: true,

		// For 30s after expiry, the stale copy is served at once (STALE)
		// while one background request refreshes it.
		// Per response: "microcache-stale-while-revalidate: 30".
		StaleWhileRevalidate: 30 * time.Second,

		// Concurrent misses for one object wait for a single backend
		// request and share its response.
		CollapsedForwarding: true,

		// The query string is part of the cache key (parameters sorted by
		// name) ...
		HashQuery: true,
		// ... except for the parameters listed here (none), e.g.
		// []string{"utm_source", "utm_medium"}.
		QueryIgnore: []string{},

		// Add "Microcache: HIT|MISS|STALE" to every response.
		Exposed: true,

		// Keep the Age header on HIT and STALE responses.
		SuppressAgeHeader: false,

		// Log the counts every 5s (each report covers the time since the
		// previous one), and once more when Stop is called.
		Monitor: microcache.MonitorFunc(5*time.Second, func(s microcache.Stats) {
			log.Printf("microcache stats: Size=%d Total=%d Hits=%d Misses=%d Stales=%d Backend=%d Errors=%d",
				s.Size, s.Hits+s.Misses+s.Stales, s.Hits, s.Misses, s.Stales, s.Backend, s.Errors)
		}),

		// Keep at most 10000 objects, least recently used evicted first.
		Driver: microcache.NewDriverLRU(10000),

		// Store bodies compressed with Snappy.
		Compressor: microcache.CompressorSnappy{},
	})

	srv := &http.Server{
		Handler:           cache.Middleware(http.HandlerFunc(backend)),
		ReadHeaderTimeout: 10 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("microcache demo: open %s (try curl -i twice)\n", displayURL(addr, ln.Addr()))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Print("microcache demo: shutting down")
	case serveErr = <-served:
	}
	stop() // a second Ctrl-C now kills the process at once

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Printf("microcache demo: shutdown: %v", err)
	}
	// Stop waits for background work and logs the last stats report.
	cache.Stop()

	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("microcache demo: %w", serveErr)
	}
	return nil
}

// backend is the slow handler behind the cache: it sleeps 10-100 ms and
// answers with a 10-100 KB JSON document.
func backend(w http.ResponseWriter, r *http.Request) {
	delay := time.Duration(10+rand.IntN(91)) * time.Millisecond
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return // timed out or client gone: nobody reads the answer
	}

	w.Header().Set("Content-Type", "application/json")
	// Config.Nocache is on: opt this response in to caching.
	w.Header().Set(microcache.HeaderCache, "1")
	w.Write(randomJSON(r.URL.RequestURI(), delay, 10<<10+rand.IntN(90<<10+1))) //nolint:errcheck // nothing to do about a failed write
}

var words = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett"}

// randomJSON returns a JSON document of exactly size bytes (or a little
// more, when size is too small for the fixed fields).
func randomJSON(uri string, delay time.Duration, size int) []byte {
	var b strings.Builder
	b.Grow(size)
	fmt.Fprintf(&b, `{"uri":%q,"generated":%q,"delay_ms":%d,"size":%d,"words":"`,
		uri, time.Now().Format(time.RFC3339Nano), delay.Milliseconds(), size)
	const end = "\"}\n"
	for b.Len()+len(end) < size {
		w := words[rand.IntN(len(words))]
		if room := size - len(end) - b.Len(); len(w)+1 > room {
			b.WriteString(strings.Repeat(".", room))
			break
		}
		b.WriteString(w)
		b.WriteByte(' ')
	}
	b.WriteString(end)
	return []byte(b.String())
}

// displayURL is the URL to open for a server listening on bound, asked to
// listen on addr: addr's host (localhost when it is empty or a wildcard)
// with the port actually bound.
func displayURL(addr string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	_, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "http://" + bound.String() + "/"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
