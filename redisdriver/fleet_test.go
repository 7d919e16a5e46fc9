package redisdriver_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// fleet is three replicas of one service, each a Microcache with its own
// redisdriver.Driver, sharing one real Redis server, in front of one
// backend.
type fleet struct {
	t        testing.TB
	server   *redistest.Server
	admin    *redis.Client // the test's own connection
	drivers  []*redisdriver.Driver
	caches   []*microcache.Microcache
	replicas []http.Handler

	calls   atomic.Int64                                          // backend calls for GET
	content atomic.Pointer[string]                                // what the backend answers
	serve   func(w http.ResponseWriter, r *http.Request, n int64) // nil: content
}

func newFleet(t testing.TB, cfg microcache.Config, opts redisdriver.Options) *fleet {
	t.Helper()
	return newFleetWith(t, cfg, opts, (*redistest.Server).Client)
}

// newFleetWith is newFleet with the replicas' clients made by newClient.
func newFleetWith(t testing.TB, cfg microcache.Config, opts redisdriver.Options, newClient func(*redistest.Server) *redis.Client) *fleet {
	t.Helper()
	f := &fleet{t: t, server: redistest.StartT(t)}
	f.admin = client(t, f.server)
	v1 := "v1"
	f.content.Store(&v1)
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("fleet%d:", prefixes.Add(1))
	}
	if opts.OpTimeout == 0 {
		// Generous: these tests check what the fleet does while Redis
		// answers, and a loaded machine (-race) must not open a breaker.
		opts.OpTimeout = time.Second
	}
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			io.WriteString(w, "ok")
			return
		}
		n := f.calls.Add(1)
		if f.serve != nil {
			f.serve(w, r, n)
			return
		}
		io.WriteString(w, *f.content.Load()+" "+r.URL.Path)
	})
	cfg.Exposed = true
	if cfg.TTL == 0 {
		cfg.TTL = time.Minute
	}
	for range 3 {
		c := newClient(f.server)
		t.Cleanup(func() { c.Close() })
		d := newDriver(t, c, opts)
		cfg.Driver = d
		m := microcache.New(cfg)
		t.Cleanup(m.Stop)
		f.drivers = append(f.drivers, d)
		f.caches = append(f.caches, m)
		f.replicas = append(f.replicas, m.Middleware(backend))
	}
	for _, d := range f.drivers {
		waitSubscribed(t, d)
	}
	return f
}

// setContent changes what the backend answers.
func (f *fleet) setContent(s string) { f.content.Store(&s) }

// do sends one request to replica i and returns its Microcache status and
// body.
func (f *fleet) do(i int, method, path string) (status, body string) {
	req := httptest.NewRequest(method, "http://svc.example"+path, nil)
	rec := httptest.NewRecorder()
	f.replicas[i].ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		f.t.Errorf("%s %s on replica %d: status %d", method, path, i, rec.Code)
	}
	return rec.Header().Get(microcache.HeaderStatus), rec.Body.String()
}

func (f *fleet) get(i int, path string) (status, body string) { return f.do(i, http.MethodGet, path) }

func (f *fleet) expect(i int, path, wantStatus, wantBody string) {
	f.t.Helper()
	status, body := f.get(i, path)
	if status != wantStatus || body != wantBody {
		f.t.Errorf("GET %s on replica %d: %s %q, want %s %q", path, i, status, body, wantStatus, wantBody)
	}
}

func (f *fleet) cacheErrors() int {
	n := 0
	for _, m := range f.caches {
		n += m.Stats().CacheErrors
	}
	return n
}

// A response fetched by one replica is a hit on the others: they read it
// from Redis, then from their own L1.
func TestFleetSharedObjects(t *testing.T) {
	f := newFleet(t, microcache.Config{}, redisdriver.Options{})
	f.expect(0, "/a", "MISS", "v1 /a")
	f.expect(1, "/a", "HIT", "v1 /a")
	f.expect(2, "/a", "HIT", "v1 /a")
	for i := range 3 {
		f.expect(i, "/a", "HIT", "v1 /a")
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d backend calls, want 1", n)
	}
	if n := f.cacheErrors(); n != 0 {
		t.Errorf("%d cache errors, want 0", n)
	}
}

