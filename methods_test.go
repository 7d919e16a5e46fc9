package microcache_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// HEAD is answered from the stored GET object, with its headers and no body.
func TestHeadFromGet(t *testing.T) {
	be := &backend{}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	get(t, h, "/")
	res := serve(t, h, http.MethodHead, "/")
	if state(res) != "HIT" || res.Header.Get("Content-Length") != "6" || res.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("HEAD: %s, headers %v", state(res), res.Header)
	}
	if b := body(t, res); b != "" {
		t.Errorf("HEAD body %q", b)
	}
}

// A HEAD miss goes through and stores nothing, so it can never be replayed
// to a GET.
func TestHeadMissStoresNothing(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		io.WriteString(w, r.Method)
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	serve(t, h, http.MethodHead, "/")
	expect(t, get(t, h, "/"), "MISS", "GET")
	expect(t, get(t, h, "/"), "HIT", "GET")
}

// Regression: an OPTIONS answer was stored and served to GET.
func TestOptionsNeverServedToGet(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, r.Method)
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	for range 2 {
		if res := serve(t, h, http.MethodOptions, "/"); res.StatusCode != 204 {
			t.Errorf("OPTIONS: %d", res.StatusCode)
		}
	}
	expect(t, get(t, h, "/"), "MISS", "GET")
	if be.n() != 3 {
		t.Errorf("backend calls = %d, want 3", be.n())
	}
}

// A non-error answer to an unsafe method purges every variant of the URL,
// an implicit 200 included; an error answer purges nothing.
func TestUnsafeMethodsPurge(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		for _, tc := range []struct {
			status int // 0: the handler writes nothing
			purges bool
		}{{0, true}, {201, true}, {303, true}, {404, false}, {500, false}} {
			t.Run(method+"/"+itoa(int64(tc.status)), func(t *testing.T) {
				be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
					if r.Method != http.MethodGet {
						if tc.status != 0 {
							w.WriteHeader(tc.status)
						}
						return
					}
					w.Header().Set("Vary", "Accept-Language")
					io.WriteString(w, r.Header.Get("Accept-Language"))
				}}
				h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
				for _, lang := range []string{"en", "fr"} {
					get(t, h, "/doc", "Accept-Language", lang)
					expect(t, get(t, h, "/doc", "Accept-Language", lang), "HIT", lang)
				}
				serve(t, h, method, "/doc", "Accept-Language", "en")
				want := "HIT"
				if tc.purges {
					want = "MISS"
				}
				for _, lang := range []string{"en", "fr"} {
					expect(t, get(t, h, "/doc", "Accept-Language", lang), want, lang)
				}
			})
		}
	}
}

// Purging one URL leaves others alone.
func TestPurgeIsPerURL(t *testing.T) {
	be := &backend{}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	get(t, h, "/a")
	get(t, h, "/b")
	serve(t, h, http.MethodPost, "/a")
	expect(t, get(t, h, "/a"), "MISS", "call 4")
	expect(t, get(t, h, "/b"), "HIT", "call 2")
}

// Other methods never purge, so a client cannot clear a URL with a made-up
// method that a handler answers 200 without looking.
func TestOtherMethodsDoNotPurge(t *testing.T) {
	be := &backend{}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	get(t, h, "/a")
	for _, method := range []string{"PURGE", "FOO", http.MethodOptions, http.MethodTrace} {
		if res := serve(t, h, method, "/a"); res.StatusCode != 200 {
			t.Fatalf("%s: %d", method, res.StatusCode)
		}
	}
	expect(t, get(t, h, "/a"), "HIT", "call 1")
}

// Regression: a HEAD in the stale-while-revalidate window refreshed the
// object with a HEAD request, and the body-less answer became the GET
// object.
func TestHeadRevalidationRefreshesWithGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if r.Method != http.MethodGet {
				t.Errorf("backend got %s", r.Method)
			}
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader("call "+itoa(n)))
		}}
		h := newCache(t, microcache.Config{TTL: time.Second, StaleWhileRevalidate: time.Minute, Exposed: true}).Middleware(be)
		get(t, h, "/")
		time.Sleep(2 * time.Second)
		if res := serve(t, h, http.MethodHead, "/"); state(res) != "STALE" {
			t.Fatalf("HEAD: %s", state(res))
		}
		synctest.Wait()
		expect(t, get(t, h, "/"), "HIT", "call 2")
	})
}
