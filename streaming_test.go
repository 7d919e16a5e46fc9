package microcache_test

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// streamPayload returns n bytes in which every KiB differs from the others,
// so that a lost, repeated or reordered chunk shows in a comparison.
func streamPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i+i/1024*7)%26)
	}
	return b
}

// writeChunks writes p to w in 1 KiB writes.
func writeChunks(w io.Writer, p []byte) {
	for off := 0; off < len(p); off += 1024 {
		w.Write(p[off:min(off+1024, len(p))])
	}
}

// oversized is a backend answering 203 with a 10 KiB body written in 1 KiB
// chunks, ordinary headers and control headers that must never leak. With
// ?cl=1 it declares its Content-Length; with ?flush=1 it records the error
// of http.ResponseController.Flush once the body is written.
func oversized(payload []byte, flushErrs chan<- error) *backend {
	return &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("X-Origin", "yes")
		h.Set(microcache.HeaderTTL, "60")
		h.Set("Microcache-Private-Note", "never sent")
		if r.URL.Query().Has("cl") {
			h.Set("Content-Length", itoa(int64(len(payload))))
		}
		w.WriteHeader(http.StatusNonAuthoritativeInfo)
		writeChunks(w, payload)
		if r.URL.Query().Has("flush") {
			flushErrs <- http.NewResponseController(w).Flush()
		}
	}}
}

// checkOversized checks one client's copy of an oversized response.
func checkOversized(t *testing.T, res *http.Response, payload []byte) {
	t.Helper()
	if res.StatusCode != http.StatusNonAuthoritativeInfo {
		t.Errorf("status %d, want 203", res.StatusCode)
	}
	if res.Header.Get("X-Origin") != "yes" || res.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("headers lost: %v", res.Header)
	}
	noControlHeaders(t, res)
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("reading the body: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("body: got %d bytes, want the %d sent (first difference at %d)", len(got), len(payload), firstDiff(got, payload))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A response that outgrows MaxObjectSize reaches its client whole, with its
// status and headers, and is not stored: every later request reaches the
// backend through a writer that can flush.
func TestStreamOversizedResponse(t *testing.T) {
	payload := streamPayload(10 << 10)
	flushErrs := make(chan error, 10)
	be := oversized(payload, flushErrs)
	h := newCache(t, microcache.Config{TTL: time.Minute, MaxObjectSize: 1 << 10, Exposed: true}).Middleware(be)
	for i := int64(1); i <= 4; i++ {
		res := get(t, h, "/big?flush=1")
		checkOversized(t, res, payload)
		if state(res) != microcache.StatusMiss {
			t.Errorf("request %d: state %q, want MISS", i, state(res))
		}
		if be.n() != i {
			t.Fatalf("request %d: backend calls = %d: answered from the cache", i, be.n())
		}
		if err := <-flushErrs; err != nil {
			t.Errorf("request %d: Flush: %v", i, err)
		}
	}
}

// Once a response has outgrown MaxObjectSize its key passes straight
// through, as the documentation of MaxObjectSize says: every later request
// counts as a Pass (none is buffered as a Miss again) and concurrent
// requests are not collapsed, even with CollapsedForwarding on.
func TestStreamOversizedKeyStaysPassThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		payload := streamPayload(4 << 10)
		release := make(chan struct{})
		var inflight, maxInflight atomic.Int64
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if r.URL.Query().Has("wait") {
				cur := inflight.Add(1)
				for m := maxInflight.Load(); cur > m && !maxInflight.CompareAndSwap(m, cur); m = maxInflight.Load() {
				}
				<-release
				inflight.Add(-1)
			}
			writeChunks(w, payload)
		}}
		mon := &statsMonitor{}
		c := newCache(t, microcache.Config{TTL: time.Minute, MaxObjectSize: 1 << 10, CollapsedForwarding: true, Monitor: mon})
		h := c.Middleware(be)
		for range 2 {
			if got := body(t, get(t, h, "/big")); got != string(payload) {
				t.Fatalf("body of %d bytes, want %d", len(got), len(payload))
			}
		}
		for _, res := range herd(t, h, release, 4, "/big?wait=1") {
			if got := body(t, res); got != string(payload) {
				t.Errorf("concurrent request: body of %d bytes, want %d", len(got), len(payload))
			}
		}
		if m := maxInflight.Load(); m != 4 {
			t.Errorf("%d of 4 concurrent requests reached the backend together: collapsed", m)
		}
		c.Stop()
		if s := mon.total; s.Misses != 1 || s.Passes != 5 || s.Hits != 0 {
			t.Errorf("stats %+v, want 1 miss (the first, oversized response) and 5 passes", s)
		}
	})
}

