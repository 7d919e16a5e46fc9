package microcache_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// Web cache poisoning: an attacker sends a request whose response differs
// from what the origin would send a clean request (because the origin reads
// an input the cache does not key on), in the hope that the cache stores it
// under the clean request's key. Every case below is an attack that works
// against some real cache; the test asserts that after the attack a clean
// request still gets exactly what the origin answers it directly.

// naiveOrigin is an origin with the habits attacks exploit: it builds
// absolute links from X-Forwarded-Host/Forwarded/X-Forwarded-Proto, reads
// the query like frameworks that also split on ';' and decode leniently
// (last value wins), routes on the escaped path, and echoes a GET body and
// the X-Id header. It is deterministic, so its answer to a clean request
// can be computed directly. hdr are response headers it sets.
func naiveOrigin(hdr ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "text/plain")
		host, proto := r.Host, "http"
		if r.TLS != nil {
			proto = "https"
		}
		if v := r.Header.Get("Forwarded"); strings.HasPrefix(v, "host=") {
			host = strings.TrimPrefix(v, "host=")
		}
		if v, ok := r.Header["X-Forwarded-Host"]; ok {
			host = strings.Join(v, ",")
		}
		if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<10))
		fmt.Fprintf(w, "link=%s://%s%s params=%s id=%q body=%q",
			proto, host, r.URL.EscapedPath(), lenientQuery(r.URL.RawQuery), r.Header["X-Id"], b)
	})
}

// lenientQuery parses a query the way many frameworks do: '&' and ';' both
// separate pairs, bad escapes are kept as they are, the last value wins.
func lenientQuery(raw string) string {
	vals := map[string]string{}
	for _, pair := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		vals[k] = v
	}
	var out []string
	for k, v := range vals {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func newReq(method, target string, hdr ...string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(method, target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		return r
	}
}

func withBody(target, b string, chunked bool) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, strings.NewReader(b))
		if chunked {
			r.ContentLength = -1
			r.TransferEncoding = []string{"chunked"}
		}
		return r
	}
}

// direct is what the origin answers r without a cache in front of it.
func direct(h http.Handler, r *http.Request) string {
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr.Body.String()
}

