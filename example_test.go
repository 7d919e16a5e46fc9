package microcache_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/httpimp/microcache"
)

func Example() {
	cache := microcache.New(microcache.Config{
		TTL:                  30 * time.Second,
		StaleIfError:         time.Hour,
		StaleWhileRevalidate: 30 * time.Second,
		CollapsedForwarding:  true,
		Exposed:              true,
	})
	defer cache.Stop()

	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("microcache-ttl", "10") // this URL: fresh for 10s
		io.WriteString(w, "hello")
	})
	srv := httptest.NewServer(cache.Middleware(origin))
	defer srv.Close()

	for range 2 {
		res, err := http.Get(srv.URL)
		if err != nil {
			panic(err)
		}
		res.Body.Close()
		fmt.Println(res.Header.Get("Microcache"), res.Header.Get("microcache-ttl") == "")
	}
	// Output:
	// MISS true
	// HIT true
}

func ExampleMonitorFunc() {
	monitor := microcache.MonitorFunc(time.Minute, func(s microcache.Stats) {
		fmt.Printf("hits=%d misses=%d backend=%d\n", s.Hits, s.Misses, s.Backend)
	})
	cache := microcache.New(microcache.Config{TTL: time.Minute, Monitor: monitor})
	h := cache.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	cache.Stop() // reports the counts since the last report
	// Output:
	// hits=2 misses=1 backend=1
}

func ExampleConfig_nocache() {
	// With Nocache, only responses that opt in are stored.
	cache := microcache.New(microcache.Config{Nocache: true, TTL: time.Minute, Exposed: true})
	defer cache.Stop()
	h := cache.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public" {
			w.Header().Set(microcache.HeaderCache, "1")
		}
		io.WriteString(w, "hello")
	}))
	for _, path := range []string{"/public", "/public", "/account", "/account"} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rr.Header().Get(microcache.HeaderStatus))
	}
	// Output:
	// /public MISS
	// /public HIT
	// /account MISS
	// /account MISS
}

func ExampleMicrocache_Purge() {
	cache := microcache.New(microcache.Config{TTL: time.Hour, Exposed: true})
	defer cache.Stop()
	version := 1
	h := cache.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "v%d", version)
	}))
	show := func() {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest("GET", "https://example.com/products/1", nil))
		fmt.Println(rr.Header().Get(microcache.HeaderStatus), rr.Body.String())
	}
	show()
	show()
	version = 2 // the product changed, outside any request
	if err := cache.Purge(context.Background(), "https://example.com/products/1"); err != nil {
		panic(err)
	}
	show()
	// Output:
	// MISS v1
	// HIT v1
	// MISS v2
}

func ExampleMicrocache_PurgeTag() {
	cache := microcache.New(microcache.Config{TTL: time.Hour, Exposed: true})
	defer cache.Stop()
	h := cache.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/about" {
			w.Header().Set(microcache.HeaderTags, "catalog") // product pages and lists
		}
		io.WriteString(w, r.URL.Path)
	}))
	get := func(path string) string {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest("GET", path, nil))
		return path + " " + rr.Header().Get(microcache.HeaderStatus)
	}
	for _, p := range []string{"/products/1", "/products", "/about"} {
		get(p)
	}
	if err := cache.PurgeTag(context.Background(), "catalog"); err != nil {
		panic(err)
	}
	fmt.Println(get("/products/1"), get("/products"), get("/about"))
	// Output:
	// /products/1 MISS /products MISS /about HIT
}

func ExampleConfig_cacheStatus() {
	cache := microcache.New(microcache.Config{
		TTL:         time.Minute,
		CacheStatus: "edge", // RFC 9211 Cache-Status on every response
		Observe: func(r *http.Request, o microcache.Outcome) {
			fmt.Println("observed:", r.URL.Path, o.Kind)
		},
	})
	defer cache.Stop()
	h := cache.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	for _, auth := range []string{"", "", "Bearer x"} {
		r := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		fmt.Println(rr.Header().Get("Cache-Status"))
	}
	s := cache.Stats() // cumulative since New
	fmt.Println(s.Misses, s.Hits, s.Passes)
	// Output:
	// observed: / miss
	// edge; fwd=uri-miss; fwd-status=200; stored
	// observed: / hit
	// edge; hit; ttl=60
	// observed: / pass
	// edge; fwd=bypass; detail=credentials
	// 1 1 1
}
