package redisdriver_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
	"github.com/redis/go-redis/v9"
)

var prefixes atomic.Int64

// newDriver returns a driver on s with a prefix of its own, closed with
// the test.
func newDriver(t testing.TB, c redis.UniversalClient, opts redisdriver.Options) *redisdriver.Driver {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("t%d:", prefixes.Add(1))
	}
	d := redisdriver.New(c, opts)
	t.Cleanup(func() { d.Close() })
	return d
}

// client returns a client of s closed with the test.
func client(t testing.TB, s *redistest.Server) *redis.Client {
	c := s.Client()
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// quiet drops go-redis's own log lines (a reconnecting pool logs every
// failed dial while a fault test has the server down).
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	os.Exit(m.Run())
}
