package redisdriver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/drivertest"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
)

// The two-tier driver passes the conformance suite, with L1 in front.
// OpTimeout is generous in these tests: they check semantics while Redis
// answers, and a loaded machine (-race) must not open the breaker, which
// would answer from L1 alone.
func TestConformance(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	drivertest.TestDriver(t, func(t *testing.T) microcache.Driver {
		d := newDriver(t, c, redisdriver.Options{OpTimeout: time.Second})
		waitSubscribed(t, d)
		return d
	})
}

// Through L2 alone: every write goes through one driver and every read
// through another that never trusts its L1 (MaxOptionsAge 1ns), so each
// record the suite checks was read from Redis.
func TestConformanceL2(t *testing.T) {
	s := redistest.StartT(t)
	c := client(t, s)
	drivertest.TestDriver(t, func(t *testing.T) microcache.Driver {
		prefix := fmt.Sprintf("l2-%d:", prefixes.Add(1))
		w := newDriver(t, c, redisdriver.Options{Prefix: prefix, OpTimeout: time.Second})
		r := newDriver(t, c, redisdriver.Options{Prefix: prefix, MaxOptionsAge: time.Nanosecond, OpTimeout: time.Second})
		return splitDriver{w: w, r: r}
	})
}

// splitDriver writes through w and reads through r.
type splitDriver struct{ w, r microcache.Driver }

func (s splitDriver) Lookup(ctx context.Context, k string) (microcache.Record, error) {
	return s.r.Lookup(ctx, k)
}
func (s splitDriver) Object(ctx context.Context, k string) (*microcache.Object, error) {
	return s.r.Object(ctx, k)
}
func (s splitDriver) Store(ctx context.Context, st *microcache.Store) (bool, error) {
	return s.w.Store(ctx, st)
}
func (s splitDriver) Purge(ctx context.Context, k string, e uint64) error {
	return s.w.Purge(ctx, k, e)
}
func (s splitDriver) PurgeTag(ctx context.Context, tag string, e uint64) error {
	return s.w.PurgeTag(ctx, tag, e)
}
func (s splitDriver) Len() int { return -1 }

// waitSubscribed waits until d's purge subscription is in place (L1 is
// then trusted).
func waitSubscribed(t testing.TB, d *redisdriver.Driver) {
	t.Helper()
	eventually(t, 5*time.Second, "purge subscription", d.Subscribed)
}
