package microcache_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// setRaw sets a header under exactly the given name, bypassing
// canonicalization, as a handler writing to the map directly would.
func setRaw(h http.Header, name, value string) { h[name] = []string{value} }

// Control headers are matched case-insensitively and never reach a client,
// on a miss, a hit, a stale answer or a pass-through.
func TestControlHeadersNeverSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			h := w.Header()
			setRaw(h, "microcache-ttl", "10")
			setRaw(h, "MICROCACHE-STALE-WHILE-REVALIDATE", "10")
			setRaw(h, "Microcache-Vary", "X-Unused")
			setRaw(h, "microcache-custom-unknown", "x")
			if r.URL.Path == "/nocache" {
				setRaw(h, "microcache-NoCache", "1")
			}
			io.WriteString(w, "ok")
		}}
		h := newCache(t, microcache.Config{Exposed: true}).Middleware(be)
		seen := map[string]bool{}
		check := func(res *http.Response) {
			t.Helper()
			noControlHeaders(t, res)
			seen[state(res)] = true
		}
		check(get(t, h, "/"))
		check(get(t, h, "/"))
		time.Sleep(15 * time.Second)
		check(get(t, h, "/")) // stale, refreshed in the background
		synctest.Wait()
		check(serve(t, h, http.MethodPost, "/"))
		check(get(t, h, "/nocache"))
		check(get(t, h, "/nocache")) // pass-through of an uncacheable key
		for _, s := range []string{"MISS", "HIT", "STALE"} {
			if !seen[s] {
				t.Errorf("no %s response was checked", s)
			}
		}
	})
}

// The control headers override the Config per response; malformed,
// negative and overflowing values are ignored.
func TestTTLHeaderValues(t *testing.T) {
	cases := []struct {
		value string
		fresh time.Duration // still fresh just before this
	}{
		{"5", 5 * time.Second},
		{" 7 ", 7 * time.Second},
		{"1500ms", 1500 * time.Millisecond},
		{"0", 0},
		{"-5", 60 * time.Second},
		{"abc", 60 * time.Second},
		{"99999999999999999999", 60 * time.Second},
		{"9223372036854775807", 60 * time.Second},
		{"-1s", 60 * time.Second},
		{"", 60 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
					w.Header().Set(microcache.HeaderTTL, tc.value)
					io.WriteString(w, "ok")
				}}
				h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
				get(t, h, "/")
				if tc.fresh > 0 {
					time.Sleep(tc.fresh - time.Millisecond)
					if s := state(get(t, h, "/")); s != "HIT" {
						t.Errorf("before %v: %s, want HIT", tc.fresh, s)
					}
				}
				time.Sleep(time.Millisecond)
				if s := state(get(t, h, "/")); s != "MISS" {
					t.Errorf("at %v: %s, want MISS", tc.fresh, s)
				}
			})
		})
	}
}

func TestNocacheConfigIsOptIn(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Path == "/opt-in" {
			w.Header().Set(microcache.HeaderCache, "1")
		}
		io.WriteString(w, "call "+itoa(n))
	}}
	h := newCache(t, microcache.Config{Nocache: true, TTL: time.Minute, Exposed: true}).Middleware(be)
	get(t, h, "/plain")
	if s := state(get(t, h, "/plain")); s != "MISS" {
		t.Errorf("plain response with Nocache: %s, want MISS", s)
	}
	get(t, h, "/opt-in")
	if s := state(get(t, h, "/opt-in")); s != "HIT" {
		t.Errorf("microcache-cache: 1 with Nocache: %s, want HIT", s)
	}
}

func TestNocacheHeader(t *testing.T) {
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set(microcache.HeaderNocache, "1")
	}}
	h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
	for range 3 {
		if s := state(get(t, h, "/")); s != "MISS" {
			t.Errorf("state %s, want MISS", s)
		}
	}
	if be.n() != 3 {
		t.Errorf("backend calls = %d, want 3", be.n())
	}
}

// Options are relearned from every backend response: a URL that starts
// saying nocache is never served from the cache again, and one that becomes
// cacheable while passed through starts caching.
func TestOptionsRelearned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nocache := false
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if nocache {
				w.Header().Set(microcache.HeaderNocache, "1")
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: 10 * time.Second, StaleIfError: time.Hour, StaleWhileRevalidate: time.Hour, Exposed: true}).Middleware(be)
		expect(t, get(t, h, "/"), "MISS", "call 1")
		expect(t, get(t, h, "/"), "HIT", "call 1")
		nocache = true
		time.Sleep(11 * time.Second)
		expect(t, get(t, h, "/"), "STALE", "call 1") // refresh learns nocache
		synctest.Wait()
		expect(t, get(t, h, "/"), "MISS", "call 3")
		expect(t, get(t, h, "/"), "MISS", "call 4")
		nocache = false
		expect(t, get(t, h, "/"), "MISS", "call 5") // pass-through learns it is cacheable
		expect(t, get(t, h, "/"), "MISS", "call 6") // stored
		expect(t, get(t, h, "/"), "HIT", "call 6")
	})
}