// Over a real connection: the bytes on the wire are a well-formed response
// (chunked, or with the handler's Content-Length) carrying every byte, and
// no microcache-* header.
func TestStreamOversizedOnTheWire(t *testing.T) {
	payload := streamPayload(10 << 10)
	flushErrs := make(chan error, 10)
	be := oversized(payload, flushErrs)
	c := newCache(t, microcache.Config{TTL: time.Minute, MaxObjectSize: 1 << 10})
	srv := httptest.NewServer(c.Middleware(be))
	defer srv.Close()

	for _, target := range []string{"/chunked", "/length?cl=1"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second)) // a watchdog, not a synchronization
		io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
		raw, err := io.ReadAll(conn)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		if bytes.Contains(bytes.ToLower(head), []byte("microcache-")) {
			t.Errorf("%s: control header on the wire:\n%s", target, head)
		}
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("%s: malformed response: %v", target, err)
		}
		checkOversized(t, res, payload)
		if target == "/chunked" && !slicesEqual(res.TransferEncoding, []string{"chunked"}) {
			t.Errorf("%s: Transfer-Encoding %v, want chunked", target, res.TransferEncoding)
		}
		if target != "/chunked" && res.ContentLength != int64(len(payload)) {
			t.Errorf("%s: Content-Length %d, want %d", target, res.ContentLength, len(payload))
		}
	}

	// The key now passes through to a writer that flushes on a real
	// connection.
	res, err := srv.Client().Get(srv.URL + "/chunked?flush=1")
	if err != nil {
		t.Fatal(err)
	}
	checkOversized(t, res, payload)
	res.Body.Close()
	if err := <-flushErrs; err != nil {
		t.Errorf("Flush on the pass-through: %v", err)
	}
	if be.n() != 3 {
		t.Errorf("backend calls = %d, want 3: nothing is stored", be.n())
	}
}

func slicesEqual(a, b []string) bool { return reflect.DeepEqual(a, b) }

