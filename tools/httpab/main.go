// Command httpab serves one body three ways, on three ports, to split the
// cost of a cache hit over HTTP into its parts:
//
//	bare     a handler writing Content-Type, Content-Length and the body
//	headers  the same handler, also writing the two headers a hit adds
//	         (Microcache: HIT and Age), with no cache
//	cache    the bare handler behind the microcache middleware (TTL 30s,
//	         NewDriverLRU(10000), CollapsedForwarding, Exposed), as in
//	         ../shared/bench/http.sh
//
// headers/bare is what the two extra headers cost net/http and the wire;
// cache/headers is what the middleware's own work costs.
//
//	go run ./tools/httpab [-size 1024] [-port 18191]
//
// It serves bare on -port, headers on -port+1 and cache on -port+2 until
// interrupted. tools/httpab/ab.sh builds it and drives it with wrk, server
// and wrk on separate CPUs, alternating targets.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/httpimp/microcache"
)

func main() {
	size := flag.Int("size", 1024, "response body size in bytes")
	port := flag.Int("port", 18191, "port of the bare server; headers and cache use the next two")
	flag.Parse()
	if *size < 0 || *port <= 0 || *port > 65533 {
		log.Fatal("httpab: -size must be >= 0 and -port within 1..65533")
	}

	cache := microcache.New(microcache.Config{
		TTL:                 30 * time.Second,
		Driver:              microcache.NewDriverLRU(10000),
		CollapsedForwarding: true,
		Exposed:             true,
	})
	defer cache.Stop()

	var servers []*http.Server
	for _, h := range targets(*size, cache) {
		servers = append(servers, &http.Server{Handler: h})
	}
	for i, srv := range servers {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port+i))
		if err != nil {
			log.Fatalf("httpab: %v", err)
		}
		go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	}
	fmt.Printf("bare http://127.0.0.1:%d/  headers http://127.0.0.1:%d/  cache http://127.0.0.1:%d/\n", *port, *port+1, *port+2)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()
	for _, srv := range servers {
		srv.Shutdown(context.Background()) //nolint:errcheck // exiting anyway
	}
}

// targets returns the bare, headers and cache handlers (see the package
// doc), the last one served through cache.
func targets(size int, cache *microcache.Microcache) []http.Handler {
	bare := origin(size)
	withHeaders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set(microcache.HeaderStatus, microcache.StatusHit)
		h.Set("Age", "3")
		bare.ServeHTTP(w, r)
	})
	return []http.Handler{bare, withHeaders, cache.Middleware(bare)}
}

// origin returns a handler that writes a fixed body of size bytes with an
// explicit Content-Length, as ../shared/bench's servers do.
func origin(size int) http.Handler {
	body := make([]byte, size)
	for i := range body {
		body[i] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"[i%63]
	}
	clen := strconv.Itoa(size)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", clen)
		w.WriteHeader(http.StatusOK)
		w.Write(body) //nolint:errcheck // a client write error has no one to report to
	})
}
