package redisdriver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// counter is a go-redis hook that counts the commands a client sends (one
// round trip each: the driver uses no pipelines).
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.n[cmd.Name()]++
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		c.n["pipeline"]++
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// take returns the counts since the last call.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = make(map[string]int)
	return n
}

// What each request costs in Redis round trips: an L1 hit none, an L2
// hit one MGET, a purge one script, a miss with collapsing a lookup, a
// lease, a store, and a release in the background.
func TestRoundTrips(t *testing.T) {
	s := redistest.StartT(t)
	opts := redisdriver.Options{Prefix: "rt:", OpTimeout: time.Second, MaxOptionsAge: time.Hour}
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("body")) })
	var replicas []http.Handler
	var counters []*counter
	for range 2 {
		c := client(t, s)
		cnt := &counter{n: make(map[string]int)}
		c.AddHook(cnt)
		d := newDriver(t, c, opts)
		waitSubscribed(t, d)
		m := microcache.New(microcache.Config{TTL: time.Minute, CollapsedForwarding: true, Driver: d})
		t.Cleanup(m.Stop)
		replicas = append(replicas, m.Middleware(backend))
		counters = append(counters, cnt)
	}
	do := func(i int, method, path string) {
		replicas[i].ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "http://svc.example"+path, nil))
	}
	check := func(what string, i int, want map[string]int) {
		t.Helper()
		wantTotal := 0
		for _, v := range want {
			wantTotal += v
		}
		// The release runs in the background: wait for the count.
		deadline := time.Now().Add(time.Second)
		for {
			counters[i].mu.Lock()
			total := 0
			for _, v := range counters[i].n {
				total += v
			}
			counters[i].mu.Unlock()
			if total >= wantTotal || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // nothing more comes
		got := counters[i].take()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", what, got, want)
			return
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %v, want %v", what, got, want)
				return
			}
		}
	}
	// Scripts are loaded on first use (NOSCRIPT, then EVAL), connections
	// opened on first use (HELLO): warm up.
	do(0, http.MethodGet, "/warm")
	do(0, http.MethodPost, "/warm")
	do(0, http.MethodGet, "/warm")
	do(1, http.MethodGet, "/warm") // and open replica 1's connection
	time.Sleep(50 * time.Millisecond)
	counters[0].take()
	counters[1].take()

	do(0, http.MethodGet, "/rt")
	check("miss", 0, map[string]int{"mget": 1, "evalsha": 3}) // lookup, lease (a script), store, release
	do(1, http.MethodGet, "/rt")
	check("L2 hit on another replica", 1, map[string]int{"mget": 1})
	do(1, http.MethodGet, "/rt")
	check("L1 hit", 1, map[string]int{})
	do(0, http.MethodPost, "/rt")
	check("purge", 0, map[string]int{"evalsha": 1})
}