func TestPoisoning(t *testing.T) {
	hashQuery := microcache.Config{HashQuery: true}
	plain := microcache.Config{}
	cases := []struct {
		name          string
		cfg           microcache.Config
		respHdr       []string // response headers the origin sets
		attack, clean func() *http.Request
	}{
		// Unkeyed forwarding headers that the origin trusts for links.
		{"X-Forwarded-Host", plain, nil,
			newReq("GET", "http://victim.example/", "X-Forwarded-Host", "evil.example"), newReq("GET", "http://victim.example/")},
		{"X-Forwarded-Host same as Host vs other", plain, nil,
			newReq("GET", "http://victim.example/", "X-Forwarded-Host", "evil.example"),
			newReq("GET", "http://victim.example/", "X-Forwarded-Host", "victim.example")},
		{"X-Forwarded-Host empty", plain, nil,
			newReq("GET", "http://victim.example/", "X-Forwarded-Host", ""), newReq("GET", "http://victim.example/")},
		{"X-Forwarded-Host repeated", plain, nil,
			newReq("GET", "http://victim.example/", "X-Forwarded-Host", "evil.example", "X-Forwarded-Host", "victim.example"),
			newReq("GET", "http://victim.example/", "X-Forwarded-Host", "evil.example, victim.example")},
		{"Forwarded host", plain, nil,
			newReq("GET", "http://victim.example/", "Forwarded", "host=evil.example"), newReq("GET", "http://victim.example/")},
		{"X-Forwarded-Proto downgrade", plain, nil,
			newReq("GET", "https://victim.example/", "X-Forwarded-Proto", "http"), newReq("GET", "https://victim.example/")},
		{"Host is keyed", plain, nil,
			newReq("GET", "http://evil.example/"), newReq("GET", "http://victim.example/")},
		{"Host case folds safely", plain, nil,
			newReq("GET", "http://VICTIM.example/", "X-Forwarded-Host", "evil.example"), newReq("GET", "http://victim.example/")},

		// ';' as a parameter separator: the cache sees one pair, the origin two.
		{"semicolon hidden param, HashQuery", hashQuery, nil,
			newReq("GET", "/?a=1;b=evil"), newReq("GET", "/?a=1")},
		{"semicolon overrides keyed param, HashQuery", hashQuery, nil,
			newReq("GET", "/?a=1&x=1;a=evil"), newReq("GET", "/?a=1&x=1")},
		{"semicolon pair, vary-query", plain, []string{microcache.HeaderVaryQuery, "a"},
			newReq("GET", "/?a=1;b=2"), newReq("GET", "/?a=1")},
		{"semicolon cloaks varied param, vary-query", plain, []string{microcache.HeaderVaryQuery, "a"},
			newReq("GET", "/?a=1&x=1;a=evil"), newReq("GET", "/?a=1")},
		{"semicolon smuggles varied param, vary-query", plain, []string{microcache.HeaderVaryQuery, "a"},
			newReq("GET", "/?x=1;a=evil"), newReq("GET", "/")},
		{"bad escape smuggles varied param, vary-query", plain, []string{microcache.HeaderVaryQuery, "a"},
			newReq("GET", "/?a=%zzevil"), newReq("GET", "/")},

		// A body on a GET selects the response for some origins.
		{"GET with Content-Length body", plain, nil, withBody("/", "evil", false), newReq("GET", "/")},
		{"GET with chunked body", plain, nil, withBody("/", "evil", true), newReq("GET", "/")},

		// Path encodings the origin routes differently.
		{"encoded slash", plain, nil, newReq("GET", "/a%2Fb"), newReq("GET", "/a/b")},
		{"encoded slash, lower-case hex", plain, nil, newReq("GET", "/a%2fb"), newReq("GET", "/a/b")},
		{"encoded slash, hex case", plain, nil, newReq("GET", "/a%2fb"), newReq("GET", "/a%2Fb")},
		{"encoded letter", plain, nil, newReq("GET", "/%61"), newReq("GET", "/a")},

		// Declared variants.
		{"Vary header", plain, []string{"Vary", "X-Id"},
			newReq("GET", "/", "X-Id", "evil"), newReq("GET", "/")},
		{"microcache-vary, empty vs absent", plain, []string{microcache.HeaderVary, "X-Id"},
			newReq("GET", "/", "X-Id", ""), newReq("GET", "/")},
		{"Config.Vary", microcache.Config{Vary: []string{"x-id"}}, nil,
			newReq("GET", "/", "X-Id", "evil"), newReq("GET", "/")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			origin := naiveOrigin(tc.respHdr...)
			cfg := tc.cfg
			cfg.TTL, cfg.Exposed = time.Minute, true
			h := newCache(t, cfg).Middleware(origin)
			want := direct(origin, tc.clean())
			if poison := direct(origin, tc.attack()); poison == want {
				t.Fatalf("bad case: the attack does not change the origin's answer %q", want)
			}
			for i := range 2 { // the first attack may only teach the options
				res := serveReq(h, tc.attack())
				if got := body(t, res); got == want {
					t.Fatalf("attack %d answered with the clean response", i)
				}
			}
			for i := range 2 {
				res := serveReq(h, tc.clean())
				if got := body(t, res); got != want {
					t.Fatalf("clean request %d (%s) got the poisoned response\n got %q\nwant %q", i, state(res), got, want)
				}
			}
			// The attack did not evict or shadow the clean entry either.
			if res := serveReq(h, tc.clean()); state(res) != microcache.StatusHit {
				t.Errorf("clean request not answered from the cache: %s", state(res))
			}
		})
	}
}

