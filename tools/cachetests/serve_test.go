package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:0":    true,
		"127.0.0.2:8000": true,
		"[::1]:8000":     true,
		"localhost:0":    true,
		":8000":          false,
		"0.0.0.0:8000":   false,
		"10.0.0.1:80":    false,
		"example.org:80": false,
		"127.0.0.1":      false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestOriginURL(t *testing.T) {
	for s, ok := range map[string]bool{
		"http://127.0.0.1:8000":  true,
		"https://127.0.0.1:8000": true,
		"":                       false,
		"127.0.0.1:8000":         false,
		"ftp://127.0.0.1":        false,
		"http://":                false,
	} {
		if _, err := originURL(s); (err == nil) != ok {
			t.Errorf("originURL(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}

// TestProxy checks what serve puts in front of the origin: the cache
// answers the second request, and the origin sees the client's Host.
func TestProxy(t *testing.T) {
	var calls int
	var host string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		host = r.Host
		io.WriteString(w, "body")
	}))
	defer origin.Close()
	target, err := originURL(origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	cache := microcache.New(microcache.Config{TTL: 30 * time.Second, HashQuery: true, Exposed: true})
	defer cache.Stop()
	proxy := httptest.NewServer(cache.Middleware(newProxy(target)))
	defer proxy.Close()

	var states []string
	for range 2 {
		req, err := http.NewRequest("GET", proxy.URL+"/test/x?a=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "suite.test"
		res, err := proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || string(body) != "body" {
			t.Fatalf("body %q, %v", body, err)
		}
		states = append(states, res.Header.Get("Microcache"))
	}
	if calls != 1 || states[0] != "MISS" || states[1] != "HIT" {
		t.Errorf("origin calls %d, states %q; want 1 call, MISS then HIT", calls, states)
	}
	if host != "suite.test" {
		t.Errorf("origin saw Host %q, want the client's", host)
	}
}
