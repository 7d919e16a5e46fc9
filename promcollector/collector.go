// Package promcollector exports the statistics of a [microcache.Microcache]
// to Prometheus.
//
// [New] returns a [Collector], a [prometheus.Collector] that reads
// [microcache.Microcache.Stats] each time it is scraped: it keeps no
// counters of its own, adds nothing to the request path and starts no
// goroutine. Its metrics, named here with the default namespace:
//
//	microcache_requests_total{outcome="hit|stale|miss|pass"}         counter
//	microcache_backend_calls_total                                    counter
//	microcache_backend_errors_total{kind="status_5xx|timeout|panic"}  counter
//	microcache_cache_errors_total                                     counter
//	microcache_revalidations_skipped_total                            counter
//	microcache_stored_objects                                         gauge
//	microcache_stored_bytes                                           gauge
//	microcache_evictions_total                                        counter
//
// [NewPassCounter] returns a [PassCounter], which counts pass-throughs by
// reason, microcache_passes_total{reason="..."}, from what
// [microcache.Config.Observe] gives it.
//
// The package is a module of its own, so that the microcache module never
// requires github.com/prometheus/client_golang.
package promcollector

import (
	"sync"

	"github.com/httpimp/microcache"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultNamespace is the namespace (the metric name prefix) used when
// [Options.Namespace] is empty.
const DefaultNamespace = "microcache"

// Options configures a [Collector] or a [PassCounter]. The zero value is
// ready to use.
type Options struct {
	// Namespace is the first part of every metric name, as in
	// "<Namespace>_requests_total". Empty means [DefaultNamespace]. Keep
	// to letters, digits and underscores, as Prometheus names
	// traditionally do.
	Namespace string

	// ConstLabels are added to every metric, for example
	// prometheus.Labels{"cache": "pages"} to tell apart several caches
	// registered with one registry. Nil means none.
	ConstLabels prometheus.Labels
}

func (o Options) namespace() string {
	if o.Namespace == "" {
		return DefaultNamespace
	}
	return o.Namespace
}

func (o Options) desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(o.namespace(), "", name), help, labels, o.ConstLabels)
}

// Collector is a [prometheus.Collector] for one [microcache.Microcache]: at
// each scrape it reads [microcache.Microcache.Stats] and reports it as the
// metrics listed in the package documentation. It is safe for concurrent use,
// including concurrent scrapes.
type Collector struct {
	cache *microcache.Microcache

	requests             *prometheus.Desc
	backendCalls         *prometheus.Desc
	backendErrors        *prometheus.Desc
	cacheErrors          *prometheus.Desc
	revalidationsSkipped *prometheus.Desc
	storedObjects        *prometheus.Desc
	storedBytes          *prometheus.Desc
	evictions            *prometheus.Desc

	// status5xx keeps the 5xx backend error count monotonic (see
	// Collect); mu protects it.
	mu        sync.Mutex
	status5xx monotonic
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector for c, to be registered with a
// [prometheus.Registerer]. Register one Collector per Microcache; to
// register several with one registry, give each distinct
// [Options.ConstLabels]. New panics if c is nil.
func New(c *microcache.Microcache, opts Options) *Collector {
	if c == nil {
		panic("promcollector: New with a nil Microcache")
	}
	return &Collector{
		cache: c,
		requests: opts.desc("requests_total",
			"Requests handled by the cache, by outcome: hit (fresh object), stale (stale object), miss (answered by the backend through the cache), pass (passed straight through).",
			"outcome"),
		backendCalls: opts.desc("backend_calls_total",
			"Calls to the wrapped handler, background revalidations included; collapsed requests share one call."),
		backendErrors: opts.desc("backend_errors_total",
			"Backend failures, by kind: status_5xx (a 5xx answer), timeout (past Config.Timeout), panic; each counted once however many requests shared it.",
			"kind"),
		cacheErrors: opts.desc("cache_errors_total",
			"Driver and compressor failures and corrupt stored objects; they never fail a request."),
		revalidationsSkipped: opts.desc("revalidations_skipped_total",
			"Stale objects served without a background refresh because Config.MaxRevalidations refreshes were running."),
		storedObjects: opts.desc("stored_objects",
			"Objects the cache's driver holds (absent when the driver cannot tell)."),
		storedBytes: opts.desc("stored_bytes",
			"Bytes the cache's driver holds (0 when the driver does not implement microcache.DriverUsage)."),
		evictions: opts.desc("evictions_total",
			"Records the cache's driver evicted to respect its limits (0 when the driver does not implement microcache.DriverUsage)."),
	}
}

// Describe implements [prometheus.Collector].
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.backendCalls
	ch <- c.backendErrors
	ch <- c.cacheErrors
	ch <- c.revalidationsSkipped
	ch <- c.storedObjects
	ch <- c.storedBytes
	ch <- c.evictions
}

// Collect implements [prometheus.Collector]. It reads the Microcache's
// Stats once; the stored objects gauge is left out when the driver's object
// count is unknown (Stats.Size -1).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.cache.Stats()

	counter := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.requests, s.Hits, "hit")
	counter(c.requests, s.Stales, "stale")
	counter(c.requests, s.Misses, "miss")
	counter(c.requests, s.Passes, "pass")
	counter(c.backendCalls, s.Backend)

	// Stats counts Errors, Timeouts and Panics separately and cannot read
	// them in one atomic step, so a scrape racing a failure may see Errors
	// and not yet its Timeouts (or the reverse): the difference would then
	// step down at the next scrape, which Prometheus takes for a counter
	// reset. Keep it from going down.
	c.mu.Lock()
	n5xx := c.status5xx.next(int64(s.Errors - s.Timeouts - s.Panics))
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.backendErrors, prometheus.CounterValue, float64(n5xx), "status_5xx")
	counter(c.backendErrors, s.Timeouts, "timeout")
	counter(c.backendErrors, s.Panics, "panic")

	counter(c.cacheErrors, s.CacheErrors)
	counter(c.revalidationsSkipped, s.RevalidationsSkipped)
	if s.Size >= 0 {
		ch <- prometheus.MustNewConstMetric(c.storedObjects, prometheus.GaugeValue, float64(s.Size))
	}
	ch <- prometheus.MustNewConstMetric(c.storedBytes, prometheus.GaugeValue, float64(s.StoredBytes))
	counter(c.evictions, s.Evictions)
}

// monotonic turns a count read from a racy snapshot into one that never
// decreases: the highest value seen so far, and never below zero.
type monotonic struct{ max int64 }

// next returns the count to report for the new reading v.
func (m *monotonic) next(v int64) int64 {
	m.max = max(m.max, v)
	return m.max
}
