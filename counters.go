package microcache

import (
	"sync/atomic"
	"unsafe"
)

// counterStripes is how many copies of the counters a Microcache keeps: each
// count goes to one picked at random, so goroutines on different CPUs
// rarely add to the same cache line.
const counterStripes = 8

// counters are the live counts behind Stats, striped (see counterStripes)
// and cumulative since New. Adding and reading are safe from any goroutine.
type counters struct {
	stripes [counterStripes]counterStripe
}

// counterStripe is one copy of the counts, padded to its own cache lines.
type counterStripe struct {
	hits, misses, stales, passes, backend atomic.Int64
	errors, timeouts, panics, cacheErrors atomic.Int64
	revalidationsSkipped                  atomic.Int64
	_                                     [128 - 10*8]byte
}

// stripe returns a stripe to add to: one picked by the address of the
// calling goroutine's stack, which costs nothing, keeps one goroutine on
// one stripe, and spreads goroutines (and so CPUs) over the stripes.
func (c *counters) stripe() *counterStripe {
	var local byte
	return &c.stripes[(uintptr(unsafe.Pointer(&local))>>13)%counterStripes]
}

// total returns the counts since the counters were made. Counts added
// while it runs may or may not be included.
func (c *counters) total() Stats {
	var s Stats
	for i := range c.stripes {
		p := &c.stripes[i]
		s.Hits += int(p.hits.Load())
		s.Misses += int(p.misses.Load())
		s.Stales += int(p.stales.Load())
		s.Passes += int(p.passes.Load())
		s.Backend += int(p.backend.Load())
		s.Errors += int(p.errors.Load())
		s.Timeouts += int(p.timeouts.Load())
		s.Panics += int(p.panics.Load())
		s.CacheErrors += int(p.cacheErrors.Load())
		s.RevalidationsSkipped += int(p.revalidationsSkipped.Load())
	}
	return s
}

// count adds one to the counter chosen by pick.
func (m *Microcache) count(pick func(*counterStripe) *atomic.Int64) {
	pick(m.stats.stripe()).Add(1)
}

func backendCalls(c *counterStripe) *atomic.Int64 { return &c.backend }

func revalidationsSkipped(c *counterStripe) *atomic.Int64 { return &c.revalidationsSkipped }