// A handler that flushes streams from that moment, even on the first
// request for its key: the client reads the first chunk while the handler
// still waits to write the second. Nothing is stored.
func TestFlushStreamsFirstRequest(t *testing.T) {
	viaFlusher := func(w http.ResponseWriter) error { w.(http.Flusher).Flush(); return nil }
	viaController := func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }
	for _, tc := range []struct {
		name     string
		collapse bool
		flush    func(http.ResponseWriter) error
	}{
		{"Flusher", false, viaFlusher},
		{"ResponseController", false, viaController},
		{"Flusher/collapsed", true, viaFlusher},
		{"ResponseController/collapsed", true, viaController},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const first, second = "data: first\n\n", "data: second\n\n"
			next := make(chan struct{})
			flushErr := make(chan error, 1)
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set(microcache.HeaderTTL, "60")
				io.WriteString(w, first)
				err := tc.flush(w)
				if n == 1 {
					flushErr <- err
					<-next
				}
				io.WriteString(w, second)
			}}
			c := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: tc.collapse, Exposed: true})
			srv := httptest.NewServer(c.Middleware(be))
			defer srv.Close()

			type firstRead struct {
				res *http.Response
				buf []byte
				err error
			}
			got := make(chan firstRead, 1)
			go func() {
				res, err := srv.Client().Get(srv.URL + "/events")
				if err != nil {
					got <- firstRead{err: err}
					return
				}
				buf := make([]byte, len(first))
				_, err = io.ReadFull(res.Body, buf)
				got <- firstRead{res, buf, err}
			}()
			var fr firstRead
			select {
			case fr = <-got:
			case <-time.After(10 * time.Second): // a watchdog: buffering would block here for good
				close(next)
				<-got
				t.Fatal("the first chunk did not reach the client before the handler wrote the second")
			}
			close(next)
			if fr.err != nil {
				t.Fatal(fr.err)
			}
			defer fr.res.Body.Close()
			if string(fr.buf) != first {
				t.Errorf("first chunk %q", fr.buf)
			}
			if err := <-flushErr; err != nil {
				t.Errorf("Flush: %v", err)
			}
			rest, err := io.ReadAll(fr.res.Body)
			if err != nil || string(rest) != second {
				t.Errorf("rest %q, %v", rest, err)
			}
			if fr.res.Header.Get("Content-Type") != "text/event-stream" || state(fr.res) != microcache.StatusMiss {
				t.Errorf("headers %v", fr.res.Header)
			}
			noControlHeaders(t, fr.res)

			res, err := srv.Client().Get(srv.URL + "/events")
			if err != nil {
				t.Fatal(err)
			}
			if b := body(t, res); b != first+second || be.n() != 2 {
				t.Errorf("second request: body %q after %d backend calls; the streamed response was stored", b, be.n())
			}
			res.Body.Close()
		})
	}
}

// http.ResponseController's Flush, SetWriteDeadline and Hijack reach the
// connection on every pass-through path.
func TestPassThroughResponseController(t *testing.T) {
	type rcResult struct {
		target            string
		deadline, flush   error
		hijack            error
		hijackedSomething bool
	}
	results := make(chan rcResult, 1)
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Path == "/nocache" {
			w.Header().Set(microcache.HeaderNocache, "1")
		}
		rc := http.NewResponseController(w)
		res := rcResult{target: r.Method + " " + r.URL.RequestURI()}
		switch r.URL.Query().Get("op") {
		case "flush":
			res.deadline = rc.SetWriteDeadline(time.Now().Add(time.Minute))
			io.WriteString(w, "a")
			res.flush = rc.Flush()
			io.WriteString(w, "b")
		case "hijack":
			conn, brw, err := rc.Hijack()
			res.hijack = err
			if err == nil {
				res.hijackedSomething = true
				brw.WriteString("HTTP/1.1 200 OK\r\nX-Hijacked: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				brw.Flush()
				conn.Close()
			}
		default:
			io.WriteString(w, "plain")
			return
		}
		results <- res
	}}
	c := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true})
	srv := httptest.NewUnstartedServer(c.Middleware(be))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	client := srv.Client()

	do := func(method, target string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		return res
	}
	// Learn that /nocache is uncacheable.
	res := do("GET", "/nocache")
	body(t, res)
	res.Body.Close()

	for _, p := range []struct {
		name, method, path string
		hdr                []string
	}{
		{"POST", "POST", "/post", nil},
		{"uncacheable GET", "GET", "/nocache", nil},
		{"Authorization", "GET", "/auth", []string{"Authorization", "Bearer secret"}},
		{"HEAD miss", "HEAD", "/head", nil},
		{"upgrade", "GET", "/upgrade", []string{"Connection", "Upgrade", "Upgrade", "example/1"}},
	} {
		res := do(p.method, p.path+"?op=flush", p.hdr...)
		b := body(t, res)
		res.Body.Close()
		r := <-results
		if r.deadline != nil || r.flush != nil {
			t.Errorf("%s: SetWriteDeadline: %v, Flush: %v", p.name, r.deadline, r.flush)
		}
		wantBody := "ab"
		if p.method == "HEAD" {
			wantBody = ""
		}
		if res.StatusCode != 200 || b != wantBody {
			t.Errorf("%s: status %d, body %q", p.name, res.StatusCode, b)
		}

		res = do(p.method, p.path+"?op=hijack", p.hdr...)
		body(t, res)
		res.Body.Close()
		r = <-results
		if r.hijack != nil || !r.hijackedSomething || res.Header.Get("X-Hijacked") != "1" {
			t.Errorf("%s: Hijack: %v (client got %v)", p.name, r.hijack, res.Header)
		}
	}
}

