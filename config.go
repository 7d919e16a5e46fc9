package microcache

import (
	"net/http"
	"slices"
	"time"
)

// DefaultDriverSize is the number of objects held by the LRU driver that
// [New] creates when [Config.Driver] is nil; [DefaultDriverBytes] bounds
// its bytes.
const DefaultDriverSize = 10000

// DefaultMaxObjectSize is the largest response body, in bytes, that is
// buffered and stored when [Config.MaxObjectSize] is zero: 4 MiB.
const DefaultMaxObjectSize = 4 << 20

// DefaultMaxRevalidations is the number of background refreshes that may
// run at once when [Config.MaxRevalidations] is zero.
const DefaultMaxRevalidations = 32

// Config configures a [Microcache]. The zero value is valid but caches
// nothing useful: with a zero TTL every stored response is stale at once.
// Real deployments set at least TTL.
//
// Durations are in the units of [time.Duration]; a negative duration is
// treated as zero. Several fields can be overridden per response by a
// microcache-* response header, named on each field; see the package
// documentation for the header table. [New] copies the Config, including its
// slices, so changing it afterwards has no effect on a running Microcache.
type Config struct {
	// Nocache, when true, caches only responses that carry the header
	// "microcache-cache: 1" (opt-in caching). When false, every storable
	// response is cached unless it carries "microcache-nocache: 1".
	Nocache bool

	// Timeout bounds a buffered backend request: past it the request's
	// context is cancelled and the client gets the stale object when one is
	// allowed (see StaleIfError), else 503 Service Unavailable; what the
	// handler writes afterwards is discarded. It also bounds background
	// revalidations. Zero means no timeout. Pass-through requests (uncacheable
	// keys, other methods, protocol upgrades) are never cut off.
	Timeout time.Duration

	// TTL is how long a stored response stays fresh. Zero means responses
	// are stale as soon as they are stored, so they are only ever served
	// through StaleWhileRevalidate or StaleIfError.
	// Overridden by "microcache-ttl: N" (whole seconds, or a Go duration
	// such as "500ms").
	TTL time.Duration

	// StaleIfError is how long after expiry a stored response may still be
	// served when the backend answers 5xx, times out or panics (RFC 5861
	// section 4). Zero disables it.
	// Overridden by "microcache-stale-if-error: N".
	StaleIfError time.Duration

	// StaleRecache, when true, stores a stale response served because of a
	// backend error again as fresh for its TTL, so that the failing backend
	// is not asked again on every request. Age keeps counting from the
	// original fetch.
	// Overridden by "microcache-stale-recache: 1" and
	// "microcache-no-stale-recache: 1".
	StaleRecache bool

	// StaleWhileRevalidate is how long after expiry a stored response is
	// served at once while a single background request refreshes it
	// (RFC 5861 section 3). Zero disables it.
	// Overridden by "microcache-stale-while-revalidate: N".
	StaleWhileRevalidate time.Duration

	// CollapsedForwarding, when true, makes concurrent misses for one object
	// wait for a single backend request and share its response. With a
	// Timeout the shared request runs detached from the first client's
	// cancellation (others wait for it) and the Timeout bounds it; without
	// one it keeps the first client's context, and if that client leaves
	// the others make their own requests.
	// Overridden by "microcache-collapsed-forwarding: 1" and
	// "microcache-no-collapsed-forwarding: 1".
	CollapsedForwarding bool

	// HashQuery, when true, makes the query string part of the cache key
	// (parameters sorted by name, so their order does not matter). When
	// false the query is ignored, except for parameters a response names in
	// "microcache-vary-query": then "/search?q=a" and "/search?q=b" share
	// one object, so leave it false only for URLs whose responses do not
	// depend on the query.
	HashQuery bool

	// QueryIgnore lists query parameter names left out of the key when
	// HashQuery is true (tracking parameters such as "utm_source").
	// Names are matched exactly. Nil means none.
	QueryIgnore []string

	// Vary lists request header names whose values are part of every key,
	// as if every response had named them in its Vary header. Names are
	// matched case-insensitively. Nil means none. Responses add their own
	// with "Vary" and "microcache-vary".
	Vary []string

	// SessionCookies lists the names of request cookies that mark a
	// request as one user's (a session or login cookie, say): a request
	// carrying any of them is passed straight through, never answered from
	// the cache nor stored, as requests with an Authorization header are.
	// Names are matched exactly. Nil means none: then the cache does not
	// look at request cookies at all, and a page personalised by a cookie
	// must say so itself (Cache-Control: private, or microcache-nocache),
	// or it is shared with everyone.
	SessionCookies []string

	// Passthrough, when not nil, is asked about every request before
	// anything else: true sends it straight to the handler, uncached both
	// ways (no lookup, nothing stored, no purge). It is called on the
	// request's goroutine, possibly from many at once; keep it fast. Nil
	// means no request is passed through for this reason.
	Passthrough func(*http.Request) bool

	// Exposed, when true, adds the header "microcache: HIT", "MISS" or
	// "STALE" to every response the middleware handles.
	Exposed bool

	// SuppressAgeHeader, when true, leaves out the Age header (whole
	// seconds since the backend produced the response) that is otherwise
	// set on HIT and STALE responses.
	SuppressAgeHeader bool

	// ETag, when true, gives a stored 200 response that has neither an
	// ETag nor a Last-Modified header a strong ETag, computed once from
	// its body when it is stored (the first 16 bytes of its SHA-256, in
	// hex), so that a reloading browser's If-None-Match is answered 304
	// from the cache instead of with the whole body. The ETag is the same
	// in every process for the same body. False adds none.
	ETag bool

	// CacheStatus, when not empty, makes every response the middleware
	// handles carry an RFC 9211 Cache-Status header naming this cache,
	// such as "edge; hit; ttl=12", "edge; fwd=uri-miss; fwd-status=200;
	// stored", "edge; fwd=stale; fwd-status=503; ttl=-4" or "edge;
	// fwd=bypass; detail=credentials" (see [Outcome]). A Cache-Status the
	// backend set is replaced. Empty means no Cache-Status header.
	CacheStatus string

	// Observe, when not nil, is called once for every request the
	// middleware handles, after the response has been written, with the
	// request and how it was answered: for access logs and tracing. It is
	// called on the request's goroutine, possibly from many at once, and
	// never while the middleware holds a lock. Background refreshes are
	// not requests: they are counted in Stats.Backend. A request whose
	// handler panicked is observed, with Status 0, while the panic goes on
	// to net/http. Nil means none.
	Observe func(*http.Request, Outcome)

	// MaxObjectSize is the largest body, in bytes, that is buffered and
	// stored. A response that grows past it is streamed to the client
	// unstored and its key is marked uncacheable. Zero means
	// DefaultMaxObjectSize; a negative value means no limit.
	MaxObjectSize int

	// MaxRevalidations bounds the background refreshes (see
	// StaleWhileRevalidate) running at once, so that one client walking
	// many stale URLs cannot start as many backend calls. Past it a stale
	// object is served without starting a refresh, and counted in
	// Stats.RevalidationsSkipped. Zero means DefaultMaxRevalidations; a
	// negative value means no limit.
	MaxRevalidations int

	// Monitor, when not nil, receives [Stats] every Monitor.Interval().
	// If it also implements [ErrorMonitor] it receives each failure as it
	// happens.
	Monitor Monitor

	// Driver stores objects and per-key options. Nil means
	// NewDriverLRUBytes(DefaultDriverSize, DefaultDriverBytes): at most
	// 10,000 objects and 64 MiB.
	Driver Driver

	// Compressor, when not nil, compresses bodies before they are handed
	// to the Driver and expands them on the way out. Nil stores bodies as
	// they are.
	Compressor Compressor
}

// normalized returns a copy of c with defaults applied, negative durations
// clamped to zero and slices copied, so the caller can keep changing c.
func (c Config) normalized() Config {
	for _, d := range []*time.Duration{&c.Timeout, &c.TTL, &c.StaleIfError, &c.StaleWhileRevalidate} {
		if *d < 0 {
			*d = 0
		}
	}
	switch {
	case c.MaxObjectSize == 0:
		c.MaxObjectSize = DefaultMaxObjectSize
	case c.MaxObjectSize < 0:
		c.MaxObjectSize = int(^uint(0) >> 1)
	}
	switch {
	case c.MaxRevalidations == 0:
		c.MaxRevalidations = DefaultMaxRevalidations
	case c.MaxRevalidations < 0:
		c.MaxRevalidations = int(^uint(0) >> 1)
	}
	c.QueryIgnore = slices.Clone(c.QueryIgnore)
	c.SessionCookies = slices.Clone(c.SessionCookies)
	c.Vary = canonicalNames(c.Vary)
	if c.Driver == nil {
		c.Driver = NewDriverLRUBytes(DefaultDriverSize, DefaultDriverBytes)
	}
	return c
}