// A URL known to be uncacheable passes straight through: unbuffered (the
// handler can flush to the client), and without collapsing.
func TestUncacheableKeyPassesThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var inside atomic.Int64
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			w.Header().Set(microcache.HeaderNocache, "1")
			if n == 1 {
				return
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush on a pass-through: %v", err)
			}
			inside.Add(1)
			<-release
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true}).Middleware(be)
		get(t, h, "/")
		for range 3 {
			go get(t, h, "/")
		}
		synctest.Wait()
		if inside.Load() != 3 {
			t.Errorf("%d requests inside the backend at once, want 3", inside.Load())
		}
		close(release)
	})
}

func TestCollapsedForwardingHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			cfg    bool
			header string
			want   int64
		}{
			{false, "", 3},
			{true, "", 1},
			{false, microcache.HeaderCollapsedForwarding, 1},
			{true, microcache.HeaderNoCollapsedForwarding, 3},
		} {
			release := make(chan struct{})
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				if tc.header != "" {
					w.Header().Set(tc.header, "1")
				}
				w.Header().Set(microcache.HeaderTTL, "0")
				if n > 1 {
					<-release
				}
				io.WriteString(w, "ok")
			}}
			h := newUnmanaged(microcache.Config{TTL: time.Minute, CollapsedForwarding: tc.cfg}).Middleware(be)
			get(t, h, "/") // learn the options; TTL 0 keeps it a miss
			for range 3 {
				go get(t, h, "/")
			}
			synctest.Wait()
			close(release)
			synctest.Wait()
			if got := be.n() - 1; got != tc.want {
				t.Errorf("cfg %v header %q: %d backend calls, want %d", tc.cfg, tc.header, got, tc.want)
			}
		}
	})
}

// A backend's own status header (an inner cache's, say) is not stored: with
// Exposed off, neither the miss nor the hit carries it.
func TestBackendStatusHeaderNotReplayed(t *testing.T) {
	var calls atomic.Int64
	c := newCache(t, microcache.Config{TTL: time.Minute})
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set(microcache.HeaderStatus, microcache.StatusHit)
		w.Write([]byte("inner"))
	}))
	for i := range 2 {
		res := get(t, h, "http://example.com/inner")
		if got := res.Header.Values(microcache.HeaderStatus); len(got) != 0 {
			t.Errorf("request %d: backend's %s header replayed: %q", i, microcache.HeaderStatus, got)
		}
		if b := body(t, res); b != "inner" {
			t.Errorf("request %d: body %q", i, b)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("backend calls = %d, want 1 (the second request is a hit)", calls.Load())
	}
}

// A varied URL that the origin made uncacheable and then cacheable again
// does not serve the variants stored before: while it passed through,
// clients saw newer answers, and an old variant served after would take
// them back in time.
func TestRelearnDropsVariantsStoredBefore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		version, noStore := "v1", false
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			w.Header().Set(microcache.HeaderVary, "X-Tenant")
			if noStore {
				w.Header().Set(microcache.HeaderNocache, "1")
			}
			io.WriteString(w, version+" "+r.Header.Get("X-Tenant"))
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true}).Middleware(be)
		expect(t, get(t, h, "/", "X-Tenant", "a"), "MISS", "v1 a")
		expect(t, get(t, h, "/", "X-Tenant", "a"), "HIT", "v1 a")

		noStore = true
		expect(t, get(t, h, "/", "X-Tenant", "b"), "MISS", "v1 b") // learns the URL uncacheable
		version = "v2"
		expect(t, get(t, h, "/", "X-Tenant", "a"), "MISS", "v2 a") // passed through: the client saw v2
		noStore = false
		expect(t, get(t, h, "/", "X-Tenant", "b"), "MISS", "v2 b") // relearns it cacheable
		if res := get(t, h, "/", "X-Tenant", "a"); body(t, res) != "v2 a" {
			t.Errorf("a after the URL was relearned cacheable: %s %q, the variant stored before it passed through", state(res), "v1 a")
		}
	})
}

// purgeErrDriver purges, and reports an error all the same, as a shared
// driver does while its store is unreachable: it purged its local tier
// and queued the rest.
type purgeErrDriver struct{ microcache.Driver }

func (d purgeErrDriver) Purge(ctx context.Context, urlKey string, epoch uint64) error {
	d.Driver.Purge(ctx, urlKey, epoch)
	return errors.New("purge queued")
}

// A URL relearned cacheable while the driver reports its purges as failed
// (a shared driver during an outage) is still relearned: the error is
// reported, and the options are stored under the purge's epoch.
func TestRelearnWhenThePurgeReportsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nocache := true
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if nocache {
				w.Header().Set(microcache.HeaderNocache, "1")
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		c := newCache(t, microcache.Config{TTL: time.Minute, Exposed: true, Driver: purgeErrDriver{microcache.NewDriverLRU(100)}})
		h := c.Middleware(be)
		expect(t, get(t, h, "/"), "MISS", "call 1") // learns it uncacheable
		nocache = false
		expect(t, get(t, h, "/"), "MISS", "call 2") // passes through, relearns it cacheable
		expect(t, get(t, h, "/"), "MISS", "call 3") // stored
		expect(t, get(t, h, "/"), "HIT", "call 3")
		if n := c.Stats().CacheErrors; n != 1 {
			t.Errorf("Stats().CacheErrors = %d, want 1 (the purge's error)", n)
		}
	})
}
