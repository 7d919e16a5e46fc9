package promcollector_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/promcollector"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkHit is the hit path without and with a PassCounter observing
// it (the Collector itself costs nothing per request).
func BenchmarkHit(b *testing.B) {
	for _, bc := range []struct {
		name    string
		observe func(*http.Request, microcache.Outcome)
	}{
		{"plain", nil},
		{"passcounter", promcollector.NewPassCounter(promcollector.Options{}).Observe},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cache := microcache.New(microcache.Config{TTL: time.Hour, Observe: bc.observe})
			defer cache.Stop()
			h := cache.Middleware(origin())
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			h.ServeHTTP(httptest.NewRecorder(), req)
			w := discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}

// BenchmarkGather is one scrape of a Collector and a PassCounter.
func BenchmarkGather(b *testing.B) {
	passes := promcollector.NewPassCounter(promcollector.Options{})
	cache := microcache.New(microcache.Config{TTL: time.Hour, Observe: passes.Observe})
	defer cache.Stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(promcollector.New(cache, promcollector.Options{}), passes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
