// Command gin serves a gin engine behind the microcache.
//
//	cd examples/gin && go run . [-addr localhost:8080]
//
// The cache wraps the whole engine, which is an http.Handler:
// http.Server{Handler: cache.Middleware(engine)}. Then
// curl -i http://localhost:8080/ twice shows "Microcache: MISS", then
// "Microcache: HIT"; /hello/:name is cached per name, and /now is never
// cached. Middleware registered on the engine (logging, recovery) runs
// only when the cache calls the engine: on misses and refreshes, not on
// hits.
//
// Why not as a gin middleware (engine.Use, or per route): gin hands its
// handlers a *gin.Context taken from a pool and put back when
// engine.ServeHTTP returns. An adapter that runs the rest of the chain
// (c.Next) from inside cache.Middleware's handler would, for a
// stale-while-revalidate refresh or a handler still running after
// Config.Timeout, call c.Next after the request has ended, on another
// goroutine, with a context already reused by another request; and gin
// writes to c.Writer, not to the writer the cache hands the handler, so the
// cache would only see empty answers, and store nothing. Wrapping the
// engine gives every call, background ones included, a context of its own.
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

	"github.com/gin-gonic/gin"
	"github.com/httpimp/microcache"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on (host:port; port 0 picks a free one)")
	flag.Parse()
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode) // no debug banner; GIN_MODE=debug brings it back
	}
	if err := run(*addr); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gin example: %w", err)
	}
	handler, cache := newHandler()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("gin example: open %s (try curl -i twice: MISS, then HIT)\n", displayURL(addr, ln.Addr()))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Print("gin example: shutting down")
	case serveErr = <-served:
	}
	stop() // a second Ctrl-C now kills the process at once

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Printf("gin example: shutdown: %v", err)
	}
	cache.Stop() // waits for background refreshes

	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("gin example: %w", serveErr)
	}
	return nil
}

// newHandler returns the gin engine wrapped by a new Microcache, and the
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

	engine := gin.New()
	engine.Use(gin.Recovery())
	engine.GET("/", func(c *gin.Context) {
		c.Header(microcache.HeaderTTL, "30") // fresh for 30s
		c.String(http.StatusOK, "hello from gin, generated at %s\n", time.Now().Format(time.RFC3339Nano))
	})
	engine.GET("/hello/:name", func(c *gin.Context) {
		// One object per path, so per name.
		c.String(http.StatusOK, "hello, %s (generated at %s)\n", c.Param("name"), time.Now().Format(time.RFC3339Nano))
	})
	engine.GET("/now", func(c *gin.Context) {
		c.Header(microcache.HeaderNocache, "1") // never stored
		c.String(http.StatusOK, "now: %s\n", time.Now().Format(time.RFC3339Nano))
	})
	// The whole engine, not a gin middleware: see the package comment.
	return cache.Middleware(engine), cache
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
