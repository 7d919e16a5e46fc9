package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gofiber/fiber/v3/middleware/adaptor"
)

// get returns the Microcache header and the body of a GET of url.
func get(t *testing.T, url string) (status, body string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", url, res.StatusCode)
	}
	return res.Header.Get("Microcache"), string(b)
}

func TestCached(t *testing.T) {
	h, cache := newHandler()
	defer cache.Stop()
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, path := range []string{"/", "/hello/ada"} {
		s1, b1 := get(t, srv.URL+path)
		s2, b2 := get(t, srv.URL+path)
		if s1 != "MISS" || s2 != "HIT" {
			t.Errorf("GET %s twice: Microcache %q then %q, want MISS then HIT", path, s1, s2)
		}
		if b1 == "" || b2 != b1 {
			t.Errorf("GET %s twice: bodies %q then %q, want the same non-empty body", path, b1, b2)
		}
	}
	// Another name is another object.
	if s, b := get(t, srv.URL+"/hello/grace"); s != "MISS" || !strings.HasPrefix(b, "hello, grace (") {
		t.Errorf("GET /hello/grace: Microcache %q, body %q; want MISS and its own body", s, b)
	}
}

func TestNocache(t *testing.T) {
	h, cache := newHandler()
	defer cache.Stop()
	srv := httptest.NewServer(h)
	defer srv.Close()

	for i := range 3 {
		if s, b := get(t, srv.URL+"/now"); s == "HIT" || b == "" {
			t.Errorf("GET /now #%d: Microcache %q, body %q; want never HIT, a body", i+1, s, b)
		}
	}
}

// TestBackgroundRefresh runs stale-while-revalidate refreshes, which call
// the handler after the client's request has ended, on another goroutine,
// while other requests are served: under -race it guards the wrapping of
// the whole app (see the package comment).
func TestBackgroundRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, cache := newHandler()
		defer cache.Stop()
		serve := func(path string) (status, body string) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			return w.Header().Get("Microcache"), w.Body.String()
		}
		const n = 8
		first := make([]string, n)
		for i := range n {
			var s string
			if s, first[i] = serve(fmt.Sprintf("/hello/n%d", i)); s != "MISS" {
				t.Fatalf("first GET /hello/n%d: Microcache %q, want MISS", i, s)
			}
		}
		time.Sleep(11 * time.Second) // past the 10s TTL, within stale-while-revalidate
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if s, b := serve(fmt.Sprintf("/hello/n%d", i)); s != "STALE" || b != first[i] {
					t.Errorf("GET /hello/n%d after the TTL: Microcache %q, body %q; want STALE, %q", i, s, b, first[i])
				}
			})
		}
		wg.Wait()
		synctest.Wait() // every background refresh has stored its answer
		for i := range n {
			s, b := serve(fmt.Sprintf("/hello/n%d", i))
			if want := fmt.Sprintf("hello, n%d (", i); s != "HIT" || b == first[i] || !strings.HasPrefix(b, want) {
				t.Errorf("GET /hello/n%d after the refresh: Microcache %q, body %q; want HIT, a new body starting %q", i, s, b, want)
			}
		}
	})
}

// BenchmarkAdaptor compares a call of the fiber app through the adaptor
// (what a miss or a refresh costs on top of the handler) with the same
// handler written for net/http, and with a hit, which never reaches fiber.
// fiber-adaptor-nilbody shows where most of the adaptor's cost goes: it
// copies a request body of http.NoBody (every GET a net/http server
// receives) with io.Copy through an io.LimitReader, which allocates a
// 32 KiB buffer per call; a nil Body skips the copy.
func BenchmarkAdaptor(b *testing.B) {
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s (generated at %s)\n", strings.TrimPrefix(r.URL.Path, "/hello/"), time.Now().Format(time.RFC3339Nano))
	})
	cached, cache := newHandler()
	defer cache.Stop()
	for _, bm := range []struct {
		name string
		h    http.Handler
	}{
		{"net-http", plain},
		{"fiber-adaptor", adaptor.FiberApp(newApp())},
		{"fiber-adaptor-nilbody", func() http.Handler {
			h := adaptor.FiberApp(newApp())
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Body == http.NoBody {
					r = r.WithContext(r.Context()) // a shallow copy
					r.Body = nil
				}
				h(w, r)
			})
		}()},
		{"cache-hit", cached},
	} {
		b.Run(bm.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/hello/ada", nil)
			bm.h.ServeHTTP(httptest.NewRecorder(), req) // the hit needs a stored object
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				bm.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
