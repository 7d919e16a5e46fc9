package microcache_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// herd sends n concurrent GETs for target once the backend is entered,
// then releases the backend and returns the responses.
func herd(t *testing.T, h http.Handler, release chan struct{}, n int, target string, hdr ...string) []*http.Response {
	t.Helper()
	out := make([]*http.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = get(t, h, target, hdr...)
		}()
	}
	synctest.Wait() // everyone is in the backend or waiting for it
	close(release)
	wg.Wait()
	return out
}

// Concurrent misses for one object make one backend call and all get its
// response.
func TestCollapsedForwarding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-release
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true}).Middleware(be)
		start := time.Now()
		for _, res := range herd(t, h, release, 100, "/") {
			expect(t, res, "MISS", "call 1")
		}
		if be.n() != 1 || time.Since(start) != 0 {
			t.Errorf("backend calls = %d, elapsed %v", be.n(), time.Since(start))
		}
	})
}

// A 5xx without cookies is shared with the waiters.
func TestCollapsedShares5xx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-release
			w.WriteHeader(502)
			io.WriteString(w, "bad gateway")
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true}).Middleware(be)
		for _, res := range herd(t, h, release, 20, "/") {
			if res.StatusCode != 502 || body(t, res) != "bad gateway" {
				t.Errorf("waiter got %d", res.StatusCode)
			}
		}
		if be.n() != 1 {
			t.Errorf("backend calls = %d, want 1", be.n())
		}
	})
}

// A response that may not be shared (here it sets a cookie) is not handed
// to waiters: each makes its own call, concurrently, and the key is marked
// uncacheable so later requests do not wait.
func TestCollapsedUnshareable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 1 {
				<-release
			}
			w.Header().Set("Set-Cookie", "id="+itoa(n))
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true}).Middleware(be)
		seen := map[string]bool{}
		for _, res := range herd(t, h, release, 10, "/") {
			c := res.Header.Get("Set-Cookie")
			if seen[c] {
				t.Errorf("cookie %q handed to two clients", c)
			}
			seen[c] = true
		}
		if be.n() != 10 {
			t.Errorf("backend calls = %d, want 10", be.n())
		}
		// Unstorable answers in a row (the herd's counts once: its
		// waiters' stores lose to the leader's) make the URL hit-for-pass.
		for range microcache.HitForPassAfter - 1 {
			get(t, h, "/")
		}
		// Later requests pass through concurrently: none waits for another.
		block := make(chan struct{})
		be.serve = func(w http.ResponseWriter, r *http.Request, n int64) { <-block }
		calls := be.n()
		for range 3 {
			go get(t, h, "/")
		}
		synctest.Wait()
		if be.n() != calls+3 {
			t.Errorf("backend calls = %d, want %d (all three inside at once)", be.n(), calls+3)
		}
		close(block)
	})
}

// Waiters on a response that varies get it only when their own request
// selects the same variant.
func TestCollapsedRespectsVary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 1 {
				<-release
			}
			w.Header().Set("Vary", "X-Lang")
			io.WriteString(w, r.Header.Get("X-Lang"))
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true}).Middleware(be)
		var wg sync.WaitGroup
		results := map[string]string{}
		var mu sync.Mutex
		for _, lang := range []string{"en", "fr", "de"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := body(t, get(t, h, "/", "X-Lang", lang))
				mu.Lock()
				results[lang] = b
				mu.Unlock()
			}()
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		for lang, b := range results {
			if b != lang {
				t.Errorf("X-Lang %s got %q", lang, b)
			}
		}
	})
}

// A panic in the shared call reaches the leader as it would without the
// cache; waiters are released at once and make their own calls.
func TestCollapsedPanicReleasesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 1 {
				<-release
				panic("leader exploded")
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true}).Middleware(be)
		var wg sync.WaitGroup
		var mu sync.Mutex
		panics, oks := 0, 0
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, p := serveRecover(h, "/")
				mu.Lock()
				defer mu.Unlock()
				if p != nil {
					panics++
				} else if res.StatusCode == 200 {
					oks++
				}
			}()
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		if panics != 1 || oks != 4 {
			t.Errorf("%d panics and %d answers, want 1 and 4", panics, oks)
		}
	})
}

// Without a Timeout the shared call keeps the first client's context: when
// that client leaves, a backend that waits for cancellation returns, its
// answer is neither stored nor shared, the URL stays cacheable, and the
// waiters make their own calls instead of hanging.
func TestCollapsedLeaderLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 1 {
				<-r.Context().Done() // a long poll
				io.WriteString(w, "abandoned")
				return
			}
			<-release
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true}).Middleware(be)
		ctx, cancel := context.WithCancel(context.Background())
		leaderDone := make(chan struct{})
		go func() {
			defer close(leaderDone)
			serveReq(h, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
		}()
		synctest.Wait()
		var wg sync.WaitGroup
		bodies := make([]string, 3)
		for i := range bodies {
			wg.Add(1)
			go func() { defer wg.Done(); bodies[i] = body(t, get(t, h, "/")) }()
		}
		synctest.Wait()
		cancel()
		<-leaderDone
		synctest.Wait()
		close(release)
		wg.Wait()
		for _, b := range bodies {
			if b == "abandoned" || b == "" {
				t.Errorf("waiter got %q", b)
			}
		}
		if s := state(get(t, h, "/")); s != "HIT" {
			t.Errorf("after the waiters' own calls: %s, want HIT", s)
		}
	})
}

// A 5xx that says it is its own request's (private, no-store) is not
// shared with collapsed waiters: each gets its own, as with a cookie.
func TestCollapsedPrivateErrorNotShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-release
			w.Header().Set("Cache-Control", "private, no-store")
			w.WriteHeader(http.StatusInternalServerError)
			c, _ := r.Cookie("user")
			io.WriteString(w, "error page for "+c.Value)
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true}).Middleware(be)
		out := make([]string, 5)
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				out[i] = body(t, get(t, h, "/", "Cookie", "user=u"+itoa(int64(i))))
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		for i, b := range out {
			if b != "error page for u"+itoa(int64(i)) {
				t.Errorf("client u%d got %q", i, b)
			}
		}
	})
}
