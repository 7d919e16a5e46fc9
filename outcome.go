package microcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OutcomeKind is how the middleware answered a request.
type OutcomeKind uint8

// The kinds of [Outcome].
const (
	// OutcomeHit: answered from a fresh stored object.
	OutcomeHit OutcomeKind = iota + 1
	// OutcomeStale: answered from a stale stored object, while it is
	// refreshed in the background (stale-while-revalidate) or in place of
	// a backend failure (stale-if-error; see Outcome.ForError).
	OutcomeStale
	// OutcomeMiss: answered by the backend through the cache: buffered,
	// and stored when it could be (see Outcome.Stored).
	OutcomeMiss
	// OutcomePass: passed straight through to the backend, uncached both
	// ways (see Outcome.Pass for why).
	OutcomePass
)

var outcomeKindNames = [...]string{"unknown", "hit", "stale", "miss", "pass"}

// String returns "hit", "stale", "miss" or "pass".
func (k OutcomeKind) String() string {
	if int(k) >= len(outcomeKindNames) {
		return outcomeKindNames[0]
	}
	return outcomeKindNames[k]
}

// PassReason is why a request was passed straight through.
type PassReason uint8

// The reasons for [OutcomePass].
const (
	PassNone          PassReason = iota
	PassMethod                   // a method other than GET and HEAD
	PassUpgrade                  // a protocol upgrade (Connection: upgrade)
	PassCredentials              // the request carries Authorization
	PassSessionCookie            // the request carries a cookie named in Config.SessionCookies
	PassBody                     // the request carries a body
	PassPredicate                // Config.Passthrough returned true
	PassUncacheable              // the URL is known to be uncacheable (the origin said so, or hit-for-pass)
	PassKeyTooLong               // the URL's key would exceed 8 KiB
	PassHead                     // a HEAD request with no stored GET response to answer it
	PassDriverError              // the driver failed; the backend answered
)

var passReasonNames = [...]string{"", "method", "upgrade", "credentials", "session-cookie", "body", "predicate", "uncacheable", "key-too-long", "head-miss", "driver-error"}

// String returns a short lower-case name for p, such as "credentials", as
// used in the Cache-Status header's detail; "" for PassNone.
func (p PassReason) String() string {
	if int(p) >= len(passReasonNames) {
		return "unknown"
	}
	return passReasonNames[p]
}

// MissReason says what the cache held for a request it could not answer.
type MissReason uint8

// The reasons for [OutcomeMiss] (and RFC 9211's "fwd" values they map to).
const (
	MissURI   MissReason = iota + 1 // nothing for the URL ("uri-miss")
	MissVary                        // the URL, but not the variant this request selects ("vary-miss")
	MissStale                       // an object past its freshness and revalidation windows ("stale")
)

var missReasonNames = [...]string{"miss", "uri-miss", "vary-miss", "stale"}

// String returns RFC 9211's name for m: "uri-miss", "vary-miss" or
// "stale" ("miss" for the zero value).
func (m MissReason) String() string {
	if int(m) >= len(missReasonNames) {
		return missReasonNames[0]
	}
	return missReasonNames[m]
}

// Outcome describes how the middleware answered one request: every request
// it handles ends in exactly one. [Stats] are counted from outcomes, the
// Microcache and Cache-Status headers are set from them, and
// [Config.Observe] receives them.
type Outcome struct {
	Kind OutcomeKind

	// Pass says why, for OutcomePass.
	Pass PassReason

	// Miss says what the cache held, for OutcomeMiss, and for OutcomeStale
	// with ForError.
	Miss MissReason

	// ForError is true for OutcomeStale when the stale object answered in
	// place of a backend failure.
	ForError bool

	// BackendStatus is the status the backend answered with, for
	// OutcomeMiss and for OutcomeStale with ForError; 0 when it gave none
	// (a timeout, a panic, or no call at all).
	BackendStatus int

	// Stored is true for OutcomeMiss when the response was stored (for a
	// request collapsed onto another's call, when that call's response
	// was to be stored: the Store is the other request's; the
	// Cache-Status header's "stored", sent before the Store is made, also
	// says only that);
	// Collapsed when it came from another request's backend call
	// (collapsed forwarding); Streamed when it streamed to the client
	// unstored (it outgrew Config.MaxObjectSize, or the handler flushed).
	Stored, Collapsed, Streamed bool

	// TTL is, for OutcomeHit and OutcomeStale, how long the object stays
	// fresh (negative: how long ago it went stale), and for a stored
	// OutcomeMiss, its time to live. Zero otherwise.
	TTL time.Duration

	// Status is the status code the client got, when the middleware knows
	// it (0 for a panic).
	Status int
}

