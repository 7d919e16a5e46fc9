// Command echo serves an echo instance behind the microcache.
//
//	cd examples/echo && go run . [-addr localhost:8080]
//
// The cache wraps the whole instance, which is an http.Handler:
// http.Server{Handler: cache.Middleware(e)}. Then
// curl -i http://localhost:8080/ twice shows "Microcache: MISS", then
// "Microcache: HIT"; /hello/:name is cached per name, and /now is never
// cached. Middleware registered with e.Use (logging, recovery) runs only
// when the cache calls the instance: on misses and refreshes, not on hits.
//
// Why not e.Use(echo.WrapMiddleware(cache.Middleware)), or the same per
// route: echo hands its handlers an echo.Context taken from a pool and put
// back when e.ServeHTTP returns, and WrapMiddleware calls the rest of the
// chain with it from inside the cache's handler. A stale-while-revalidate
// refresh, and a handler still running after Config.Timeout, run that after
// the request has ended, on another goroutine, with a context already
// reused by another request (tried: refreshes of /hello/n0 stored another
// name's page under that URL). A handler's returned error would also be
// turned into a response by echo's HTTPErrorHandler only after the cache's
// handler has returned, too late for the cache to see it. Wrapping the
// instance gives every call, background ones included, a context of its
// own, and the cache sees the error pages too.
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

	"github.com/httpimp/microcache"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
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
		return fmt.Errorf("echo example: %w", err)
	}
	handler, cache := newHandler()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("echo example: open %s (try curl -i twice: MISS, then HIT)\n", displayURL(addr, ln.Addr()))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Print("echo example: shutting down")
	case serveErr = <-served:
	}
	stop() // a second Ctrl-C now kills the process at once

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Printf("echo example: shutdown: %v", err)
	}
	cache.Stop() // waits for background refreshes

	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("echo example: %w", serveErr)
	}
	return nil
}

// newHandler returns the echo instance wrapped by a new Microcache, and
// the Microcache, which the caller stops.
func newHandler() (http.Handler, *microcache.Microcache) {
	cache := microcache.New(microcache.Config{
		TTL:                  10 * time.Second,
		StaleWhileRevalidate: 30 * time.Second,
		StaleIfError:         10 * time.Minute,
		CollapsedForwarding:  true,
		Timeout:              3 * time.Second,
		Exposed:              true,
	})

	e := echo.New()
	e.Use(middleware.Recover())
	e.GET("/", func(c echo.Context) error {
		c.Response().Header().Set(microcache.HeaderTTL, "30") // fresh for 30s
		return c.String(http.StatusOK, fmt.Sprintf("hello from echo, generated at %s\n", time.Now().Format(time.RFC3339Nano)))
	})
	e.GET("/hello/:name", func(c echo.Context) error {
		// One object per path, so per name.
		return c.String(http.StatusOK, fmt.Sprintf("hello, %s (generated at %s)\n", c.Param("name"), time.Now().Format(time.RFC3339Nano)))
	})
	e.GET("/now", func(c echo.Context) error {
		c.Response().Header().Set(microcache.HeaderNocache, "1") // never stored
		return c.String(http.StatusOK, fmt.Sprintf("now: %s\n", time.Now().Format(time.RFC3339Nano)))
	})
	// The whole instance, not echo.WrapMiddleware: see the package comment.
	return cache.Middleware(e), cache
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
