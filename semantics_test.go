package microcache_test

import (
	"bufio"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// rawGet sends one request line and Host header over a new connection to
// addr, as a client that chooses its own request target would, and
// returns the response.
func rawGet(t *testing.T, addr, target, host string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// The scheme in the key is the connection's, never the request target's:
// "GET https://host/page" sent to a plain listener must not store the
// plain listener's answer (a redirect to https) for TLS clients, who would
// then loop on it for the TTL.
func TestSchemeFromConnection(t *testing.T) {
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Redirect(w, r, "https://"+r.Host+r.URL.Path, http.StatusMovedPermanently)
			return
		}
		io.WriteString(w, "secure")
	})
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	plain := httptest.NewServer(h)
	defer plain.Close()
	secure := httptest.NewTLSServer(h)
	defer secure.Close()

	for range 2 { // stored, then served from the plain key
		if res := rawGet(t, plain.Listener.Addr().String(), "https://site.example/page", "site.example"); res.StatusCode != http.StatusMovedPermanently {
			t.Fatalf("plain listener: status %d, want its redirect", res.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, secure.URL+"/page", nil)
	req.Host = "site.example"
	client := secure.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusOK || string(b) != "secure" {
		t.Errorf("TLS client got %d %q (%s), want 200 \"secure\": the plain answer was keyed as https", res.StatusCode, b, state(res))
	}
}

// servePair starts h behind the cache and next to it bare, over HTTP/1.1
// or, with h2, HTTP/2 over TLS; both are closed when the test ends.
func servePair(t *testing.T, cfg microcache.Config, h http.Handler, h2 bool) (plain, cached *httptest.Server) {
	t.Helper()
	start := func(h http.Handler) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		s.Config.ErrorLog = log.New(io.Discard, "", 0) // the length mismatches are logged
		if h2 {
			s.EnableHTTP2 = true
			s.StartTLS()
		} else {
			s.Start()
		}
		t.Cleanup(s.Close)
		return s
	}
	return start(h), start(newCache(t, cfg).Middleware(h))
}

// fetchAll sends a GET and reads the whole body and the trailers; err is
// the error reading the body, as a client sees a truncated response.
func fetchAll(t *testing.T, s *httptest.Server, path string) (res *http.Response, body string, err error) {
	t.Helper()
	res, err = s.Client().Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

// A handler that returns without writing anything sends an empty 200, and
// it is not stored: that is what a router that writes its response after
// the wrapped handler returned looks like to the cache. An explicit
// WriteHeader, even with no body, is a response and is stored.
func TestEmptyAnswerNotStored(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Path == "/204" {
			w.WriteHeader(http.StatusNoContent)
		}
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	expect(t, get(t, h, "/empty"), "MISS", "")
	expect(t, get(t, h, "/empty"), "MISS", "")
	expect(t, get(t, h, "/204"), "MISS", "")
	expect(t, get(t, h, "/204"), "HIT", "")
	if be.n() != 3 {
		t.Errorf("backend calls = %d, want 3", be.n())
	}
}

// 201 Created and 202 Accepted describe one action, not the resource: they
// are stored only when the response opts in.
func TestCreatedAndAcceptedNotStored(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Query().Get("optin") != "" {
			w.Header().Set(microcache.HeaderCache, "1")
		}
		if r.URL.Path == "/201" {
			w.WriteHeader(http.StatusCreated)
		} else {
			w.WriteHeader(http.StatusAccepted)
		}
		io.WriteString(w, "call "+itoa(n))
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, HashQuery: true}).Middleware(be)
	for _, path := range []string{"/201", "/202"} {
		first := body(t, get(t, h, path))
		if res := get(t, h, path); state(res) != "MISS" || body(t, res) == first {
			t.Errorf("%s: the second request was answered from the cache", path)
		}
	}
	expect(t, get(t, h, "/202?optin=1"), "MISS", "call 5")
	expect(t, get(t, h, "/202?optin=1"), "HIT", "call 5")
}

