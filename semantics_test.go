package microcache_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
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