// Thirty concurrent cold requests spread over three replicas make one
// backend call: one replica holds the fetch lease, the others wait for its
// release message and read what it stored.
func TestFleetCollapse(t *testing.T) {
	f := newFleet(t, microcache.Config{CollapsedForwarding: true}, redisdriver.Options{})
	var entered atomic.Int64
	f.serve = func(w http.ResponseWriter, r *http.Request, n int64) {
		// Hold the call until all thirty requests are in the middleware,
		// and a little more so that each has made its lookup and its
		// lease attempt.
		eventually(t, 5*time.Second, "thirty requests in flight", func() bool { return entered.Load() == 30 })
		time.Sleep(50 * time.Millisecond)
		fmt.Fprintf(w, "call %d", n)
	}
	var wg sync.WaitGroup
	bodies := make([]string, 30)
	for i := range 30 {
		wg.Go(func() {
			entered.Add(1)
			_, bodies[i] = f.get(i%3, "/cold")
		})
	}
	wg.Wait()
	for i, b := range bodies {
		if b != "call 1" {
			t.Errorf("request %d: body %q, want call 1", i, b)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d backend calls for 30 cold requests over 3 replicas, want 1", n)
	}
	for i := range 3 {
		f.expect(i, "/cold", "HIT", "call 1")
	}
}

// A POST answered by one replica purges the URL on every replica: a GET
// sent to any of them afterwards gets the new content within 200ms. L1's
// records are trusted for a minute here, so only the pub/sub message can
// make it.
func TestFleetPurgePropagation(t *testing.T) {
	f := newFleet(t, microcache.Config{}, redisdriver.Options{MaxOptionsAge: time.Minute})
	f.expect(0, "/p", "MISS", "v1 /p")
	for i := range 3 {
		f.expect(i, "/p", "HIT", "v1 /p")
	}
	f.setContent("v2")
	f.do(1, http.MethodPost, "/p")
	answered := time.Now()
	f.expect(1, "/p", "MISS", "v2 /p") // the purging replica at once
	for _, i := range []int{0, 2} {
		eventually(t, 200*time.Millisecond-time.Since(answered), fmt.Sprintf("new content on replica %d", i), func() bool {
			_, body := f.get(i, "/p")
			return body == "v2 /p"
		})
	}
	t.Logf("purge reached every replica %v after the POST's answer", time.Since(answered))
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d backend calls, want 2 (v1 once, v2 once)", n)
	}
}

// A purge on one replica that lands while another replica's backend call
// for the URL runs wins: that call's answer goes to its client but is not
// stored, and every replica then serves the new content.
func TestFleetPurgeBeatsMiss(t *testing.T) {
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("warm=%v", warm), func(t *testing.T) {
			f := newFleet(t, microcache.Config{TTL: time.Minute}, redisdriver.Options{})
			inCall := make(chan struct{})
			release := make(chan struct{})
			var hold atomic.Bool
			f.serve = func(w http.ResponseWriter, r *http.Request, n int64) {
				content := *f.content.Load()
				if hold.CompareAndSwap(true, false) {
					close(inCall)
					<-release
				}
				io.WriteString(w, content)
			}
			if warm {
				// The URL has options and an epoch; its object is purged
				// so that the next GET is a miss under that epoch.
				f.expect(0, "/race", "MISS", "v1")
				f.setContent("v1b")
				f.purgeAndWait(2, "/race")
			}
			f.setContent("old")
			hold.Store(true)
			done := make(chan string)
			go func() {
				_, body := f.get(0, "/race")
				done <- body
			}()
			<-inCall // replica 0's backend call has read "old"
			f.setContent("new")
			f.do(1, http.MethodPost, "/race")
			close(release)
			if body := <-done; body != "old" {
				t.Errorf("the racing GET got %q, want old", body)
			}
			for i := range 3 {
				_, body := f.get(i, "/race")
				if body != "new" {
					t.Errorf("replica %d serves %q after the purge, want new", i, body)
				}
			}
		})
	}
}

// purgeAndWait POSTs to path on replica i and waits until the other
// replicas have received the purge.
func (f *fleet) purgeAndWait(i int, path string) {
	f.t.Helper()
	var seen atomic.Int64
	for j, d := range f.drivers {
		if j != i {
			stop := d.WatchPurges(func(microcache.PurgeEvent) { seen.Add(1) })
			defer stop()
		}
	}
	f.do(i, http.MethodPost, path)
	eventually(f.t, time.Second, "purge received", func() bool { return seen.Load() == 2 })
}

