package redisdriver_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/redisdriver"
	"github.com/redis/go-redis/v9"
)

// New neither fails nor blocks without a server; calls fail fast with
// errors until the breaker opens, then work from L1 alone; Close returns.
func TestNoServer(t *testing.T) {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: filepath.Join(t.TempDir(), "none.sock"), MaxRetries: -1})
	defer c.Close()
	start := time.Now()
	d := redisdriver.New(c, redisdriver.Options{})
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("New took %v without a server", took)
	}
	ctx := context.Background()
	errs := 0
	for range 5 {
		if _, err := d.Lookup(ctx, "u"); err != nil {
			errs++
		}
	}
	if errs == 0 || d.Available() {
		t.Errorf("%d errors in 5 lookups, breaker closed %v; want errors, then the breaker open", errs, d.Available())
	}
	o := &microcache.Object{Status: 200, Body: []byte("x"), Size: 1, Epoch: 1, Date: time.Now(), Expires: time.Now().Add(time.Hour)}
	if ok, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: 1}, ObjectKey: "u", Object: o}); !ok || err != nil {
		t.Errorf("Store with the breaker open: %v %v, want it stored in L1", ok, err)
	}
	if rec, err := d.Lookup(ctx, "u"); err != nil || rec.Object != o {
		t.Errorf("Lookup with the breaker open: %v, object %v; want L1's", err, rec.Object != nil)
	}
	if _, held, err := d.Lease(ctx, "u", time.Second); !held || err != nil {
		t.Errorf("Lease with the breaker open: held %v, %v; want held", held, err)
	}
	if err := d.Purge(ctx, "u", 2); err == nil {
		t.Error("Purge with the breaker open: no error; want the purge reported as not shared")
	}
	if st := d.Stats(); st.PendingPurges != 1 || st.Trips != 1 {
		t.Errorf("Stats %+v, want one pending purge and one trip", st)
	}
	start = time.Now()
	d.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
}