// exchange is what a client saw of one response.
type exchange struct {
	status int
	header http.Header
	body   string
	infos  []info // 1xx responses, in order
}

type info struct {
	code   int
	header textproto.MIMEHeader
}

// roundTrip sends one request and records the interim (1xx) responses.
func roundTrip(t *testing.T, client *http.Client, method, url string) exchange {
	t.Helper()
	var ex exchange
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		ex.infos = append(ex.infos, info{code, textproto.MIMEHeader(http.Header(h).Clone())})
		return nil
	}}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	ex.status = res.StatusCode
	ex.header = res.Header.Clone()
	ex.body = body(t, res)
	for _, name := range []string{"Date", "Age", microcache.HeaderStatus} {
		ex.header.Del(name)
	}
	mu.Lock()
	defer mu.Unlock()
	return ex
}

// diffExchange reports how got differs from want (the same handler served
// without the cache); infos are compared only when withInfos is set.
func diffExchange(t *testing.T, what string, got, want exchange, withInfos bool) {
	t.Helper()
	if got.status != want.status {
		t.Errorf("%s: status %d, without the cache %d", what, got.status, want.status)
	}
	if got.body != want.body {
		t.Errorf("%s: body %q, without the cache %q", what, got.body, want.body)
	}
	if !reflect.DeepEqual(got.header, want.header) {
		t.Errorf("%s: header\n%v\nwithout the cache\n%v", what, got.header, want.header)
	}
	if withInfos && !reflect.DeepEqual(got.infos, want.infos) {
		t.Errorf("%s: 1xx responses %v, without the cache %v", what, got.infos, want.infos)
	}
}

// quirkServers starts the handlers in cases twice, on their paths: bare and
// behind a cache. They are closed when the test ends.
func quirkServers(t *testing.T, cases map[string]http.HandlerFunc) (plain, cached *httptest.Server, be *backend) {
	mux := func(w http.ResponseWriter, r *http.Request) { cases[r.URL.Path](w, r) }
	be = &backend{serve: func(w http.ResponseWriter, r *http.Request, _ int64) { mux(w, r) }}
	c := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true})
	start := func(h http.Handler) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		s.Config.ErrorLog = log.New(io.Discard, "", 0) // superfluous WriteHeader calls are logged
		s.Start()
		t.Cleanup(s.Close)
		return s
	}
	return start(http.HandlerFunc(mux)), start(c.Middleware(be)), be
}

