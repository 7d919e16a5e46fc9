// Command failover demonstrates stale-while-revalidate and stale-if-error
// with a backend you can break: GET /toggle switches it between healthy and
// answering 503 Service Unavailable.
//
//	go run ./examples/failover [-addr localhost:8080]
//
// It prints a walkthrough of curl commands at startup.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/httpimp/microcache"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on (host:port; port 0 picks a free one)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if err := run(*addr); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// broken is true while the backend answers 503.
var broken atomic.Bool

func run(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failover demo: %w", err)
	}

	cache := microcache.New(microcache.Config{
		// Fresh (HIT) for 5s after the backend answered.
		TTL: 5 * time.Second,
		// For the next 10s a request gets the stale copy at once (STALE)
		// while one background request refreshes it.
		StaleWhileRevalidate: 10 * time.Second,
		// For 10 minutes after expiry, the stale copy answers (STALE) in
		// place of a 5xx or a timeout of the backend.
		StaleIfError: 10 * time.Minute,
		// Do not store the stale copy again as fresh after a failure: every
		// request past the TTL asks the backend again and shows STALE.
		StaleRecache: false,
		// Concurrent misses share one backend request.
		CollapsedForwarding: true,
		// Add "Microcache: HIT|MISS|STALE" to responses.
		Exposed: true,
		// A backend slower than 2s is cut off: stale copy if allowed, else
		// 503.
		Timeout: 2 * time.Second,
	})

	mux := http.NewServeMux()
	// /toggle is served outside the cache, so every request reaches it.
	mux.HandleFunc("/toggle", toggle)
	mux.Handle("/", cache.Middleware(http.HandlerFunc(backend)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	printWalkthrough(displayURL(addr, ln.Addr()))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Print("failover demo: shutting down")
	case serveErr = <-served:
	}
	stop()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Printf("failover demo: shutdown: %v", err)
	}
	cache.Stop()

	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("failover demo: %w", serveErr)
	}
	return nil
}

// backend answers with the time it generated the response, or 503 while
// broken. Each call is logged, so background refreshes show up too.
func backend(w http.ResponseWriter, r *http.Request) {
	if broken.Load() {
		log.Printf("backend: %s %s -> 503 (broken)", r.Method, r.URL.RequestURI())
		http.Error(w, "backend is broken (GET /toggle to repair it)", http.StatusServiceUnavailable)
		return
	}
	log.Printf("backend: %s %s -> 200", r.Method, r.URL.RequestURI())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "hello from the backend\npath: %s\ngenerated at %s\n",
		r.URL.RequestURI(), time.Now().Format("15:04:05.000"))
}

// toggle flips the backend between healthy and broken.
func toggle(w http.ResponseWriter, _ *http.Request) {
	state := "healthy"
	if !broken.Load() {
		state = "broken (answers 503)"
	}
	broken.Store(!broken.Load())
	log.Printf("toggle: backend is now %s", state)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "backend is now %s\n", state)
}

func printWalkthrough(url string) {
	fmt.Printf(`microcache failover demo: %[1]s
TTL 5s, stale-while-revalidate 10s, stale-if-error 10m, timeout 2s.
Watch the "Microcache", "Age" and "generated at" lines:

  curl -i %[1]s             # MISS: answered by the backend
  curl -i %[1]s             # HIT: same "generated at", Age counts up
  sleep 5; curl -i %[1]s    # STALE: served at once, refreshed in the background
  curl -i %[1]s             # HIT: the refreshed copy, new "generated at"
  curl %[1]stoggle          # backend broken: it now answers 503
  sleep 16; curl -i %[1]s   # expired, backend fails: still STALE (stale-if-error)
  sleep 3; curl -i %[1]s    # STALE again, Age keeps growing
  curl %[1]stoggle          # backend healthy again
  curl -i %[1]s             # MISS: a fresh answer from the backend

`, url)
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
