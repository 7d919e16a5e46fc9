package redisdriver_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/drivertest"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
)

// On a Redis Cluster of three primaries the driver passes the conformance
// suite: one URL's records share a slot, and tags take the Cluster path.
func TestClusterConformance(t *testing.T) {
	cl := redistest.StartClusterT(t)
	c := cl.Client()
	t.Cleanup(func() { c.Close() })
	drivertest.TestDriver(t, func(t *testing.T) microcache.Driver {
		d := newDriver(t, c, redisdriver.Options{OpTimeout: time.Second})
		waitSubscribed(t, d)
		return d
	})
}

// Three replicas on a Cluster share objects and purges, and collapse
// their misses.
func TestClusterFleet(t *testing.T) {
	cl := redistest.StartClusterT(t)
	var calls atomic.Int64
	var version atomic.Int64
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			version.Add(1)
			return
		}
		calls.Add(1)
		fmt.Fprintf(w, "v%d %s", version.Load(), r.URL.Path)
	})
	var replicas []http.Handler
	for range 3 {
		c := cl.Client()
		t.Cleanup(func() { c.Close() })
		d := newDriver(t, c, redisdriver.Options{Prefix: "cf:", OpTimeout: time.Second})
		waitSubscribed(t, d)
		m := microcache.New(microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Exposed: true, Driver: d})
		t.Cleanup(m.Stop)
		replicas = append(replicas, m.Middleware(backend))
	}
	do := func(i int, method, path string) (string, string) {
		rec := httptest.NewRecorder()
		replicas[i].ServeHTTP(rec, httptest.NewRequest(method, "http://svc.example"+path, nil))
		return rec.Header().Get(microcache.HeaderStatus), rec.Body.String()
	}
	for i, want := range []string{"MISS", "HIT", "HIT"} {
		if st, body := do(i, http.MethodGet, "/c"); st != want || body != "v0 /c" {
			t.Errorf("replica %d: %s %q, want %s v0 /c", i, st, body, want)
		}
	}
	do(1, http.MethodPost, "/c")
	answered := time.Now()
	for _, i := range []int{0, 2} {
		eventually(t, 200*time.Millisecond-time.Since(answered), "purge on the cluster", func() bool {
			_, body := do(i, http.MethodGet, "/c")
			return body == "v1 /c"
		})
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d backend calls, want 2", n)
	}
}