// Informational responses, HEAD, a WriteHeader after Write and a second
// WriteHeader look the same through the cache as without it, on the miss
// and when replayed; a 103 is never stored as the final status and a
// superfluous WriteHeader's code is never stored.
func TestEarlyHintsAndWriteHeaderQuirks(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"/early-hints": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("X-Final", "1")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "<p>hinted</p>")
		},
		"/early-hints-twice": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Add("Link", "</b.js>; rel=preload; as=script")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "hinted twice")
		},
		"/write-then-writeheader": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "body first")
			w.WriteHeader(http.StatusInternalServerError) // superfluous: the status is 200
		},
		"/double-writeheader": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNonAuthoritativeInfo)
			w.WriteHeader(http.StatusInternalServerError) // superfluous
			io.WriteString(w, "first status wins")
		},
		"/header-after-writeheader": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Early", "1")
			w.WriteHeader(http.StatusOK)
			w.Header().Set("X-Late", "1") // too late for the response
			io.WriteString(w, "late header")
		},
		"/head": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Method", r.Method)
			io.WriteString(w, "a body HEAD does not carry")
		},
	}
	plain, cached, be := quirkServers(t, cases)
	for _, path := range []string{"/early-hints", "/early-hints-twice", "/write-then-writeheader", "/double-writeheader", "/header-after-writeheader"} {
		want := roundTrip(t, plain.Client(), "GET", plain.URL+path)
		calls := be.n()
		miss := roundTrip(t, cached.Client(), "GET", cached.URL+path)
		diffExchange(t, path+" (miss)", miss, want, true)
		hit := roundTrip(t, cached.Client(), "GET", cached.URL+path)
		diffExchange(t, path+" (hit)", hit, want, false)
		if len(hit.infos) != 0 {
			t.Errorf("%s (hit): 1xx replayed: %v", path, hit.infos)
		}
		if be.n() != calls+1 {
			t.Errorf("%s: %d backend calls for a miss and a hit", path, be.n()-calls)
		}
	}

	// HEAD: a miss passes through; after a GET it is answered from the
	// stored response (whose X-Method says GET, as the GET stored it).
	want := roundTrip(t, plain.Client(), "HEAD", plain.URL+"/head")
	diffExchange(t, "HEAD miss", roundTrip(t, cached.Client(), "HEAD", cached.URL+"/head"), want, true)
	wantGet := roundTrip(t, plain.Client(), "GET", plain.URL+"/head")
	diffExchange(t, "GET after HEAD", roundTrip(t, cached.Client(), "GET", cached.URL+"/head"), wantGet, true)
	calls := be.n()
	hit := roundTrip(t, cached.Client(), "HEAD", cached.URL+"/head")
	want.header.Set("X-Method", "GET")
	diffExchange(t, "HEAD hit", hit, want, true)
	if be.n() != calls {
		t.Errorf("HEAD after GET reached the backend")
	}
}

// Headers a handler sends only with a 103 (it deletes them before the
// final response) are not part of the final response without the cache,
// so they must not be with it.
func TestEarlyHintsHeadersStayInterim(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"/hints": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Header().Set("X-Final", "1")
			io.WriteString(w, "final")
		},
	}
	plain, cached, _ := quirkServers(t, cases)
	want := roundTrip(t, plain.Client(), "GET", plain.URL+"/hints")
	if want.header.Get("Link") != "" || len(want.infos) != 1 {
		t.Fatalf("net/http changed: %+v", want)
	}
	diffExchange(t, "miss", roundTrip(t, cached.Client(), "GET", cached.URL+"/hints"), want, true)
	diffExchange(t, "hit", roundTrip(t, cached.Client(), "GET", cached.URL+"/hints"), want, false)
}

// A pass-through handler that sends 103 Early Hints keeps its control
// headers for the final response: they are kept from the 103 (never sent)
// and still read when the URL is relearned, so a microcache-nocache URL
// stays uncacheable rather than flipping between miss and pass.
func TestEarlyHintsKeepControlHeadersOnPassThrough(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set(microcache.HeaderNocache, "1")
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "call "+itoa(n))
	}}
	c := newCache(t, microcache.Config{TTL: time.Minute, Observe: func(r *http.Request, o microcache.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		kinds = append(kinds, o.Kind.String())
	}})
	srv := httptest.NewServer(c.Middleware(be))
	defer srv.Close()
	for range 4 {
		ex := roundTrip(t, srv.Client(), "GET", srv.URL+"/x")
		for _, in := range ex.infos {
			for k := range in.header {
				if strings.HasPrefix(strings.ToLower(k), "microcache-") {
					t.Errorf("control header %s sent with the 103", k)
				}
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(kinds, " "); got != "miss pass pass pass" {
		t.Errorf("outcomes %q, want the URL to stay pass-through after its first answer", got)
	}
}
