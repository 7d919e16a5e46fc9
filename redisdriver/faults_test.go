package redisdriver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// maxAdded is the most a Redis fault may add to a request's latency.
const maxAdded = 500 * time.Millisecond

// load sends GETs to every replica, three at a time, until stop is
// called, and checks each answer: status 200, the backend's content (never
// anything corrupt), within maxAdded. Cold paths (never requested before)
// are mixed in so that stores and leases are tried during the fault.
type load struct {
	f       *fleet
	stop    chan struct{}
	wg      sync.WaitGroup
	n       atomic.Int64
	slowest atomic.Int64
}

func (f *fleet) startLoad() *load {
	l := &load{f: f, stop: make(chan struct{})}
	var cold atomic.Int64
	for i := range 3 {
		l.wg.Go(func() {
			tick := time.NewTicker(500 * time.Microsecond) // modest CPU: this machine is shared
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				path := fmt.Sprintf("/f%d", k%4)
				if k%5 == 4 {
					path = fmt.Sprintf("/cold%d", cold.Add(1))
				}
				req := httptest.NewRequest(http.MethodGet, "http://svc.example"+path, nil)
				rec := httptest.NewRecorder()
				start := time.Now()
				f.replicas[i].ServeHTTP(rec, req)
				took := time.Since(start)
				l.n.Add(1)
				for {
					s := l.slowest.Load()
					if int64(took) <= s || l.slowest.CompareAndSwap(s, int64(took)) {
						break
					}
				}
				want := *f.content.Load() + " " + path
				if rec.Code != http.StatusOK || rec.Body.String() != want {
					f.t.Errorf("GET %s on replica %d: %d %q, want 200 %q", path, i, rec.Code, rec.Body.String(), want)
				}
				if took > maxAdded {
					f.t.Errorf("GET %s on replica %d took %v, more than %v", path, i, took, maxAdded)
				}
			}
		})
	}
	return l
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
	l.f.t.Logf("%d requests, slowest %v", l.n.Load(), time.Duration(l.slowest.Load()))
}

// faultFleet is a fleet whose replicas read Redis on nearly every request
// (L1 is trusted for 20ms), warmed up.
func faultFleet(t *testing.T) *fleet {
	return faultFleetWith(t, (*redistest.Server).Client)
}

func faultFleetWith(t *testing.T, newClient func(*redistest.Server) *redis.Client) *fleet {
	f := newFleetWith(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true},
		redisdriver.Options{MaxOptionsAge: 20 * time.Millisecond, BreakerCooldown: 200 * time.Millisecond, OpTimeout: 100 * time.Millisecond}, newClient)
	for k := range 4 {
		for i := range 3 {
			f.get(i, fmt.Sprintf("/f%d", k))
		}
	}
	return f
}

// recovered waits until every driver uses Redis again, with its purge
// subscription in place, and checks that the fleet works as before: a
// purge on one replica reaches the others.
func (f *fleet) recovered() {
	f.t.Helper()
	eventually(f.t, 10*time.Second, "breakers closed and subscriptions back", func() bool {
		for _, d := range f.drivers {
			if !d.Available() || !d.Subscribed() {
				return false
			}
		}
		return true
	})
	f.setContent("after")
	f.do(0, http.MethodPost, "/f0")
	for i := range 3 {
		eventually(f.t, 200*time.Millisecond, fmt.Sprintf("purge after recovery on replica %d", i), func() bool {
			_, body := f.get(i, "/f0")
			return body == "after /f0"
		})
	}
	f.expect(1, "/f0", "HIT", "after /f0")
}

// during runs the load while fault holds, for at least hold, then undoes
// the fault and waits for recovery.
func (f *fleet) during(hold time.Duration, fault, undo func()) {
	f.t.Helper()
	errorsBefore := f.cacheErrors()
	l := f.startLoad()
	fault()
	time.Sleep(hold) // the fault lasts this long, requests flowing
	undo()
	l.end()
	f.t.Logf("%d cache errors counted", f.cacheErrors()-errorsBefore)
	f.recovered()
}

func TestFaultHung(t *testing.T) {
	f := faultFleet(t)
	errs := f.cacheErrors()
	f.during(800*time.Millisecond,
		func() { f.server.Signal(syscall.SIGSTOP) },
		func() { f.server.Signal(syscall.SIGCONT) })
	if f.cacheErrors() == errs {
		t.Error("no cache errors counted while Redis was hung")
	}
	for i, d := range f.drivers {
		if st := d.Stats(); st.Trips == 0 {
			t.Errorf("replica %d: the breaker never opened (%+v)", i, st)
		}
	}
}

