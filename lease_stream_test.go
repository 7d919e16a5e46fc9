package microcache_test

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/httpimp/microcache"
)

// A response that streams (an SSE connection, which may last for hours)
// releases its fetch lease when it starts streaming, as it releases its
// flight's waiters: the lease would otherwise make every request for the
// URL that comes meanwhile, in every process of the fleet, wait for the
// lease's time to live before it makes its own call.
func TestLeaseReleasedWhenTheResponseStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newLeasingDriver()
		end := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			io.WriteString(w, "event "+itoa(n))
			http.NewResponseController(w).Flush()
			if n == 1 {
				<-end // the first stream stays open
			}
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Driver: d}).Middleware(be)
		other := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Driver: d}).Middleware(be)
		var wg sync.WaitGroup
		wg.Go(func() { get(t, h, "/events") })
		synctest.Wait() // the first stream is open
		for _, c := range []struct {
			name string
			h    http.Handler
		}{{"another process", other}, {"same process", h}} {
			name, h := c.name, c.h
			start := time.Now()
			if b := body(t, get(t, h, "/events")); b == "" {
				t.Errorf("%s: empty answer", name)
			}
			if waited := time.Since(start); waited > 0 {
				t.Errorf("%s: a request that came while a stream was open waited %v for its lease (DefaultLeaseTTL %v)", name, waited, microcache.DefaultLeaseTTL)
			}
		}
		close(end)
		wg.Wait()
	})
}
