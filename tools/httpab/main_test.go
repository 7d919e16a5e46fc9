package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// The three targets send the same body; headers adds exactly the two
// headers a hit adds, and cache answers its second request from the cache.
func TestTargets(t *testing.T) {
	cache := microcache.New(microcache.Config{TTL: time.Minute, Exposed: true})
	defer cache.Stop()
	hs := targets(1000, cache)
	serve := func(h http.Handler) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		return w
	}
	bare := serve(hs[0])
	if bare.Code != 200 || bare.Body.Len() != 1000 || bare.Header().Get("Content-Length") != "1000" {
		t.Fatalf("bare: %d, %d bytes, Content-Length %q", bare.Code, bare.Body.Len(), bare.Header().Get("Content-Length"))
	}
	withHeaders := serve(hs[1])
	if withHeaders.Body.String() != bare.Body.String() || withHeaders.Header().Get(microcache.HeaderStatus) != microcache.StatusHit || withHeaders.Header().Get("Age") == "" {
		t.Errorf("headers: header %v", withHeaders.Header())
	}
	serve(hs[2])
	hit := serve(hs[2])
	if hit.Body.String() != bare.Body.String() || hit.Header().Get(microcache.HeaderStatus) != microcache.StatusHit {
		t.Errorf("cache: second response %s, %d bytes", hit.Header().Get(microcache.HeaderStatus), hit.Body.Len())
	}
}
