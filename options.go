package microcache

import (
	"math/rand/v2"
	"time"
)

// Options are what the middleware learns about one URL from the backend's
// most recent response to a GET for it: whether it may be cached, for how
// long, and which request values select one of its variants. The zero value
// is not meaningful on its own; the middleware derives Options from
// [Config] and the response's microcache-* headers.
type Options struct {
	// Epoch identifies the generation of the URL's objects: an object is
	// used only if its Epoch equals this one. A successful POST, PUT,
	// PATCH or DELETE to the URL picks a new random Epoch, which purges
	// every variant at once.
	Epoch uint64

	// Vary lists the canonical request header names whose values select a
	// variant, from the response's Vary and microcache-vary headers plus
	// Config.Vary.
	Vary []string

	// VaryQuery lists the query parameter names whose values select a
	// variant, from the response's microcache-vary-query header.
	VaryQuery []string

	// TTL, StaleIfError and StaleWhileRevalidate are the durations the
	// response asked for (or the Config defaults).
	TTL                  time.Duration
	StaleIfError         time.Duration
	StaleWhileRevalidate time.Duration

	// Uncacheable is true when the origin said the URL's responses must
	// not be stored ("microcache-nocache: 1", Cache-Control private or
	// no-store, Vary: *, a streamed response), or when HitForPassAfter
	// answers in a row could not be stored (hit-for-pass). Such a URL is
	// passed straight through to the backend until a response says
	// otherwise.
	Uncacheable bool

	// Strikes counts the answers in a row, since the last one stored, that
	// could not be stored for a reason of their own request (a 4xx, a
	// cookie, an empty or truncated answer...): such an answer leaves the
	// URL's stored objects alone, and the HitForPassAfter-th makes the URL
	// Uncacheable.
	Strikes int

	// StaleRecache and CollapsedForwarding are the flags the response asked
	// for (or the Config defaults).
	StaleRecache        bool
	CollapsedForwarding bool
}

// HitForPassAfter is how many answers in a row that cannot be stored for a
// reason of their own request make a URL pass straight through (see
// [Options.Strikes]). One such answer alone never does: it must not take
// the stored object, or its stale-if-error fallback, from other clients.
const HitForPassAfter = 3

// newEpoch returns a random non-zero epoch. Epochs are random rather than
// counted so that a URL whose options were dropped and relearned can never
// match the objects of an earlier, purged epoch.
func newEpoch() uint64 {
	for {
		if e := rand.Uint64(); e != 0 {
			return e
		}
	}
}