// During an outage, one request whose answer cannot be stored for a
// reason of its own (a 400 for an input outside the key, a cookie for a new
// visitor) must not take the stale copy from everyone: the next clients
// still get it. Before, such an answer dropped the URL's object and marked
// it uncacheable, and the next clients got the 5xx.
func TestOddRequestKeepsStaleCopy(t *testing.T) {
	for _, odd := range []string{"400", "cookie"} {
		t.Run(odd, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
					switch {
					case n == 1:
						io.WriteString(w, "good")
					case r.Header.Get("X-Odd") != "" && odd == "400":
						w.WriteHeader(http.StatusBadRequest)
						io.WriteString(w, "bad input")
					case r.Header.Get("X-Odd") != "":
						w.Header().Set("Set-Cookie", "visitor=new")
						io.WriteString(w, "welcome")
					default:
						w.WriteHeader(http.StatusServiceUnavailable) // the outage
					}
				}}
				h := newCache(t, microcache.Config{TTL: time.Second, StaleIfError: time.Hour, Exposed: true}).Middleware(be)
				expect(t, get(t, h, "/"), "MISS", "good")
				time.Sleep(2 * time.Second)
				expect(t, get(t, h, "/"), "STALE", "good")
				if res := get(t, h, "/", "X-Odd", "1"); state(res) != "MISS" {
					t.Fatalf("odd request: %s", state(res))
				}
				for range 2 {
					if res := get(t, h, "/"); res.StatusCode != http.StatusOK || state(res) != "STALE" {
						t.Errorf("after one odd request: %d %s, want 200 STALE", res.StatusCode, state(res))
					}
				}
			})
		})
	}
}

// A response whose body does not match its declared Content-Length (a
// proxy whose upstream died, or a handler that writes past its length) is
// never stored, and the client sees what net/http would show it without
// the cache: a truncated body is an error; the excess of a long one is
// refused over HTTP/1.1 and an error over HTTP/2.
func TestContentLengthMismatchNotStored(t *testing.T) {
	h := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		switch r.URL.Path {
		case "/short":
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, strings.Repeat("x", 400))
		case "/long":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
			io.WriteString(w, " world")
		}
	}}
	for _, h2 := range []bool{false, true} {
		plain, cached := servePair(t, microcache.Config{TTL: time.Minute, Exposed: true}, h, h2)
		for _, path := range []string{"/short", "/long"} {
			_, want, wantErr := fetchAll(t, plain, path)
			for i := range 2 {
				calls := h.n()
				res, got, err := fetchAll(t, cached, path)
				if (err == nil) != (wantErr == nil) || got != want {
					t.Errorf("h2=%v %s #%d: body %d bytes, err %v; without the cache %d bytes, err %v", h2, path, i, len(got), err, len(want), wantErr)
				}
				if state(res) == "HIT" || h.n() != calls+1 {
					t.Errorf("h2=%v %s #%d: %s after %d backend calls: a mismatched response was stored", h2, path, i, state(res), h.n()-calls)
				}
			}
		}
	}
}

// Trailers reach the client on a miss, over HTTP/1.1 and HTTP/2, both the
// announced kind and http.TrailerPrefix's; a response with trailers is
// never stored without them (it is not stored at all).
func TestTrailersKept(t *testing.T) {
	h := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "payload")
		w.Header().Set("X-Checksum", "sum-"+itoa(n))
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}}
	for _, h2 := range []bool{false, true} {
		plain, cached := servePair(t, microcache.Config{TTL: time.Minute, Exposed: true}, h, h2)
		want, wantBody, _ := fetchAll(t, plain, "/")
		for i := range 2 {
			calls := h.n()
			got, gotBody, err := fetchAll(t, cached, "/")
			if err != nil || gotBody != wantBody {
				t.Errorf("h2=%v #%d: body %q, err %v, want %q", h2, i, gotBody, err, wantBody)
			}
			if got.Trailer.Get("X-Checksum") != "sum-"+itoa(calls+1) || got.Trailer.Get("X-Late") != want.Trailer.Get("X-Late") {
				t.Errorf("h2=%v #%d: trailers %v, without the cache %v", h2, i, got.Trailer, want.Trailer)
			}
			if h.n() != calls+1 {
				t.Errorf("h2=%v #%d: served without calling the backend: stored", h2, i)
			}
		}
	}
}

