package microcache

import (
	"net/http"
	"time"
)

// Monitor receives periodic [Stats] from a [Microcache]. Log is called from
// one goroutine, every Interval, with the counts since the previous call.
// A Monitor may also implement [ErrorMonitor].
type Monitor interface {
	// Interval returns how often Log is called. A value <= 0 disables
	// periodic logging.
	Interval() time.Duration

	// Log receives the counts since the previous call.
	Log(Stats)
}

// ErrorMonitor is implemented by a [Monitor] that wants each failure as it
// happens, with the request, the backend's response (when there was one) and
// the error. ReportError is called synchronously on the request's goroutine
// (or the background revalidation's), possibly from many goroutines at
// once, and never while the middleware holds a lock: keep it fast.
type ErrorMonitor interface {
	Monitor
	ReportError(ErrorEvent)
}

// ErrorKind classifies an [ErrorEvent].
type ErrorKind int

// The kinds of [ErrorEvent]. Backend failures (ErrorBackend, ErrorTimeout,
// ErrorPanic) count in [Stats.Errors]; the others are failures of the cache
// itself, which never fail a request, and count in [Stats.CacheErrors].
const (
	// ErrorBackend: the backend answered with a 5xx status.
	ErrorBackend ErrorKind = iota + 1
	// ErrorTimeout: the backend ran past Config.Timeout.
	ErrorTimeout
	// ErrorPanic: the backend panicked. Err carries the panic value and
	// stack; errors.Is(Err, http.ErrAbortHandler) is never true (such
	// panics are aborts, not failures, and are not reported).
	ErrorPanic
	// ErrorDriver: a Driver method returned an error.
	ErrorDriver
	// ErrorCompressor: compressing or expanding a body failed, or a stored
	// object was corrupt.
	ErrorCompressor
)

var errorKindNames = [...]string{"unknown", "backend", "timeout", "panic", "driver", "compressor"}

// String returns a short lower-case name for k, such as "timeout".
func (k ErrorKind) String() string {
	if k < 0 || int(k) >= len(errorKindNames) {
		return errorKindNames[0]
	}
	return errorKindNames[k]
}

// ErrorEvent describes one failure, for [ErrorMonitor].
type ErrorEvent struct {
	Kind ErrorKind
	// Request is the client's request, or the background revalidation's
	// copy of it. It must not be modified.
	Request *http.Request
	// Status and Header are the backend's response, when it gave one
	// (Status is 0 otherwise). Header must not be modified.
	Status int
	Header http.Header
	// Err describes the failure; for ErrorBackend it is nil.
	Err error
	// Background is true when the failure happened in a background
	// revalidation rather than while a client waited.
	Background bool
}

// Stats are the counts a [Monitor] receives. Every count except Size is the
// number of events since the previous report. Each client request counts
// exactly once as a Hit, a Stale, a Miss or a Pass.
type Stats struct {
	// Size is the driver's object count when the report was made
	// (Driver.Len, -1 if unknown).
	Size int
	// Hits: requests answered from a fresh object.
	Hits int
	// Misses: cacheable requests answered by the backend.
	Misses int
	// Stales: requests answered from a stale object (stale-while-revalidate
	// or stale-if-error).
	Stales int
	// Passes: requests passed straight through (other methods, protocol
	// upgrades, uncacheable URLs, HEAD misses, requests with credentials
	// or a body).
	Passes int
	// Backend: calls to the wrapped handler, including background
	// revalidations. Collapsed requests share one call.
	Backend int
	// Errors: backend failures (5xx answers, timeouts, panics), each
	// counted once however many requests shared it.
	Errors int
	// Timeouts and Panics count the backend failures of those two kinds
	// (they are included in Errors).
	Timeouts int
	Panics   int
	// CacheErrors: driver and compressor failures and corrupt objects. They
	// never fail a request.
	CacheErrors int
	// RevalidationsSkipped: stale objects served without starting a
	// background refresh because Config.MaxRevalidations were running.
	RevalidationsSkipped int
	// StoredBytes is the bytes the driver held when the report was made,
	// and Evictions the records it evicted to respect its limits since the
	// previous report; both are 0 for drivers that do not implement
	// [DriverUsage].
	StoredBytes int64
	Evictions   int
}

// MonitorFunc returns a [Monitor] that calls fn with the stats every
// interval. fn is called from a single goroutine.
func MonitorFunc(interval time.Duration, fn func(Stats)) *MonitorFn {
	return &MonitorFn{interval: interval, fn: fn}
}

// MonitorFn is the [Monitor] returned by [MonitorFunc].
type MonitorFn struct {
	interval time.Duration
	fn       func(Stats)
}

var _ Monitor = (*MonitorFn)(nil)

// Interval implements [Monitor].
func (m *MonitorFn) Interval() time.Duration { return m.interval }

// Log implements [Monitor] by calling the function given to [MonitorFunc].
func (m *MonitorFn) Log(s Stats) {
	if m.fn != nil {
		m.fn(s)
	}
}

// since returns s with its counts made relative to prev (an earlier Stats
// of the same Microcache); Size and StoredBytes stay as they are.
func (s Stats) since(prev Stats) Stats {
	d := s
	d.Hits -= prev.Hits
	d.Misses -= prev.Misses
	d.Stales -= prev.Stales
	d.Passes -= prev.Passes
	d.Backend -= prev.Backend
	d.Errors -= prev.Errors
	d.Timeouts -= prev.Timeouts
	d.Panics -= prev.Panics
	d.CacheErrors -= prev.CacheErrors
	d.RevalidationsSkipped -= prev.RevalidationsSkipped
	d.Evictions -= prev.Evictions
	return d
}
