package microcache_test

import (
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// One client walking many stale URLs must not start as many background
// refreshes: at most MaxRevalidations run at once; past that the stale
// object is served without a refresh, and counted.
func TestRevalidationsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const urls, limit = 20, 3
		var inside atomic.Int64
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n > urls {
				inside.Add(1)
				<-release
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		mon := &statsMonitor{}
		c := microcache.New(microcache.Config{
			TTL: time.Second, StaleWhileRevalidate: time.Hour, MaxRevalidations: limit,
			Exposed: true, Monitor: mon,
		})
		h := c.Middleware(be)
		for i := range urls {
			get(t, h, "/"+strconv.Itoa(i))
		}
		time.Sleep(2 * time.Second)
		for i := range urls {
			if res := get(t, h, "/"+strconv.Itoa(i)); state(res) != "STALE" {
				t.Errorf("/%d: %s, want STALE", i, state(res))
			}
		}
		synctest.Wait()
		if got := inside.Load(); got != limit {
			t.Errorf("%d refreshes running at once, want %d", got, limit)
		}
		close(release)
		c.Stop()
		if got := mon.total.RevalidationsSkipped; got != urls-limit {
			t.Errorf("RevalidationsSkipped = %d, want %d", got, urls-limit)
		}
	})
}
