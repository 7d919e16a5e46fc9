package redisdriver

import (
	"context"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/redisdriver/internal/redistest"
)

// BenchmarkLookupL1 compares the driver's trusted L1 lookup with a
// DriverLRU lookup.
func BenchmarkLookupL1(b *testing.B) {
	key := "p11:www.example7:/a/page---"
	o := &microcache.Object{Status: 200, Body: []byte("x"), Size: 1, Epoch: 5, Date: time.Now(), Expires: time.Now().Add(time.Hour)}
	st := &microcache.Store{URLKey: key, Options: &microcache.Options{Epoch: 5}, ObjectKey: key, Object: o}
	ctx := context.Background()
	b.Run("DriverLRU", func(b *testing.B) {
		d := microcache.NewDriverLRU(1000)
		d.Store(ctx, st)
		for b.Loop() {
			d.Lookup(ctx, key)
		}
	})
	b.Run("redisdriver", func(b *testing.B) {
		s := redistest.StartT(b)
		c := s.Client()
		defer c.Close()
		d := New(c, Options{MaxOptionsAge: time.Hour})
		defer d.Close()
		for !d.Subscribed() {
			time.Sleep(time.Millisecond)
		}
		d.Store(ctx, st)
		if rec, _ := d.l1.Lookup(ctx, key); !d.trust.validObject(rec.Object) {
			b.Fatal("not trusted")
		}
		for b.Loop() {
			d.Lookup(ctx, key)
		}
	})
}
