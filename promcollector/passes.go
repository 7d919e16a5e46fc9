package promcollector

import (
	"net/http"
	"sync/atomic"

	"github.com/httpimp/microcache"
	"github.com/prometheus/client_golang/prometheus"
)

// passReasons are the reasons microcache knows, indexed by their value
// (index 0, PassNone, collects any reason outside the known set).
var passReasons = func() []string {
	names := []string{"unknown"}
	for p := microcache.PassReason(1); p != 0 && p.String() != "unknown"; p++ {
		names = append(names, p.String())
	}
	return names
}()

// PassCounter is a [prometheus.Collector] that counts the requests a
// Microcache passed straight through, by [microcache.PassReason], as the
// metric <namespace>_passes_total{reason="..."}. It counts what its
// [PassCounter.Observe] method is given, so that method must be (or be
// called from) the Microcache's [microcache.Config.Observe]. Every known
// reason is reported, at zero until it happens. It is safe for concurrent
// use.
//
// A PassCounter is made before the Microcache it observes, and registered
// beside that Microcache's [Collector]:
//
//	passes := promcollector.NewPassCounter(promcollector.Options{})
//	cache := microcache.New(microcache.Config{TTL: time.Minute, Observe: passes.Observe})
//	reg.MustRegister(promcollector.New(cache, promcollector.Options{}), passes)
type PassCounter struct {
	desc   *prometheus.Desc
	counts []atomic.Uint64 // by PassReason; see passReasons
}

var _ prometheus.Collector = (*PassCounter)(nil)

// NewPassCounter returns a PassCounter whose metric is named and labelled
// by opts, as a [Collector]'s are.
func NewPassCounter(opts Options) *PassCounter {
	return &PassCounter{
		desc: opts.desc("passes_total",
			"Requests passed straight through to the backend, uncached both ways, by reason (see microcache.PassReason).",
			"reason"),
		counts: make([]atomic.Uint64, len(passReasons)),
	}
}

// Observe counts o if it is a pass-through; other outcomes are ignored.
// Its signature is that of [microcache.Config.Observe], so the method value
// can be used there directly, or called from a function that also does
// other things (logging, say). r is not used and may be nil.
func (p *PassCounter) Observe(r *http.Request, o microcache.Outcome) {
	if o.Kind != microcache.OutcomePass {
		return
	}
	i := int(o.Pass)
	if i >= len(p.counts) {
		i = 0
	}
	p.counts[i].Add(1)
}

// Describe implements [prometheus.Collector].
func (p *PassCounter) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.desc
}

// Collect implements [prometheus.Collector]. The "unknown" reason (a
// PassReason this package does not know, or none) is reported only once
// it has been counted.
func (p *PassCounter) Collect(ch chan<- prometheus.Metric) {
	for i, name := range passReasons {
		n := p.counts[i].Load()
		if i == 0 && n == 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.CounterValue, float64(n), name)
	}
}
