package microcache

import (
	"math/rand/v2"
	"sync/atomic"
)

// counterStripes is how many copies of the counters a Microcache keeps: each
// count goes to one picked at random, so goroutines on different CPUs
// rarely add to the same cache line.
const counterStripes = 8

// counters are the live counts behind Stats, striped (see counterStripes).
// Adding is safe from any goroutine; take is for the reporting goroutine.
type counters struct {
	stripes           [counterStripes]counterStripe
	evictionsReported uint64 // driver evictions at the last report; only the reporting goroutine uses it
}

// counterStripe is one copy of the counts, padded to its own cache lines.
type counterStripe struct {
	hits, misses, stales, passes, backend atomic.Int64
	errors, timeouts, panics, cacheErrors atomic.Int64
	revalidationsSkipped                  atomic.Int64
	_                                     [128 - 10*8]byte
}

// stripe returns a stripe to add to.
func (c *counters) stripe() *counterStripe {
	return &c.stripes[rand.Uint32()%counterStripes]
}

// take returns the counts since the previous take, and resets them. Every
// count lands in exactly one take.
func (c *counters) take() Stats {
	var s Stats
	for i := range c.stripes {
		p := &c.stripes[i]
		s.Hits += int(p.hits.Swap(0))
		s.Misses += int(p.misses.Swap(0))
		s.Stales += int(p.stales.Swap(0))
		s.Passes += int(p.passes.Swap(0))
		s.Backend += int(p.backend.Swap(0))
		s.Errors += int(p.errors.Swap(0))
		s.Timeouts += int(p.timeouts.Swap(0))
		s.Panics += int(p.panics.Swap(0))
		s.CacheErrors += int(p.cacheErrors.Swap(0))
		s.RevalidationsSkipped += int(p.revalidationsSkipped.Swap(0))
	}
	return s
}

// count adds one to the counter chosen by pick, when stats are kept.
func (m *Microcache) count(pick func(*counterStripe) *atomic.Int64) {
	if m.stats != nil {
		pick(m.stats.stripe()).Add(1)
	}
}

func hits(c *counterStripe) *atomic.Int64         { return &c.hits }
func misses(c *counterStripe) *atomic.Int64       { return &c.misses }
func stales(c *counterStripe) *atomic.Int64       { return &c.stales }
func passes(c *counterStripe) *atomic.Int64       { return &c.passes }
func backendCalls(c *counterStripe) *atomic.Int64 { return &c.backend }

func revalidationsSkipped(c *counterStripe) *atomic.Int64 { return &c.revalidationsSkipped }
