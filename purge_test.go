package microcache_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// Purge from code makes every variant of an absolute URL unreachable, and
// only that URL: the other scheme, host, path or query stays cached.
func TestPurgeURL(t *testing.T) {
	for name, newDriver := range testDrivers() {
		t.Run(name, func(t *testing.T) {
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				w.Header().Set("Vary", "X-Lang")
				io.WriteString(w, "call "+itoa(n))
			}}
			c := newCache(t, microcache.Config{TTL: time.Hour, HashQuery: true, Exposed: true, Driver: newDriver()})
			h := c.Middleware(be)
			req := func(target, lang string) *http.Request {
				r := httptest.NewRequest(http.MethodGet, target, nil)
				r.Header.Set("X-Lang", lang)
				return r
			}
			targets := []*http.Request{
				req("http://site.example/page?a=1", "en"),
				req("http://site.example/page?a=1", "fr"),
				req("http://site.example/page?a=2", "en"),
				req("http://other.example/page?a=1", "en"),
				req("https://site.example/page?a=1", "en"),
			}
			targets[4].TLS = &tlsState
			for _, r := range targets {
				serveReq(h, r)
				if state(serveReq(h, r)) != "HIT" {
					t.Fatalf("%s not cached", r.URL)
				}
			}
			if err := c.Purge(context.Background(), "http://site.example/page?a=1"); err != nil {
				t.Fatal(err)
			}
			for i, r := range targets {
				want := "HIT"
				if i < 2 {
					want = "MISS" // both variants of the purged URL
				}
				if got := state(serveReq(h, r)); got != want {
					t.Errorf("%s (%s) after the purge: %s, want %s", r.URL, r.Header.Get("X-Lang"), got, want)
				}
			}
			for _, bad := range []string{"/relative", "ftp://site.example/x", "http://", "://"} {
				if err := c.Purge(context.Background(), bad); !errors.Is(err, microcache.ErrPurgeURL) {
					t.Errorf("Purge(%q) = %v, want ErrPurgeURL", bad, err)
				}
			}
		})
	}
}

// A response's microcache-tags attach tags to what it stores (and never
// reach the client); PurgeTag purges every URL stored with the tag and
// leaves an untagged neighbour cached.
func TestPurgeTag(t *testing.T) {
	for name, newDriver := range testDrivers() {
		t.Run(name, func(t *testing.T) {
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				switch r.URL.Path {
				case "/product/1":
					w.Header().Set(microcache.HeaderTags, "product-1, catalog")
				case "/list":
					w.Header().Set(microcache.HeaderTags, "catalog")
				case "/varied":
					w.Header().Set("Vary", "X-Lang")
					w.Header().Set(microcache.HeaderTags, "product-1")
				}
				io.WriteString(w, "call "+itoa(n))
			}}
			c := newCache(t, microcache.Config{TTL: time.Hour, Exposed: true, Driver: newDriver()})
			h := c.Middleware(be)
			paths := []string{"/product/1", "/list", "/varied", "/about"}
			for _, p := range paths {
				res := get(t, h, p, "X-Lang", "en")
				noControlHeaders(t, res)
				get(t, h, p, "X-Lang", "en")
			}
			if err := c.PurgeTag(context.Background(), "product-1"); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]string{"/product/1": "MISS", "/varied": "MISS", "/list": "HIT", "/about": "HIT"} {
				if got := state(get(t, h, p, "X-Lang", "en")); got != want {
					t.Errorf("%s after PurgeTag(product-1): %s, want %s", p, got, want)
				}
			}
			if err := c.PurgeTag(context.Background(), "catalog"); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]string{"/product/1": "MISS", "/list": "MISS", "/about": "HIT"} {
				if got := state(get(t, h, p, "X-Lang", "en")); got != want {
					t.Errorf("%s after PurgeTag(catalog): %s, want %s", p, got, want)
				}
			}
			if err := c.PurgeTag(context.Background(), "no-such-tag"); err != nil {
				t.Errorf("PurgeTag of an unknown tag: %v", err)
			}
		})
	}
}

// tlsState marks a test request as received over TLS.
var tlsState = tls.ConnectionState{HandshakeComplete: true}
