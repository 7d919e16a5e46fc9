// Command fiber serves a fiber v3 app behind the microcache.
//
//	cd examples/fiber && go run . [-addr localhost:8080]
//
// Fiber runs on fasthttp, not net/http, so the app is served by net/http
// through fiber's adaptor, and the cache wraps that:
// http.Server{Handler: cache.Middleware(adaptor.FiberApp(app))}. Then
// curl -i http://localhost:8080/ twice shows "Microcache: MISS", then
// "Microcache: HIT"; /hello/:name is cached per name, and /now is never
// cached. The app is not started with app.Listen: net/http serves it.
//
// What the adaptor costs, on misses and refreshes only (a hit is answered
// by the cache and never reaches fiber): each call copies the request into
// a fasthttp request and the response's headers and body back to net/http,
// takes the app's mutex (adaptor.FiberApp calls app.Handler, which prepares
// the routes, on every request), and allocates a 32 KiB copy buffer even
// for a GET without a body. BenchmarkAdaptor measures it; a nil r.Body in
// place of http.NoBody, in a shallow copy of the request, avoids the
// buffer. The adaptor buffers the whole response unless the app streams a
// body (SendStream), which the cache then passes through uncached. It sets
// each request header with Set, so a header sent on several lines reaches
// fiber with its last value only. fasthttp's server and its settings
// (Prefork, fiber.Config's timeouts and limits other than BodyLimit, the
// OnListen hooks) are not used: http.Server's are.
//
// Why not app.Use(adaptor.HTTPMiddleware(cache.Middleware)): that adaptor
// runs the cache around a stub and calls c.Next only after the cache has
// returned, so the cache never sees the app's response (tried: every answer
// is an empty 200, marked MISS); and the stub touches the pooled fiber.Ctx,
// which a stale-while-revalidate refresh, or a handler still running after
// Config.Timeout, would do after the request has ended, on another
// goroutine, while the context serves another request. Wrapping the whole
// app gives every call, background ones included, a context of its own.
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

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/adaptor"
	"github.com/gofiber/fiber/v3/middleware/recover"
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
		return fmt.Errorf("fiber example: %w", err)
	}
	handler, cache := newHandler()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("fiber example: open %s (try curl -i twice: MISS, then HIT)\n", displayURL(addr, ln.Addr()))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Print("fiber example: shutting down")
	case serveErr = <-served:
	}
	stop() // a second Ctrl-C now kills the process at once

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Printf("fiber example: shutdown: %v", err)
	}
	cache.Stop() // waits for background refreshes

	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("fiber example: %w", serveErr)
	}
	return nil
}

// newHandler returns the fiber app, served through net/http by fiber's
// adaptor and wrapped by a new Microcache, and the Microcache, which the
// caller stops.
func newHandler() (http.Handler, *microcache.Microcache) {
	cache := microcache.New(microcache.Config{
		TTL:                  10 * time.Second,
		StaleWhileRevalidate: 30 * time.Second,
		StaleIfError:         10 * time.Minute,
		CollapsedForwarding:  true,
		Timeout:              3 * time.Second,
		Exposed:              true,
	})

	// The whole app, not adaptor.HTTPMiddleware: see the package comment.
	return cache.Middleware(adaptor.FiberApp(newApp())), cache
}

// newApp returns the fiber app and its routes.
func newApp() *fiber.App {
	app := fiber.New()
	app.Use(recover.New())
	app.Get("/", func(c fiber.Ctx) error {
		c.Set(microcache.HeaderTTL, "30") // fresh for 30s
		return c.SendString(fmt.Sprintf("hello from fiber, generated at %s\n", time.Now().Format(time.RFC3339Nano)))
	})
	app.Get("/hello/:name", func(c fiber.Ctx) error {
		// One object per path, so per name.
		return c.SendString(fmt.Sprintf("hello, %s (generated at %s)\n", c.Params("name"), time.Now().Format(time.RFC3339Nano)))
	})
	app.Get("/now", func(c fiber.Ctx) error {
		c.Set(microcache.HeaderNocache, "1") // never stored
		return c.SendString(fmt.Sprintf("now: %s\n", time.Now().Format(time.RFC3339Nano)))
	})
	return app
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
