package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/httpimp/microcache"
)

// serveMain runs the serve subcommand until SIGINT or SIGTERM.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on; port 0 picks a free one")
	origin := fs.String("origin", "", "`URL` of the suite's origin server, e.g. http://127.0.0.1:8000 (required)")
	ttl := fs.Duration("ttl", 30*time.Second, "Config.TTL: how long a response is kept")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	target, err := originURL(*origin)
	if err != nil {
		return err
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}
	if *ttl <= 0 {
		return fmt.Errorf("serve: -ttl must be positive, got %v", *ttl)
	}

	cache := microcache.New(microcache.Config{
		TTL:       *ttl,
		HashQuery: true,
		Exposed:   true,
	})
	defer cache.Stop()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           cache.Middleware(newProxy(target)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(os.Stderr, "cachetests: ", 0),
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err // Serve only returns early on a listener failure
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// originURL parses and checks the -origin flag: an absolute http URL.
func originURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("serve: -origin is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("serve: -origin: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("serve: -origin %q is not an absolute http(s) URL", s)
	}
	return u, nil
}

// checkLoopback rejects listen addresses other than loopback ones: the
// proxy forwards anything it receives to the origin, so it must not be
// reachable from other hosts.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("serve: -addr: %w", err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("serve: -addr %q is not a loopback address", addr)
	}
	return nil
}

// newProxy returns a reverse proxy to target that keeps the client's Host
// header, adds no forwarding headers and ignores HTTP_PROXY and friends.
func newProxy(target *url.URL) *httputil.ReverseProxy {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport: tr,
		ErrorLog:  log.New(os.Stderr, "cachetests: proxy: ", 0),
	}
}
