package microcache_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// echo answers with the request's host, raw path and raw query, so a
// response shows which request produced it.
func echo() *backend {
	return &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		io.WriteString(w, r.Host+" "+r.URL.EscapedPath()+" "+r.URL.RawQuery+" "+itoa(n))
	}}
}

// sameKey reports whether b is answered with a's stored response.
func sameKey(t *testing.T, cfg microcache.Config, a, b *http.Request) bool {
	t.Helper()
	cfg.TTL, cfg.Exposed = time.Minute, true
	h := newCache(t, cfg).Middleware(echo())
	serveReq(h, a)
	res := serveReq(h, b)
	return state(res) == "HIT"
}

func req(target string, hdr ...string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// overTLS marks r as received over TLS, as net/http does.
func overTLS(r *http.Request) *http.Request {
	r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	return r
}

func TestKeys(t *testing.T) {
	hashQuery := microcache.Config{HashQuery: true}
	cases := []struct {
		name string
		cfg  microcache.Config
		a, b *http.Request
		same bool
	}{
		{"host case", hashQuery, req("http://Example.COM/a"), req("http://example.com/a"), true},
		{"different hosts", hashQuery, req("http://a.example/x"), req("http://b.example/x"), false},
		{"scheme", hashQuery, req("http://a.example/x"), overTLS(req("https://a.example/x")), false},
		{"request target's scheme is not the connection's", hashQuery, req("http://a.example/x"), req("https://a.example/x"), true},
		{"different paths", hashQuery, req("http://h/a"), req("http://h/b"), false},
		{"query order", hashQuery, req("http://h/?a=1&b=2"), req("http://h/?b=2&a=1"), true},
		{"query escaping", hashQuery, req("http://h/?a=x%20y"), req("http://h/?a=x+y"), true},
		{"repeated values keep order", hashQuery, req("http://h/?a=1&a=2"), req("http://h/?a=2&a=1"), false},
		{"query values", hashQuery, req("http://h/?a=1"), req("http://h/?a=2"), false},
		{"empty vs absent param", hashQuery, req("http://h/?a="), req("http://h/"), false},
		{"query ignored without HashQuery", microcache.Config{}, req("http://h/?a=1"), req("http://h/?a=2"), true},
		{"QueryIgnore", microcache.Config{HashQuery: true, QueryIgnore: []string{"utm"}}, req("http://h/?a=1&utm=x"), req("http://h/?utm=y&a=1"), true},
		{"path/query concatenation", hashQuery, req("http://h/a?b=c"), req("http://h/a%3Fb=c"), false},
		{"param boundary", hashQuery, req("http://h/?a=b%26c=d"), req("http://h/?a=b&c=d"), false},
		{"param name/value boundary", hashQuery, req("http://h/?a%3Db=c"), req("http://h/?a=b%3Dc"), false},
		{"semicolon is not a separator", hashQuery, req("http://h/?a=1;b=2"), req("http://h/?a=1&b=2"), false},
		{"semicolon pair", hashQuery, req("http://h/?a=1;b=2"), req("http://h/?a=1"), false},
		{"encoded slash", hashQuery, req("http://h/a%2Fb"), req("http://h/a/b"), false},
		{"X-Forwarded-Host", hashQuery, req("http://h/", "X-Forwarded-Host", "evil.example"), req("http://h/"), false},
		{"X-Forwarded-Proto", hashQuery, req("http://h/", "X-Forwarded-Proto", "http"), req("http://h/", "X-Forwarded-Proto", "https"), false},
		{"Config.Vary", microcache.Config{Vary: []string{"accept-language"}}, req("http://h/", "Accept-Language", "en"), req("http://h/", "Accept-Language", "fr"), false},
		{"Config.Vary same", microcache.Config{Vary: []string{"accept-language"}}, req("http://h/", "Accept-Language", "en"), req("http://h/", "Accept-Language", "en"), true},
		{"Config.Vary absent vs empty", microcache.Config{Vary: []string{"X-V"}}, req("http://h/", "X-V", ""), req("http://h/"), false},
		{"Config.Vary value boundary", microcache.Config{Vary: []string{"X-V"}}, req("http://h/", "X-V", "a", "X-V", "b"), req("http://h/", "X-V", "a,b"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameKey(t, tc.cfg, tc.a, tc.b); got != tc.same {
				t.Errorf("share a key: %v, want %v", got, tc.same)
			}
		})
	}
}

// Regression: with QueryIgnore the original built keys by ranging over a
// map, so one URL had several keys and missed at random.
func TestQueryKeyIsDeterministic(t *testing.T) {
	be := echo()
	h := newCache(t, microcache.Config{TTL: time.Minute, HashQuery: true, QueryIgnore: []string{"z"}}).Middleware(be)
	for range 200 {
		get(t, h, "http://h/?a=1&b=2&c=3&d=4&e=5&f=6&z=0")
	}
	if be.n() != 1 {
		t.Errorf("backend calls = %d, want 1", be.n())
	}
}

// Response Vary, microcache-vary and microcache-vary-query select variants.
func TestResponseVary(t *testing.T) {
	cases := []struct {
		header, value string
		a, b          *http.Request
		same          bool
	}{
		{"Vary", "Accept-Encoding", req("http://h/", "Accept-Encoding", "gzip"), req("http://h/", "Accept-Encoding", "br"), false},
		{"Vary", "accept-encoding", req("http://h/", "Accept-Encoding", "gzip"), req("http://h/", "Accept-Encoding", "gzip"), true},
		{microcache.HeaderVary, "X-Tenant", req("http://h/", "X-Tenant", "a"), req("http://h/", "X-Tenant", "b"), false},
		{microcache.HeaderVary, "X-Tenant", req("http://h/", "X-Other", "a"), req("http://h/", "X-Other", "b"), true},
		{microcache.HeaderVaryQuery, "page", req("http://h/?page=1"), req("http://h/?page=2"), false},
		{microcache.HeaderVaryQuery, "page", req("http://h/?page=1&x=1"), req("http://h/?x=2&page=1"), true},
		{microcache.HeaderVaryQuery, "page", req("http://h/?page="), req("http://h/"), false},
	}
	for _, tc := range cases {
		t.Run(tc.header+":"+tc.value, func(t *testing.T) {
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				w.Header().Set(tc.header, tc.value)
				io.WriteString(w, "call "+itoa(n))
			}}
			h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
			serveReq(h, tc.a) // learns the options
			serveReq(h, tc.a) // stores under the variant key
			if s := state(serveReq(h, tc.a)); s != "HIT" {
				t.Fatalf("variant a not stored: %s", s)
			}
			if got := state(serveReq(h, tc.b)) == "HIT"; got != tc.same {
				t.Errorf("b shares a's variant: %v, want %v", got, tc.same)
			}
		})
	}
}

// Vary: * is never stored.
func TestVaryStar(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Vary", "Accept, *")
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	get(t, h, "/")
	if s := state(get(t, h, "/")); s != "MISS" {
		t.Errorf("Vary: * stored: %s", s)
	}
}

// A key that would be enormous passes through instead of being stored.
func TestLongKeysPassThrough(t *testing.T) {
	be := &backend{}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, HashQuery: true}).Middleware(be)
	long := "/?q=" + strings.Repeat("x", 64<<10)
	get(t, h, long)
	if s := state(get(t, h, long)); s != "MISS" {
		t.Errorf("64 KiB query: %s, want MISS", s)
	}
	huge := req("http://h/", "X-Forwarded-Host", strings.Repeat("h", 64<<10))
	serveReq(h, huge)
	if s := state(serveReq(h, huge)); s != "MISS" {
		t.Errorf("64 KiB header: %s, want MISS", s)
	}
}
