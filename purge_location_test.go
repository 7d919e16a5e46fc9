package microcache_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// A successful unsafe method also purges the URLs its answer names in
// Location and Content-Location, when they are of the request's origin
// (RFC 9111 section 4.4); never another origin's.
func TestUnsafeMethodPurgesLocations(t *testing.T) {
	for _, c := range []struct {
		name, header, value string
		purged              bool
	}{
		{"Location, relative", "Location", "/items/42", true},
		{"Location, relative to the path", "Location", "42", true},
		{"Location, absolute, same origin", "Location", "http://example.com/items/42", true},
		{"Location, another host", "Location", "http://other.example/items/42", false},
		{"Location, another scheme", "Location", "https://example.com/items/42", false},
		{"Content-Location, relative", "Content-Location", "/items/42", true},
		{"Content-Location, scheme-relative, another host", "Content-Location", "//other.example/items/42", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					w.Header().Set(c.header, c.value)
					w.WriteHeader(http.StatusCreated)
					return
				}
				calls++
				io.WriteString(w, "item "+itoa(int64(calls)))
			})
			h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
			expect(t, get(t, h, "http://example.com/items/42"), "MISS", "item 1")
			expect(t, get(t, h, "http://example.com/items/42"), "HIT", "item 1")
			post, _ := http.NewRequest(http.MethodPost, "http://example.com/items/", nil)
			serveReq(h, post)
			want := "HIT"
			if c.purged {
				want = "MISS"
			}
			if res := get(t, h, "http://example.com/items/42"); state(res) != want {
				t.Errorf("GET /items/42 after a POST answered %s: %s, want %s", c.header+": "+c.value, state(res), want)
			}
		})
	}
}
