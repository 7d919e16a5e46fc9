package promcollector_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/promcollector"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func Example() {
	// Count pass-throughs by reason: the PassCounter watches every
	// request's outcome, so it is made first and handed to the cache.
	passes := promcollector.NewPassCounter(promcollector.Options{})
	cache := microcache.New(microcache.Config{TTL: time.Minute, Observe: passes.Observe})
	defer cache.Stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(promcollector.New(cache, promcollector.Options{}), passes)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", cache.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, method := range []string{"GET", "GET", "GET", "POST"} {
		req, err := http.NewRequest(method, srv.URL+"/page", nil)
		if err != nil {
			panic(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		res.Body.Close()
	}

	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "microcache_requests_total") ||
			strings.HasPrefix(line, `microcache_passes_total{reason="method"}`) {
			fmt.Println(line)
		}
	}
	// Output:
	// microcache_passes_total{reason="method"} 1
	// microcache_requests_total{outcome="hit"} 2
	// microcache_requests_total{outcome="miss"} 1
	// microcache_requests_total{outcome="pass"} 1
	// microcache_requests_total{outcome="stale"} 0
}