// A purge by tag is not driven by the middleware; it propagates like a
// URL purge. Checked on the drivers directly.
func TestFleetPurgeTag(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	opts := redisdriver.Options{Prefix: "tag:", MaxOptionsAge: time.Minute, OpTimeout: time.Second}
	a, b := newDriver(t, c, opts), newDriver(t, c, opts)
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	ctx := context.Background()
	e := uint64(42)
	obj := &microcache.Object{Status: 200, Body: []byte("x"), Size: 1, Epoch: e, Date: time.Now(), Expires: time.Now().Add(time.Hour)}
	if ok, err := a.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: e}, ObjectKey: "u", Object: obj, Tags: []string{"t"}}); !ok || err != nil {
		t.Fatalf("Store: %v %v", ok, err)
	}
	if rec, _ := b.Lookup(ctx, "u"); rec.Epoch != e || rec.Object == nil {
		t.Fatalf("replica b: Lookup = epoch %d object %v, want %d and the object", rec.Epoch, rec.Object != nil, e)
	}
	events := make(chan microcache.PurgeEvent, 4)
	stop := b.WatchPurges(func(ev microcache.PurgeEvent) { events <- ev })
	defer stop()
	if err := a.PurgeTag(ctx, "t", 43); err != nil {
		t.Fatal(err)
	}
	eventually(t, 200*time.Millisecond, "tag purge on replica b", func() bool {
		rec, _ := b.Lookup(ctx, "u")
		return rec.Epoch == 43
	})
	select {
	case ev := <-events:
		if ev.Tag != "t" || ev.Epoch != 43 {
			t.Errorf("WatchPurges got %+v, want the tag t with epoch 43", ev)
		}
	case <-time.After(time.Second):
		t.Error("WatchPurges reported nothing")
	}
}

// keysOf returns the keys under prefix.
func keysOf(t *testing.T, c *redis.Client, prefix string) []string {
	keys, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// A purge published while a replica's subscription is down is lost for
// it; the reconnect withdraws the trust of its whole L1, so it reads
// Redis again, although L1 records are trusted for a minute here.
func TestFleetResubscribeWithdrawsTrust(t *testing.T) {
	f := newFleet(t, microcache.Config{}, redisdriver.Options{MaxOptionsAge: time.Minute, BreakerCooldown: 50 * time.Millisecond})
	f.expect(0, "/s", "MISS", "v1 /s")
	f.expect(1, "/s", "HIT", "v1 /s")
	f.expect(1, "/s", "HIT", "v1 /s")
	ctx := context.Background()
	before := f.drivers[1].Stats().Subscriptions
	if err := f.admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	f.setContent("v2")
	f.do(0, http.MethodPost, "/s") // replica 1 may miss its message
	// Until replica 1 notices the lost connection (at once here; on a
	// silent network failure, at its next ping), it may serve its L1:
	// that window is what MaxOptionsAge bounds.
	eventually(t, 5*time.Second, "replica 1 subscribed again", func() bool {
		return f.drivers[1].Stats().Subscriptions > before
	})
	f.expect(1, "/s", "MISS", "v2 /s")
}

// Once an object is stale (within stale-while-revalidate), every replica
// answers STALE at once and one replica, the lease holder, refreshes it in
// the background; then every replica serves the refreshed object.
func TestFleetOneRefresh(t *testing.T) {
	f := newFleet(t, microcache.Config{TTL: 100 * time.Millisecond, StaleWhileRevalidate: time.Minute, CollapsedForwarding: true}, redisdriver.Options{})
	var refreshing atomic.Bool
	f.serve = func(w http.ResponseWriter, r *http.Request, n int64) {
		if n > 1 {
			refreshing.Store(true)
			time.Sleep(100 * time.Millisecond)         // a slow refresh: every replica asks meanwhile
			w.Header().Set(microcache.HeaderTTL, "1m") // and fresh until the test ends
		}
		fmt.Fprintf(w, "call %d", n)
	}
	f.expect(0, "/r", "MISS", "call 1")
	f.expect(1, "/r", "HIT", "call 1")
	f.expect(2, "/r", "HIT", "call 1")
	eventually(t, 2*time.Second, "the object stale", func() bool {
		st, _ := f.get(0, "/r")
		return st == "STALE"
	})
	eventually(t, time.Second, "the refresh under way", refreshing.Load)
	for i := range 3 {
		for range 3 {
			if st, body := f.get(i, "/r"); body != "call 1" && body != "call 2" {
				t.Errorf("replica %d: %s %q during the refresh", i, st, body)
			}
		}
	}
	for i := range 3 {
		eventually(t, 2*time.Second, fmt.Sprintf("replica %d serves the refresh", i), func() bool {
			_, body := f.get(i, "/r")
			return body == "call 2"
		})
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d backend calls, want 2 (the fetch, one refresh)", n)
	}
}
