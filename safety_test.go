package microcache_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// A response that sets a cookie is never stored, even when it asks to be.
func TestSetCookieNeverStored(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set(microcache.HeaderCache, "1")
		w.Header().Set("Set-Cookie", "session="+itoa(n))
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	for i := int64(1); i <= 3; i++ {
		res := get(t, h, "/")
		if got := res.Header.Get("Set-Cookie"); got != "session="+itoa(i) || state(res) != "MISS" {
			t.Errorf("request %d: Set-Cookie %q, %s", i, got, state(res))
		}
	}
}

// Cache-Control private and no-store keep a response out of the cache unless
// it also says microcache-cache: 1.
func TestPrivateAndNoStore(t *testing.T) {
	for _, cc := range []string{"private", "no-store", "max-age=60, Private", `private="X-Thing"`, "public, no-store"} {
		for _, optIn := range []bool{false, true} {
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				w.Header().Set("Cache-Control", cc)
				if optIn {
					w.Header().Set(microcache.HeaderCache, "1")
				}
				io.WriteString(w, "ok")
			}}
			h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
			get(t, h, "/")
			want := "MISS"
			if optIn {
				want = "HIT"
			}
			if s := state(get(t, h, "/")); s != want {
				t.Errorf("Cache-Control %q, opt-in %v: %s, want %s", cc, optIn, s, want)
			}
		}
	}
}

// A request with credentials is never answered with a response fetched for
// other credentials, and its own response is not stored.
func TestAuthorizationBypasses(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		io.WriteString(w, "for "+r.Header.Get("Authorization"))
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	get(t, h, "/")
	expect(t, get(t, h, "/", "Authorization", "Bearer a"), "MISS", "for Bearer a")
	expect(t, get(t, h, "/", "Authorization", "Bearer b"), "MISS", "for Bearer b")
	expect(t, get(t, h, "/"), "HIT", "for ")
}

// A GET with a body is neither answered from nor stored in the cache.
func TestGetWithBodyBypasses(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "body="+string(b))
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	get(t, h, "/")
	r := httptest.NewRequest(http.MethodGet, "/", strings.NewReader("poison"))
	expect(t, serveReq(h, r), "MISS", "body=poison")
	expect(t, get(t, h, "/"), "HIT", "body=")
}

// A Range request never stores a partial answer: the backend is asked for
// the whole body, which is stored, and the client gets its range.
func TestRangeRequests(t *testing.T) {
	content := "0123456789"
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.Header.Get("Range") != "" {
			t.Errorf("backend saw Range %q", r.Header.Get("Range"))
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(content))
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	res := get(t, h, "/", "Range", "bytes=2-4")
	if res.StatusCode != http.StatusPartialContent || body(t, res) != "234" {
		t.Errorf("range miss: %d", res.StatusCode)
	}
	res = get(t, h, "/", "Range", "bytes=5-")
	if res.StatusCode != http.StatusPartialContent || state(res) != "HIT" || body(t, res) != "56789" {
		t.Errorf("range hit: %d %s", res.StatusCode, state(res))
	}
	expect(t, get(t, h, "/"), "HIT", content)
}

// Conditional requests are answered 304 from a stored object, and never
// store a 304.
func TestConditionalRequests(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.Header.Get("If-None-Match") != "" {
			t.Errorf("backend saw If-None-Match")
		}
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, "body")
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	if res := get(t, h, "/", "If-None-Match", `"v1"`); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional miss: %d", res.StatusCode)
	}
	if res := get(t, h, "/", "If-None-Match", `"v1"`); res.StatusCode != http.StatusNotModified || state(res) != "HIT" {
		t.Errorf("conditional hit: %d %s", res.StatusCode, state(res))
	}
	if res := get(t, h, "/", "If-None-Match", `"v0"`); res.StatusCode != 200 || body(t, res) != "body" {
		t.Errorf("non-matching conditional: %d", res.StatusCode)
	}
	expect(t, get(t, h, "/"), "HIT", "body")
	if be.n() != 1 {
		t.Errorf("backend calls = %d, want 1", be.n())
	}
}

// Regression: "Connection: keep-alive, Upgrade" was cached. Upgrades go to
// the handler with the real ResponseWriter, so it can hijack.
func TestUpgradePassesThrough(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.Header.Get("Upgrade") == "" {
			io.WriteString(w, "plain")
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nupgraded " + itoa(n))
		buf.Flush()
	}}
	c := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, Timeout: time.Millisecond})
	ts := httptest.NewServer(c.Middleware(be))
	defer ts.Close()
	for i := 1; i <= 2; i++ {
		conn, err := (&net.Dialer{}).Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(br) // the upgraded protocol's bytes
		conn.Close()
		if res.StatusCode != 101 || !strings.HasSuffix(string(b), "upgraded "+itoa(int64(i))) {
			t.Errorf("upgrade %d: %d %q", i, res.StatusCode, b)
		}
	}
}

// Control headers are removed on upgrade requests too, whatever the
// handler answers.
func TestUpgradeScrubsControlHeaders(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set(microcache.HeaderTTL, "10")
		w.Header()["microcache-vary"] = []string{"X-Secret"}
		io.WriteString(w, "no upgrade for you")
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute}).Middleware(be)
	res := get(t, h, "/", "Connection", "keep-alive, Upgrade", "Upgrade", "websocket")
	noControlHeaders(t, res)
	if b := body(t, res); b != "no upgrade for you" {
		t.Errorf("body %q", b)
	}
}

// An invalid status code panics in the handler, as net/http would make it,
// and is treated as a backend panic: the stale object answers it.
func TestInvalidStatusIsABackendPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n > 1 {
				w.WriteHeader(0)
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		mon := &statsMonitor{}
		c := newUnmanaged(microcache.Config{TTL: time.Second, StaleIfError: time.Minute, Exposed: true, Monitor: mon})
		h := c.Middleware(be)
		get(t, h, "/")
		time.Sleep(2 * time.Second)
		expect(t, get(t, h, "/"), "STALE", "call 1")
		c.Stop()
		if mon.total.Panics != 1 {
			t.Errorf("stats %+v, want 1 panic", mon.total)
		}
	})
}

// A page personalised by a session cookie (no Set-Cookie, no private) is
// kept per user with SessionCookies: requests carrying a named cookie pass
// straight through both ways, so alice's page is never stored nor served
// to bob or to anonymous users, who share the public page.
func TestSessionCookiesBypass(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		user := "anonymous"
		if c, err := r.Cookie("sid"); err == nil {
			user = c.Value
		}
		io.WriteString(w, "hello "+user)
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, SessionCookies: []string{"sid"}}).Middleware(be)
	expect(t, get(t, h, "/", "Cookie", "theme=dark; sid=alice"), "MISS", "hello alice")
	expect(t, get(t, h, "/", "Cookie", "sid=bob"), "MISS", "hello bob")
	expect(t, get(t, h, "/"), "MISS", "hello anonymous")
	expect(t, get(t, h, "/", "Cookie", "theme=dark"), "HIT", "hello anonymous")
	expect(t, get(t, h, "/", "Cookie", "sid=alice"), "MISS", "hello alice")
	expect(t, get(t, h, "/", "Cookie", "xsid=1", "Cookie", "a=b;  sid=carol"), "MISS", "hello carol")
}