// An Age sent by a cache behind the handler passes through on a miss and
// counts toward the Age of a hit (RFC 9111 sections 4.2.3 and 5.1); a
// malformed one is ignored. A handler that leaves Date to net/http gets the
// Date it was produced with on every hit, not a new one each time.
func TestAgeAndDate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if age := r.URL.Query().Get("age"); age != "" {
				w.Header().Set("Age", age)
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: time.Hour, HashQuery: true, Exposed: true}).Middleware(be)
		miss := get(t, h, "/?age=100")
		date := miss.Header.Get("Date")
		if got := miss.Header.Get("Age"); got != "100" || date == "" {
			t.Fatalf("miss: Age %q, Date %q; want the backend's 100 and a Date", got, date)
		}
		time.Sleep(5 * time.Second)
		hit := get(t, h, "/?age=100")
		if got := hit.Header.Get("Age"); state(hit) != "HIT" || got != "105" {
			t.Errorf("hit: %s, Age %q, want HIT 105", state(hit), got)
		}
		if got := hit.Header.Get("Date"); got != date {
			t.Errorf("hit: Date %q, want the stored %q", got, date)
		}
		get(t, h, "/?age=soon")
		time.Sleep(time.Second)
		if got := get(t, h, "/?age=soon").Header.Get("Age"); got != "1" {
			t.Errorf("malformed upstream Age: hit Age %q, want 1", got)
		}
	})
}

// A nil header value is net/http's way to send no Date and no sniffed
// Content-Type: a replayed hit honours it as the handler did.
func TestNilHeaderValuesHonoured(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header()["Content-Type"] = nil
		io.WriteString(w, "<html><body>not sniffed</body></html>")
	})
	for _, h2 := range []bool{false, true} {
		plain, cached := servePair(t, microcache.Config{TTL: time.Minute, Exposed: true}, h, h2)
		want, _, _ := fetchAll(t, plain, "/")
		for i := range 2 {
			got, _, err := fetchAll(t, cached, "/")
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"Date", "Content-Type"} {
				if g, w := got.Header.Get(name), want.Header.Get(name); g != w {
					t.Errorf("h2=%v #%d (%s): %s %q, without the cache %q", h2, i, state(got), name, g, w)
				}
			}
		}
	}
}

// With Config.ETag, a stored response without validators gets a strong
// ETag from its body, and a reloading browser's If-None-Match is answered
// 304 from the cache; a response with its own validator keeps it.
func TestGeneratedETag(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		switch r.URL.Path {
		case "/own":
			w.Header().Set("ETag", `"v1"`)
		case "/dated":
			w.Header().Set("Last-Modified", "Mon, 30 Nov 2026 10:00:00 GMT")
		}
		io.WriteString(w, "the same body")
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, ETag: true}).Middleware(be)
	miss := get(t, h, "/")
	etag := miss.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) != 34 {
		t.Fatalf("miss: ETag %q, want a strong 32-hex-digit tag", etag)
	}
	if again := get(t, h, "/").Header.Get("ETag"); again != etag {
		t.Errorf("hit: ETag %q, want the stored %q", again, etag)
	}
	res := get(t, h, "/", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified || state(res) != "HIT" || body(t, res) != "" {
		t.Errorf("If-None-Match: %d %s, want a 304 HIT without a body", res.StatusCode, state(res))
	}
	if res := get(t, h, "/", "If-None-Match", `"other"`); res.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match with another tag: %d, want 200", res.StatusCode)
	}
	if got := get(t, h, "/own").Header.Get("ETag"); got != `"v1"` {
		t.Errorf("own ETag replaced: %q", got)
	}
	if got := get(t, h, "/dated").Header.Get("ETag"); got != "" {
		t.Errorf("a response with Last-Modified got ETag %q", got)
	}
	if got := get(t, h, "/other").Header.Get("ETag"); got != etag {
		t.Errorf("the same body elsewhere: ETag %q, want %q (it depends on the body only)", got, etag)
	}
}

// A URL that hit-for-pass made uncacheable is relearned as cacheable only
// from an answer the buffered path would store: one with trailers (or a
// body that disagrees with its Content-Length) keeps it passing through,
// rather than cycling through strikes again.
func TestRelearnRefusesWhatMissesRefuse(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Trailer", "X-T")
		io.WriteString(w, "call "+itoa(n))
		w.Header().Set("X-T", "v")
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Observe: func(r *http.Request, o microcache.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		kinds = append(kinds, o.Kind.String())
	}}).Middleware(be)
	for range 8 {
		get(t, h, "/")
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(kinds, " "); got != "miss miss miss pass pass pass pass pass" {
		t.Errorf("outcomes %q: want three strikes, then pass-through for good", got)
	}
}