// Poison does not get in through collapsed forwarding either: a clean
// request arriving while the attacker's request is at the origin is not
// handed its response.
func TestPoisoningCollapsedForwarding(t *testing.T) {
	attackIn, release := make(chan struct{}), make(chan struct{})
	origin := naiveOrigin()
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-Host") != "" {
			close(attackIn)
			<-release
		}
		origin.ServeHTTP(w, r)
	})
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, CollapsedForwarding: true}).Middleware(gate)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveReq(h, newReq("GET", "http://victim.example/", "X-Forwarded-Host", "evil.example")())
	}()
	<-attackIn
	// Were the clean request collapsed onto the attack it would block until
	// release; it must reach the origin on its own instead.
	done := make(chan string, 1)
	go func() { done <- body(t, serveReq(h, newReq("GET", "http://victim.example/")())) }()
	var got string
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		close(release)
		wg.Wait()
		t.Fatalf("clean request waited on the attacker's backend call: %q", <-done)
	}
	close(release)
	wg.Wait()
	if want := direct(origin, newReq("GET", "http://victim.example/")()); got != want {
		t.Errorf("clean request got %q, want %q", got, want)
	}
	expect(t, serveReq(h, newReq("GET", "http://victim.example/")()), microcache.StatusHit,
		direct(origin, newReq("GET", "http://victim.example/")()))
}

// Oversized inputs: a request whose key would be enormous is answered but
// not stored, so an attacker cannot make the process hold them.
func TestPoisoningOversizedInputsNotStored(t *testing.T) {
	const size = 64<<10 + 1
	big := func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("x", size) }
	cases := []struct {
		name    string
		cfg     microcache.Config
		respHdr []string
		req     func(i int) *http.Request
	}{
		{"query, HashQuery", microcache.Config{HashQuery: true}, nil,
			func(i int) *http.Request { return newReq("GET", "/?q="+big(i))() }},
		{"query param named in vary-query", microcache.Config{}, []string{microcache.HeaderVaryQuery, "q"},
			func(i int) *http.Request { return newReq("GET", "/?q="+big(i))() }},
		{"header named in Vary", microcache.Config{}, []string{"Vary", "X-Id"},
			func(i int) *http.Request { return newReq("GET", "/", "X-Id", big(i))() }},
		{"header in Config.Vary", microcache.Config{Vary: []string{"X-Id"}}, nil,
			func(i int) *http.Request { return newReq("GET", "/", "X-Id", big(i))() }},
		{"X-Forwarded-Host", microcache.Config{}, nil,
			func(i int) *http.Request { return newReq("GET", "/", "X-Forwarded-Host", big(i))() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := microcache.NewDriverLRU(1000)
			cfg := tc.cfg
			cfg.TTL, cfg.Exposed, cfg.Driver = time.Minute, true, d
			h := newCache(t, cfg).Middleware(naiveOrigin(tc.respHdr...))
			serveReq(h, newReq("GET", "/?q=small", "X-Id", "small")()) // learn the options
			base := d.Bytes()

			var before, after runtime.MemStats
			runtime.GC()
			runtime.GC() // twice: the second empties sync.Pool victim caches
			runtime.ReadMemStats(&before)
			const n = 16 // 1 MiB of hostile input in all
			for i := range n {
				for j := range 2 {
					if res := serveReq(h, tc.req(i)); state(res) != microcache.StatusMiss {
						t.Fatalf("request %d/%d: %s, want MISS (a %d-byte input was stored)", i, j, state(res), size)
					}
				}
			}
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&after)
			if held := d.Bytes() - base; held > 4<<10 {
				t.Errorf("driver holds %d more bytes after %d oversized requests", held, n)
			}
			if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 512<<10 {
				t.Errorf("heap grew by %d bytes after %d oversized requests (%d bytes of input)", grew, n, n*size)
			}
		})
	}
}
