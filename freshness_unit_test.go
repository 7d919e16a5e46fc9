package microcache

import (
	"math"
	"testing"
	"time"
)

// Freshness is a pure function of the object's timings and now.
func TestTimings(t *testing.T) {
	c := &clock{base: time.Unix(1000, 0)}
	obj := &Object{
		Date:                 time.Unix(1000, 0),
		Expires:              time.Unix(1010, 0),
		StaleWhileRevalidate: 5 * time.Second,
		StaleIfError:         20 * time.Second,
	}
	tm := timingsOn(c, obj)
	s := int64(time.Second)
	cases := []struct {
		now   int64
		state freshness
		sie   bool
		age   int
	}{
		{0, fresh, true, 0},
		{10*s - 1, fresh, true, 9},
		{10 * s, staleRevalidate, true, 10},
		{15*s - 1, staleRevalidate, true, 14},
		{15 * s, expired, true, 15},
		{30*s - 1, expired, true, 29},
		{30 * s, expired, false, 30},
		{-5 * s, fresh, true, 0}, // a clock before the fetch never gives a negative Age
	}
	for _, tc := range cases {
		if got := tm.freshnessAt(tc.now); got != tc.state {
			t.Errorf("at %v: freshness %d, want %d", time.Duration(tc.now), got, tc.state)
		}
		if got := tm.staleIfErrorAt(tc.now); got != tc.sie {
			t.Errorf("at %v: stale-if-error %v, want %v", time.Duration(tc.now), got, tc.sie)
		}
		if got := tm.ageAt(tc.now); got != tc.age {
			t.Errorf("at %v: age %d, want %d", time.Duration(tc.now), got, tc.age)
		}
	}
}

// Windows far in the future saturate instead of wrapping around.
func TestTimingsSaturate(t *testing.T) {
	c := &clock{base: time.Unix(0, 0)}
	obj := &Object{Date: time.Unix(0, 0), Expires: time.Unix(0, 0).Add(math.MaxInt64), StaleIfError: math.MaxInt64}
	tm := timingsOn(c, obj)
	if tm.ifError != math.MaxInt64 || tm.freshnessAt(math.MaxInt64-1) != fresh {
		t.Errorf("timings %+v", tm)
	}
}