// With a client left at go-redis's defaults (5s timeouts, 3 retries, no
// ContextTimeoutEnabled), the driver still stops waiting at its own
// deadline.
func TestFaultHungDefaultClient(t *testing.T) {
	f := faultFleetWith(t, func(s *redistest.Server) *redis.Client {
		return redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket})
	})
	errs := f.cacheErrors()
	f.during(800*time.Millisecond,
		func() { f.server.Signal(syscall.SIGSTOP) },
		func() { f.server.Signal(syscall.SIGCONT) })
	if f.cacheErrors() == errs {
		t.Error("no cache errors counted while Redis was hung")
	}
}

// A slow server (busy 40ms at a time, so that calls wait up to about
// twice that) still answers every request within bounds.
func TestFaultSlow(t *testing.T) {
	f := faultFleet(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	f.during(600*time.Millisecond,
		func() {
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					f.admin.Do(context.Background(), "DEBUG", "SLEEP", "0.04")
				}
			}()
		},
		func() {
			close(stop)
			<-done
		})
}

func TestFaultKilledAndRestarted(t *testing.T) {
	f := faultFleet(t)
	errs := f.cacheErrors()
	f.during(500*time.Millisecond,
		func() { f.server.Kill() },
		func() {
			if err := f.server.Restart(); err != nil {
				t.Fatal(err)
			}
		})
	if f.cacheErrors() == errs {
		t.Error("no cache errors counted while Redis was down")
	}
}

func TestFaultFlushed(t *testing.T) {
	f := faultFleet(t)
	f.during(300*time.Millisecond,
		func() {
			if err := f.admin.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		},
		func() {})
}

func TestFaultClientPause(t *testing.T) {
	f := faultFleet(t)
	errs := f.cacheErrors()
	f.during(800*time.Millisecond,
		func() {
			if err := f.admin.Do(context.Background(), "CLIENT", "PAUSE", "800", "ALL").Err(); err != nil {
				t.Fatal(err)
			}
		},
		func() {})
	if f.cacheErrors() == errs {
		t.Error("no cache errors counted while clients were paused")
	}
}

func TestFaultOutOfMemory(t *testing.T) {
	f := faultFleet(t)
	ctx := context.Background()
	errs := f.cacheErrors()
	f.during(500*time.Millisecond,
		func() {
			f.admin.ConfigSet(ctx, "maxmemory-policy", "noeviction")
			if err := f.admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
				t.Fatal(err)
			}
		},
		func() { f.admin.ConfigSet(ctx, "maxmemory", "0") })
	if f.cacheErrors() == errs {
		t.Error("no cache errors counted while Redis refused writes")
	}
}

// Garbage written into every key of the fleet is never served: each
// record that fails to decode is a miss, counted, and deleted, so that
// the next response is stored again.
func TestFaultCorrupt(t *testing.T) {
	f := faultFleet(t)
	ctx := context.Background()
	errs := f.cacheErrors()
	prefix := fmt.Sprintf("fleet%d:", prefixes.Load())
	f.during(300*time.Millisecond,
		func() {
			keys := keysOf(t, f.admin, prefix)
			if len(keys) == 0 {
				t.Fatal("no keys to corrupt")
			}
			for i, k := range keys {
				garbage := []string{"garbage", "", "R\x00\x00", "O\x02\xff"}[i%4]
				f.admin.Set(ctx, k, garbage, redis.KeepTTL)
			}
		},
		func() {})
	if f.cacheErrors() == errs {
		t.Error("no cache errors counted for corrupt records")
	}
}

// A purge made while Redis is hung reaches the replica's own L1 at once,
// is reported as an error, and is written to Redis (and so reaches the
// other replicas) once it answers again.
func TestFaultPurgeDuringOutage(t *testing.T) {
	f := faultFleet(t)
	f.server.Signal(syscall.SIGSTOP)
	f.setContent("v2")
	errs := f.cacheErrors()
	start := time.Now()
	f.do(0, http.MethodPost, "/f1")
	if took := time.Since(start); took > maxAdded {
		t.Errorf("POST took %v while Redis was hung", took)
	}
	if f.cacheErrors() == errs {
		t.Error("the purge that did not reach Redis was not reported")
	}
	f.expect(0, "/f1", "MISS", "v2 /f1") // the purging replica at once
	f.server.Signal(syscall.SIGCONT)
	for i := range 3 {
		eventually(t, 2*time.Second, fmt.Sprintf("purge replayed, on replica %d", i), func() bool {
			_, body := f.get(i, "/f1")
			return body == "v2 /f1"
		})
	}
}
