package microcache_test

import (
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
