package microcache

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Microcache is an HTTP microcache: [Microcache.Middleware] wraps a handler
// and answers GET and HEAD requests from stored responses. Build one with
// [New]. A Microcache is safe for concurrent use by multiple goroutines, and
// one Microcache may wrap several handlers (they then share the cache, so
// they must not serve different content for the same URL).
type Microcache struct {
	cfg     Config // normalized copy; never modified after New
	driver  Driver
	leaser  DriverLeaser // the driver, when it offers fleet-wide fetch leases
	clk     *clock
	hot     hotBodies    // expanded bodies of compressed objects
	monitor Monitor      // nil: no stats are counted
	errMon  ErrorMonitor // nil unless monitor implements it
	stats   *counters    // cumulative since New

	collapse flights // concurrent misses, keyed by object key

	lifecycle sync.Mutex // serializes Start and Stop, so one monitor goroutine runs at a time

	mu           sync.Mutex          // guards the fields below
	revalidating map[string]struct{} // object keys with a background refresh under way
	abandoned    map[string]int      // object keys with handlers still running after a Timeout, and how many
	running      bool                // between Start and Stop
	stopMonitor  chan struct{}       // closed by Stop
	monitorDone  chan struct{}       // closed when the monitor goroutine ends
	stopCtx      context.Context     // cancelled by Stop; parent of background work
	stopCancel   context.CancelFunc

	background sync.WaitGroup // background revalidations and timed-out handlers

	evictionsBase uint64 // the driver's evictions when New ran
	monitorBase   Stats  // the totals the Monitor last reported; guarded by lifecycle once its goroutine has ended
}

// New returns a Microcache configured by cfg, already started (see
// [Microcache.Start]). The configuration is copied, so changing cfg later
// has no effect.
func New(cfg Config) *Microcache {
	cfg = cfg.normalized()
	m := &Microcache{
		cfg:          cfg,
		driver:       cfg.Driver,
		clk:          newClock(),
		hot:          hotBodies{max: hotBytes},
		monitor:      cfg.Monitor,
		revalidating: make(map[string]struct{}),
		abandoned:    make(map[string]int),
	}
	m.leaser, _ = m.driver.(DriverLeaser)
	if u, ok := m.driver.(DriverUsage); ok {
		m.evictionsBase = u.Evictions() // a driver may be shared, or reused
	}
	m.stats = new(counters)
	if m.monitor != nil {
		m.errMon, _ = m.monitor.(ErrorMonitor)
	}
	m.Start()
	return m
}

// Middleware returns next wrapped by the cache. It has the shape
// func(http.Handler) http.Handler expected by routers such as chi and
// alice. It panics if next is nil.
//
// next may run after its client's request has ended and on another
// goroutine: a background refresh (StaleWhileRevalidate) calls it with a
// copy of a past request and a ResponseWriter of its own, and with a
// Timeout it runs on its own goroutine and may outlive its client. So wrap
// a whole engine (a gin.Engine, an echo.Echo, a fiber app served through
// net/http, a chi router) rather than use Middleware per route inside a
// framework whose pooled request context is recycled when the framework's
// handler returns: such a context would be used after it was reused, and a
// framework that writes its response after the wrapped handler returns
// gives the cache an empty answer (never stored).
func (m *Microcache) Middleware(next http.Handler) http.Handler {
	if next == nil {
		panic("microcache: Middleware called with a nil handler")
	}
	return &handler{m: m, next: next}
}

// Start starts the Monitor's reporting goroutine (when a Monitor with a
// positive Interval is configured) and allows background revalidation. New
// calls it; calling it again while running does nothing, and calling it
// after [Microcache.Stop] starts the Microcache again.
func (m *Microcache) Start() {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	var interval time.Duration
	if m.monitor != nil {
		interval = m.monitor.Interval() // user code: called without m.mu
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		return
	}
	m.running = true
	m.stopCtx, m.stopCancel = context.WithCancel(context.Background())
	m.stopMonitor, m.monitorDone = nil, nil
	if interval > 0 {
		m.stopMonitor, m.monitorDone = make(chan struct{}), make(chan struct{})
		go m.monitorLoop(interval, m.stopMonitor, m.monitorDone)
	}
}

// Stop ends the Monitor's goroutine (after one last report of the counts
// since the previous one), cancels the contexts of background revalidations
// and waits for them, and for handlers abandoned after a Timeout, to
// return. Requests keep being served after Stop, but stale objects are then
// refreshed in the foreground. Stop is safe to call more than once and from
// several goroutines; every call returns once the work has ended. It must
// not be called from a handler the Microcache wraps, which it would wait
// for.
func (m *Microcache) Stop() {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	var stopMonitor chan struct{}
	m.mu.Lock()
	if m.running {
		m.running = false
		m.stopCancel()
		stopMonitor = m.stopMonitor
	}
	done := m.monitorDone
	m.mu.Unlock()
	// Background work first, so that the last report counts it.
	m.background.Wait()
	if stopMonitor != nil {
		close(stopMonitor)
	}
	if done != nil {
		<-done
	}
}

// monitorLoop is the Monitor goroutine: it logs the counts since its
// previous report.
func (m *Microcache) monitorLoop(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	prev := m.monitorBase
	for {
		select {
		case <-t.C:
		case <-stop:
			m.monitorBase = m.logSince(prev)
			return
		}
		prev = m.logSince(prev)
	}
}

// logSince logs the counts since prev to the Monitor, and returns the
// totals they were taken from.
func (m *Microcache) logSince(prev Stats) Stats {
	cur := m.Stats()
	m.monitor.Log(cur.since(prev))
	return cur
}

// Stats returns the counts since New: cumulative, never reset by reading
// (for pull-based collectors such as Prometheus), with the driver's
// current Size and StoredBytes and its Evictions since New. Safe to call
// from any goroutine, at any time.
func (m *Microcache) Stats() Stats {
	s := m.stats.total()
	s.Size = m.driver.Len()
	if u, ok := m.driver.(DriverUsage); ok {
		s.StoredBytes = u.Bytes()
		s.Evictions = int(u.Evictions() - m.evictionsBase)
	}
	return s
}

// fail counts and reports one failure.
func (m *Microcache) fail(ev ErrorEvent) {
	c := m.stats.stripe()
	switch ev.Kind {
	case ErrorDriver, ErrorCompressor:
		c.cacheErrors.Add(1)
	default:
		c.errors.Add(1)
		switch ev.Kind {
		case ErrorTimeout:
			c.timeouts.Add(1)
		case ErrorPanic:
			c.panics.Add(1)
		}
	}
	if m.errMon != nil {
		m.errMon.ReportError(ev)
	}
}

// driverFailed reports a Driver error on r.
func (m *Microcache) driverFailed(r *http.Request, err error) {
	m.fail(ErrorEvent{Kind: ErrorDriver, Request: r, Err: err})
}
