package microcache

import (
	"math"
	"sync/atomic"
	"time"
)

// clock reads monotonic time as nanoseconds since its base. On the hit path
// that is all that is needed, and it costs about half of time.Now, which
// also reads the wall clock. Each clock has its own id, which objects keep
// in 4 bytes rather than a pointer.
type clock struct {
	base time.Time
	id   uint32 // never 0
}

// clockIDs numbers clocks.
var clockIDs atomic.Uint32

func newClock() *clock {
	id := clockIDs.Add(1)
	for id == 0 { // after 2^32 clocks
		id = clockIDs.Add(1)
	}
	return &clock{base: time.Now(), id: id}
}

// now returns the nanoseconds elapsed since the clock's base.
func (c *clock) now() int64 { return int64(time.Since(c.base)) }

// at returns t as nanoseconds since the clock's base (saturating).
func (c *clock) at(t time.Time) int64 { return int64(t.Sub(c.base)) }

// timings are an object's instants on one clock, in nanoseconds since its
// base: when it was fetched, and until when it is fresh, may be served
// while revalidating, and may be served for an error.
type timings struct {
	date, fresh, revalidate, ifError int64
}

// timingsOn computes obj's timings on c from its wall-clock fields.
func timingsOn(c *clock, obj *Object) timings {
	exp := c.at(obj.Expires)
	return timings{
		date:       c.at(obj.Date),
		fresh:      exp,
		revalidate: addSat(exp, int64(obj.StaleWhileRevalidate)),
		ifError:    addSat(exp, int64(obj.StaleIfError)),
	}
}

// stamp records obj's timings on c, for objects this process builds. It
// must run before the object is shared.
func (obj *Object) stamp(c *clock) {
	obj.times, obj.clock = timingsOn(c, obj), c.id
	if obj.Compressed && obj.hot == nil {
		obj.hot = new(hotBody)
	}
}

// timingsOf returns obj's timings on c: the stamped ones when they are on
// c, else computed (objects from another process, or another Microcache).
func timingsOf(c *clock, obj *Object) timings {
	if obj.clock == c.id {
		return obj.times
	}
	return timingsOn(c, obj)
}

func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// freshness is where an object stands at an instant.
type freshness int

const (
	expired         freshness = iota // past its stale-while-revalidate window
	fresh                            // younger than its TTL
	staleRevalidate                  // within its stale-while-revalidate window
)

// freshnessAt returns where an object with timings t stands at now.
func (t *timings) freshnessAt(now int64) freshness {
	switch {
	case now < t.fresh:
		return fresh
	case now < t.revalidate:
		return staleRevalidate
	}
	return expired
}

// staleIfErrorAt reports whether the object may answer in place of a
// backend error at now.
func (t *timings) staleIfErrorAt(now int64) bool { return now < t.ifError }

// ageAt returns the object's Age at now, in whole seconds.
func (t *timings) ageAt(now int64) int {
	if d := now - t.date; d > 0 {
		return int(d / int64(time.Second))
	}
	return 0
}
