package microcache_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/drivertest"
)

// leasingDriver is a driver shared by several Microcaches in one process,
// standing in for a shared store (Redis) that elects one fetcher per
// object: records are kept as bytes, and leases are channels closed on
// release or expiry.
type leasingDriver struct {
	*drivertest.EncodingDriver
	mu     sync.Mutex
	leases map[string]chan struct{}
	taken  int
}

var _ microcache.DriverLeaser = (*leasingDriver)(nil)

func newLeasingDriver() *leasingDriver {
	return &leasingDriver{EncodingDriver: drivertest.NewEncodingDriver(), leases: map[string]chan struct{}{}}
}

func (d *leasingDriver) Lease(ctx context.Context, key string, ttl time.Duration) (func(), bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, held := d.leases[key]; held {
		return nil, false, nil
	}
	d.taken++
	ch := make(chan struct{})
	d.leases[key] = ch
	var once sync.Once
	release := func() {
		once.Do(func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.leases[key] == ch {
				delete(d.leases, key)
			}
			close(ch)
		})
	}
	time.AfterFunc(ttl, release) // a dead holder's lease expires
	return release, true, nil
}

func (d *leasingDriver) Wait(ctx context.Context, key string) error {
	d.mu.Lock()
	ch, held := d.leases[key]
	d.mu.Unlock()
	if !held {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Three processes sharing one store through a DriverLeaser make one
// origin call for thirty concurrent cold requests spread over them, and
// the other processes answer from what the first one stored.
func TestFleetCollapsedForwarding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := newLeasingDriver()
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-release
			io.WriteString(w, "call "+itoa(n))
		}}
		var replicas []http.Handler
		for range 3 {
			c := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true, Driver: shared})
			replicas = append(replicas, c.Middleware(be))
		}
		var wg sync.WaitGroup
		bodies := make(chan string, 30)
		for i := range 30 {
			wg.Go(func() {
				res := get(t, replicas[i%3], "/cold")
				bodies <- body(t, res)
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		close(bodies)
		for b := range bodies {
			if b != "call 1" {
				t.Errorf("body %q, want every replica to serve call 1", b)
			}
		}
		if be.n() != 1 {
			t.Errorf("%d origin calls for 30 cold requests over 3 replicas, want 1", be.n())
		}
		for _, h := range replicas {
			expect(t, get(t, h, "/cold"), "HIT", "call 1")
		}
	})
}

// deadProcess is a replica's view of a shared driver whose process dies
// holding its leases: it never releases them.
type deadProcess struct{ *leasingDriver }

func (d deadProcess) Lease(ctx context.Context, key string, ttl time.Duration) (func(), bool, error) {
	_, held, err := d.leasingDriver.Lease(ctx, key, ttl)
	return func() {}, held, err
}

// A leaseholder that never stores (its process died) holds the others only
// until its lease expires: then they fetch themselves.
func TestFleetDeadLeaseholder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := newLeasingDriver()
		hang := make(chan struct{})
		defer close(hang)
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 1 {
				<-hang // the dying process's call never ends
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		cfg := microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true}
		cfg.Driver = deadProcess{shared}
		dying := newUnmanaged(cfg).Middleware(be)
		cfg.Driver = shared
		alive := newCache(t, cfg).Middleware(be)
		go get(t, dying, "/a")
		synctest.Wait() // the dying process holds the lease, in the backend
		start := time.Now()
		expect(t, get(t, alive, "/a"), "MISS", "call 2")
		if waited := time.Since(start); waited != microcache.DefaultLeaseTTL {
			t.Errorf("waited %v for the dead leaseholder, want its lease's %v", waited, microcache.DefaultLeaseTTL)
		}
		expect(t, get(t, alive, "/a"), "HIT", "call 2")
	})
}
