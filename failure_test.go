package microcache_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

var errInjected = errors.New("injected fault")

// faultyDriver wraps a real driver and fails the operations named in fail,
// or corrupts the objects it returns.
type faultyDriver struct {
	microcache.Driver
	fail    atomic.Value // string: "lookup", "object", "store", "purge", "corrupt", ""
	corrupt func(*microcache.Object) *microcache.Object
}

func (d *faultyDriver) is(op string) bool { v, _ := d.fail.Load().(string); return v == op }

func (d *faultyDriver) Lookup(ctx context.Context, key string) (microcache.Record, error) {
	if d.is("lookup") {
		return microcache.Record{}, errInjected
	}
	rec, err := d.Driver.Lookup(ctx, key)
	if rec.Object != nil && d.is("corrupt") {
		rec.Object = d.corrupt(rec.Object)
	}
	return rec, err
}

func (d *faultyDriver) Object(ctx context.Context, key string) (*microcache.Object, error) {
	if d.is("object") {
		return nil, errInjected
	}
	obj, err := d.Driver.Object(ctx, key)
	if obj != nil && d.is("corrupt") {
		obj = d.corrupt(obj)
	}
	return obj, err
}

func (d *faultyDriver) Store(ctx context.Context, s *microcache.Store) (bool, error) {
	if d.is("store") {
		return false, errInjected
	}
	return d.Driver.Store(ctx, s)
}

func (d *faultyDriver) Purge(ctx context.Context, key string, epoch uint64) error {
	if d.is("purge") {
		return errInjected
	}
	return d.Driver.Purge(ctx, key, epoch)
}

// A failing driver never fails a request: the backend answers, nothing is
// served from the cache, and the failure is counted and reported.
func TestDriverFaults(t *testing.T) {
	for _, op := range []string{"lookup", "object", "store"} {
		t.Run(op, func(t *testing.T) {
			mon := &statsMonitor{}
			d := &faultyDriver{Driver: microcache.NewDriverLRU(10)}
			be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
				if r.URL.Path == "/varied" {
					w.Header().Set("Vary", "X-V")
				}
				w.Write([]byte("call " + itoa(n)))
			}}
			c := newUnmanaged(microcache.Config{TTL: time.Minute, Exposed: true, Driver: d, Monitor: mon})
			h := c.Middleware(be)
			target := "/"
			if op == "object" {
				target = "/varied" // only a varied URL reads its object with Object
			}
			get(t, h, target) // stored while the driver works
			if op == "store" {
				serve(t, h, http.MethodPost, target) // purge, so the next GET must store
			}
			d.fail.Store(op)
			for range 2 {
				res := get(t, h, target)
				if res.StatusCode != 200 || state(res) != "MISS" {
					t.Errorf("status %d %s, want 200 MISS from the backend", res.StatusCode, state(res))
				}
			}
			d.fail.Store("purge")
			if res := serve(t, h, http.MethodPost, target); res.StatusCode != 200 {
				t.Errorf("POST with a failing purge: status %d, want the backend's 200", res.StatusCode)
			}
			c.Stop()
			if mon.total.CacheErrors < 3 || mon.total.Errors != 0 {
				t.Errorf("stats %+v: want a cache error per failing call, no backend errors", mon.total)
			}
			for _, k := range mon.kinds() {
				if k != microcache.ErrorDriver {
					t.Errorf("event kind %v, want driver", k)
				}
			}
		})
	}
}

