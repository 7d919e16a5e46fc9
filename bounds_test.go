package microcache_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
		c := newUnmanaged(microcache.Config{
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

// While a handler abandoned after its Timeout still runs, a request for the
// same object gets the stale copy when one is allowed, at once, rather than
// starting another handler.
func TestAbandonedHandlerServesStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 2 {
				<-release // ignores r.Context()
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		h := newCache(t, microcache.Config{TTL: time.Second, StaleIfError: time.Hour, Timeout: time.Second, Exposed: true}).Middleware(be)
		expect(t, get(t, h, "/"), "MISS", "call 1")
		time.Sleep(2 * time.Second)
		expect(t, get(t, h, "/"), "STALE", "call 1") // call 2 times out
		start := time.Now()
		for range 5 {
			expect(t, get(t, h, "/"), "STALE", "call 1")
		}
		if time.Since(start) != 0 || be.n() != 2 {
			t.Errorf("waited %v, %d backend calls; want stale at once and no new call", time.Since(start), be.n())
		}
		close(release)
		synctest.Wait()
		expect(t, get(t, h, "/"), "MISS", "call 3")
	})
}

// Requests collapsed onto a call whose response starts streaming (it
// flushes, like server-sent events) are released at once, each to make its
// own call, instead of waiting for the whole stream; and Timeout does not
// cut off a response that streams.
func TestCollapsedWaitersReleasedWhenLeaderStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		end := make(chan struct{})
		var cancelled atomic.Int64
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			io.WriteString(w, "event "+itoa(n)+"\n")
			http.NewResponseController(w).Flush()
			select {
			case <-end:
			case <-r.Context().Done():
				cancelled.Add(1)
			}
		}}
		h := newCache(t, microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Timeout: time.Second, Exposed: true}).Middleware(be)
		streams := make(chan string, 3)
		for range 3 {
			go func() {
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/events", nil))
				streams <- rr.Body.String()
			}()
		}
		synctest.Wait()
		if be.n() != 3 {
			t.Errorf("%d streams open, want 3: collapsed requests waited for the first stream", be.n())
		}
		time.Sleep(time.Minute) // far past Timeout
		synctest.Wait()
		if cancelled.Load() != 0 {
			t.Errorf("%d streams cancelled by Timeout", cancelled.Load())
		}
		close(end)
		for range 3 {
			if s := <-streams; s == "" {
				t.Error("a stream's client got nothing")
			}
		}
	})
}

// Background refreshes do not pile up behind a handler abandoned after its
// Timeout either: while it still runs, a stale hit serves stale and starts
// no other refresh (ten stale hits a Timeout apart make one handler).
func TestRevalidationsDoNotPileUpBehindAStuckHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var running atomic.Int64
		unblock := make(chan struct{})
		be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n > 1 {
				running.Add(1)
				<-unblock // ignores its context
				running.Add(-1)
			}
			io.WriteString(w, "call "+itoa(n))
		}}
		c := newUnmanaged(microcache.Config{TTL: time.Second, StaleWhileRevalidate: time.Hour, Timeout: time.Second, Exposed: true})
		h := c.Middleware(be)
		expect(t, get(t, h, "/"), "MISS", "call 1")
		time.Sleep(2 * time.Second)
		for range 10 {
			expect(t, get(t, h, "/"), "STALE", "call 1")
			time.Sleep(1100 * time.Millisecond)
		}
		synctest.Wait()
		if got := running.Load(); got != 1 {
			t.Errorf("%d handlers running for one object, want 1", got)
		}
		close(unblock)
		c.Stop()
	})
}

// A collapsed leader's call runs detached from its client while others may
// wait for it; once it streams nobody else does, so the client's leaving
// cancels it again: an event-stream handler waiting for that ends.
func TestStreamingLeaderCancelledWhenItsClientLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ended := make(chan struct{})
		be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(ended)
			io.WriteString(w, "data: hi\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(time.Hour):
			}
		})
		h := newCache(t, microcache.Config{TTL: time.Minute, Timeout: time.Second, CollapsedForwarding: true}).Middleware(be)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/events", nil).WithContext(ctx))
		}()
		synctest.Wait()
		start := time.Now()
		cancel()
		<-ended
		<-done
		if waited := time.Since(start); waited != 0 {
			t.Errorf("the stream's handler ran %v after its client left", waited)
		}
	})
}