// statusValue returns the Microcache header's value for o.
func (o *Outcome) statusValue() string {
	switch o.Kind {
	case OutcomeHit:
		return StatusHit
	case OutcomeStale:
		return StatusStale
	}
	return StatusMiss
}

// cacheStatus returns the RFC 9211 Cache-Status value for o, named name:
// "name; hit; ttl=12", "name; fwd=uri-miss; fwd-status=200; stored",
// "name; fwd=stale; fwd-status=503", "name; fwd=bypass;
// detail=credentials"... It allocates once.
func (o *Outcome) cacheStatus(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 64)
	b.WriteString(name)
	num := func(prefix string, n int64) {
		var digits [20]byte
		b.WriteString(prefix)
		b.Write(strconv.AppendInt(digits[:0], n, 10))
	}
	switch o.Kind {
	case OutcomeHit:
		num("; hit; ttl=", seconds(o.TTL))
	case OutcomeStale:
		if !o.ForError {
			num("; hit; ttl=", seconds(o.TTL))
			b.WriteString("; detail=revalidating")
			break
		}
		b.WriteString("; fwd=stale")
		if o.BackendStatus != 0 {
			num("; fwd-status=", int64(o.BackendStatus))
		}
		num("; ttl=", seconds(o.TTL))
	case OutcomeMiss:
		b.WriteString("; fwd=")
		b.WriteString(o.Miss.String())
		if o.BackendStatus != 0 {
			num("; fwd-status=", int64(o.BackendStatus))
		}
		if o.Stored {
			b.WriteString("; stored")
		}
		if o.Collapsed {
			b.WriteString("; collapsed")
		}
		if o.Streamed {
			b.WriteString("; detail=streamed")
		}
	case OutcomePass:
		if o.Pass == PassMethod {
			b.WriteString("; fwd=method")
			break
		}
		b.WriteString("; fwd=bypass; detail=")
		b.WriteString(o.Pass.String())
	}
	return b.String()
}

// seconds returns d in whole seconds, rounded away from zero, so that a
// fresh object never shows ttl=0 and a stale one never shows ttl=0 either.
func seconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	switch r := d % time.Second; {
	case r > 0:
		s++
	case r < 0:
		s--
	}
	return s
}

// setOutcomeHeaders sets the Microcache header (with Config.Exposed) and
// the Cache-Status header (with Config.CacheStatus) for o in h.
func (m *Microcache) setOutcomeHeaders(h http.Header, o *Outcome) {
	if m.cfg.Exposed {
		h[HeaderStatus] = []string{o.statusValue()}
	}
	if m.cfg.CacheStatus != "" {
		h["Cache-Status"] = []string{o.cacheStatus(m.cfg.CacheStatus)}
	}
}

// report counts one request's outcome and hands it to Config.Observe. It is
// the one place where requests are counted.
func (m *Microcache) report(r *http.Request, o *Outcome) {
	c := m.stats.stripe()
	switch o.Kind {
	case OutcomeHit:
		c.hits.Add(1)
	case OutcomeStale:
		c.stales.Add(1)
	case OutcomeMiss:
		c.misses.Add(1)
	case OutcomePass:
		c.passes.Add(1)
	}
	if m.cfg.Observe != nil {
		m.cfg.Observe(r, *o)
	}
}
