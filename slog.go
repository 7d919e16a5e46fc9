package microcache

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// LogMonitor is a [Monitor] and [ErrorMonitor] that writes to a
// [slog.Logger]: the Stats of each interval at level Info, backend
// failures at Warn and failures of the cache itself (driver, compressor,
// corrupt data) at Error. Its Observe method, given to [Config.Observe],
// logs each request's outcome at Debug. Build one with [NewLogMonitor]; it
// is safe for concurrent use.
type LogMonitor struct {
	logger   *slog.Logger
	interval time.Duration
}

var _ ErrorMonitor = (*LogMonitor)(nil)

// NewLogMonitor returns a LogMonitor that writes to logger (nil means
// slog.Default()) and logs Stats every interval (<= 0: never; failures are
// still logged as they happen).
func NewLogMonitor(logger *slog.Logger, interval time.Duration) *LogMonitor {
	if logger == nil {
		logger = slog.Default()
	}
	return &LogMonitor{logger: logger, interval: interval}
}

// Interval implements [Monitor].
func (l *LogMonitor) Interval() time.Duration { return l.interval }

// Log implements [Monitor]: one Info record with the counts of the
// interval.
func (l *LogMonitor) Log(s Stats) {
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "microcache stats",
		slog.Int("hits", s.Hits), slog.Int("stales", s.Stales), slog.Int("misses", s.Misses),
		slog.Int("passes", s.Passes), slog.Int("backend", s.Backend), slog.Int("errors", s.Errors),
		slog.Int("timeouts", s.Timeouts), slog.Int("panics", s.Panics), slog.Int("cache_errors", s.CacheErrors),
		slog.Int("revalidations_skipped", s.RevalidationsSkipped), slog.Int("size", s.Size),
		slog.Int64("stored_bytes", s.StoredBytes), slog.Int("evictions", s.Evictions))
}

// ReportError implements [ErrorMonitor]: backend failures at Warn, cache
// failures at Error, with the request's method and URL.
func (l *LogMonitor) ReportError(ev ErrorEvent) {
	level := slog.LevelWarn
	if ev.Kind == ErrorDriver || ev.Kind == ErrorCompressor {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("kind", ev.Kind.String()), slog.Bool("background", ev.Background)}
	if ev.Request != nil {
		attrs = append(attrs, slog.String("method", ev.Request.Method), slog.String("url", ev.Request.URL.String()))
	}
	if ev.Status != 0 {
		attrs = append(attrs, slog.Int("status", ev.Status))
	}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("error", ev.Err.Error()))
	}
	ctx := context.Background()
	if ev.Request != nil {
		ctx = ev.Request.Context()
	}
	l.logger.LogAttrs(ctx, level, "microcache failure", attrs...)
}

// Observe logs one request's outcome at Debug; pass it as
// [Config.Observe]. Nothing is built when the logger does not log Debug.
func (l *LogMonitor) Observe(r *http.Request, o Outcome) {
	if !l.logger.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("method", r.Method), slog.String("url", r.URL.String()),
		slog.String("outcome", o.Kind.String()), slog.Int("status", o.Status)}
	switch o.Kind {
	case OutcomePass:
		attrs = append(attrs, slog.String("reason", o.Pass.String()))
	case OutcomeMiss:
		attrs = append(attrs, slog.String("miss", o.Miss.String()), slog.Bool("stored", o.Stored), slog.Bool("collapsed", o.Collapsed))
	case OutcomeHit, OutcomeStale:
		attrs = append(attrs, slog.Duration("ttl", o.TTL))
	}
	l.logger.LogAttrs(r.Context(), slog.LevelDebug, "microcache request", attrs...)
}