// Corrupt stored data is a miss, never a panic and never garbage to a
// client.
func TestCorruptObjects(t *testing.T) {
	cases := map[string]func(*microcache.Object) *microcache.Object{
		"garbage compressed body": func(o *microcache.Object) *microcache.Object {
			c := *o
			c.Body = []byte("\xff\x00garbage")
			return &c
		},
		"size mismatch": func(o *microcache.Object) *microcache.Object {
			c := *o
			c.Size++
			return &c
		},
		"size past MaxObjectSize": func(o *microcache.Object) *microcache.Object {
			c := *o
			c.Size = microcache.DefaultMaxObjectSize + 1
			return &c
		},
		"bad status": func(o *microcache.Object) *microcache.Object {
			c := *o
			c.Status = 0
			return &c
		},
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			mon := &statsMonitor{}
			d := &faultyDriver{Driver: microcache.NewDriverLRU(10), corrupt: corrupt}
			be := &backend{}
			c := newUnmanaged(microcache.Config{TTL: time.Minute, Exposed: true, Driver: d, Monitor: mon, Compressor: microcache.CompressorSnappy{}})
			h := c.Middleware(be)
			get(t, h, "/")
			d.fail.Store("corrupt")
			expect(t, get(t, h, "/"), "MISS", "call 2")
			c.Stop()
			if mon.total.CacheErrors != 1 {
				t.Errorf("cache errors = %d, want 1", mon.total.CacheErrors)
			}
		})
	}
}

type failingCompressor struct{ microcache.CompressorSnappy }

func (failingCompressor) Compress(dst, src []byte) ([]byte, error) { return dst, errInjected }

// A compressor error serves the response unstored.
func TestCompressorFault(t *testing.T) {
	mon := &statsMonitor{}
	be := &backend{}
	c := newUnmanaged(microcache.Config{TTL: time.Minute, Exposed: true, Monitor: mon, Compressor: failingCompressor{}})
	h := c.Middleware(be)
	expect(t, get(t, h, "/"), "MISS", "call 1")
	expect(t, get(t, h, "/"), "MISS", "call 2")
	c.Stop()
	if mon.total.CacheErrors != 2 {
		t.Errorf("cache errors = %d, want 2", mon.total.CacheErrors)
	}
}

// ErrorMonitor receives backend failures with the request, the response
// and the error; timeouts are their own kind.
func TestErrorEvents(t *testing.T) {
	mon := &statsMonitor{}
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		switch r.URL.Path {
		case "/500":
			w.Header().Set("X-Why", "db down")
			w.WriteHeader(500)
		case "/slow":
			<-r.Context().Done()
		case "/panic":
			panic(errInjected)
		}
	}}
	c := newUnmanaged(microcache.Config{TTL: time.Minute, Timeout: 50 * time.Millisecond, Monitor: mon})
	h := c.Middleware(be)
	get(t, h, "/500")
	get(t, h, "/slow")
	serveRecover(h, "/panic")
	c.Stop()
	if len(mon.events) != 3 {
		t.Fatalf("events: %+v", mon.events)
	}
	e500, slow, pnc := mon.events[0], mon.events[1], mon.events[2]
	if e500.Kind != microcache.ErrorBackend || e500.Status != 500 || e500.Header.Get("X-Why") != "db down" || e500.Request.URL.Path != "/500" {
		t.Errorf("5xx event %+v", e500)
	}
	if slow.Kind != microcache.ErrorTimeout || slow.Request.URL.Path != "/slow" || slow.Err == nil {
		t.Errorf("timeout event %+v", slow)
	}
	if pnc.Kind != microcache.ErrorPanic || !errors.Is(pnc.Err, errInjected) {
		t.Errorf("panic event %+v", pnc)
	}
	if mon.total.Errors != 3 || mon.total.Timeouts != 1 || mon.total.Panics != 1 {
		t.Errorf("stats %+v", mon.total)
	}
}

// A handler that panics after its Timeout has no one waiting for it: the
// panic is still reported.
func TestPanicAfterTimeoutIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			<-release
			panic("late")
		}}
		mon := &statsMonitor{}
		c := newUnmanaged(microcache.Config{TTL: time.Minute, Timeout: time.Second, Monitor: mon})
		if res := get(t, c.Middleware(be), "/"); res.StatusCode != 503 {
			t.Errorf("status %d, want 503", res.StatusCode)
		}
		close(release)
		c.Stop()
		if mon.total.Timeouts != 1 || mon.total.Panics != 1 {
			t.Errorf("stats %+v, want the timeout and the late panic", mon.total)
		}
	})
}
