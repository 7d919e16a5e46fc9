// Command chi serves a chi router behind the microcache.
//
//	cd examples/chi && go run . [-addr localhost:8080]
//
// The cache wraps the whole router: cache.Middleware(r). Then
// curl -i http://localhost:8080/ twice shows "Microcache: MISS", then
// "Microcache: HIT"; /hello/{name} is cached per name, and /now is never
// cached.
//
// Why not r.Use(cache.Middleware): chi keeps its routing state (the route
// context behind chi.URLParam) in a pooled object that it takes back when
// ServeHTTP returns. A stale-while-revalidate refresh, and a handler still
// running after Config.Timeout, call the handler after that, on another
// goroutine, with the client's context values: inside the router they would
// route with, and read URL parameters from, a route context already reused
// by another request (tried: the race detector reports it). Outside the
// router, every call to r.ServeHTTP, background ones included, gets a route
// context of its own. (Without StaleWhileRevalidate and Timeout the handler
// only ever runs during its request, and r.Use works, but the wrapping
// below is safe with every option.)
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
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/httpimp/microcache"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on (host:port; port 0 picks a free one)")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("chi example: %w", err)
	}
	handler, cache := newHandler()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("chi example: open %s (try curl -i twice: MISS, then HIT)\n", displayURL(addr, ln.Addr()))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Print("chi example: shutting down")
	case serveErr = <-served:
	}
	stop() // a second Ctrl-C now kills the process at once

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Printf("chi example: shutdown: %v", err)
	}
	cache.Stop() // waits for background refreshes

	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("chi example: %w", serveErr)
	}
	return nil
}

// newHandler returns the chi router wrapped by a new Microcache, and the
// Microcache, which the caller stops.
func newHandler() (http.Handler, *microcache.Microcache) {
	cache := microcache.New(microcache.Config{
		TTL:                  10 * time.Second,
		StaleWhileRevalidate: 30 * time.Second,
		StaleIfError:         10 * time.Minute,
		CollapsedForwarding:  true,
		Timeout:              3 * time.Second,
		Exposed:              true,
	})

	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(microcache.HeaderTTL, "30") // fresh for 30s
		fmt.Fprintf(w, "hello from chi, generated at %s\n", time.Now().Format(time.RFC3339Nano))
	})
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		// One object per path, so per name.
		fmt.Fprintf(w, "hello, %s (generated at %s)\n", chi.URLParam(r, "name"), time.Now().Format(time.RFC3339Nano))
	})
	r.Get("/now", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(microcache.HeaderNocache, "1") // never stored
		fmt.Fprintf(w, "now: %s\n", time.Now().Format(time.RFC3339Nano))
	})
	// The whole router, not r.Use(cache.Middleware): see the package comment.
	return cache.Middleware(r), cache
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
