package microcache

import (
	"math"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Response control headers. A backend sets them on its response to steer the
// cache for that URL; the middleware matches their names case-insensitively
// and removes every header whose name starts with "microcache-" before the
// response reaches a client. Durations (N) are whole seconds or a Go
// duration such as "500ms"; flags take "1" (any value strconv.ParseBool
// accepts as true). A malformed, negative or overflowing value is ignored and
// the [Config] value applies.
const (
	HeaderCache                 = "Microcache-Cache"                   // "1": cache this response even with Config.Nocache
	HeaderNocache               = "Microcache-Nocache"                 // "1": do not cache this response; pass the URL through from now on
	HeaderTTL                   = "Microcache-Ttl"                     // N: overrides Config.TTL
	HeaderStaleIfError          = "Microcache-Stale-If-Error"          // N: overrides Config.StaleIfError
	HeaderStaleWhileRevalidate  = "Microcache-Stale-While-Revalidate"  // N: overrides Config.StaleWhileRevalidate
	HeaderStaleRecache          = "Microcache-Stale-Recache"           // "1": turns Config.StaleRecache on
	HeaderNoStaleRecache        = "Microcache-No-Stale-Recache"        // "1": turns Config.StaleRecache off
	HeaderCollapsedForwarding   = "Microcache-Collapsed-Forwarding"    // "1": turns Config.CollapsedForwarding on
	HeaderNoCollapsedForwarding = "Microcache-No-Collapsed-Forwarding" // "1": turns Config.CollapsedForwarding off
	HeaderVary                  = "Microcache-Vary"                    // "h1, h2": request headers that select a variant, like Vary
	HeaderVaryQuery             = "Microcache-Vary-Query"              // "p1, p2": query parameters that select a variant
	HeaderTags                  = "Microcache-Tags"                    // "t1, t2": tags (surrogate keys) for Microcache.PurgeTag
)

// HeaderStatus is the response header set when [Config.Exposed] is true. Its
// value is one of [StatusHit], [StatusMiss] or [StatusStale].
const HeaderStatus = "Microcache"

// Values of [HeaderStatus].
const (
	StatusHit   = "HIT"   // served from a fresh stored object
	StatusMiss  = "MISS"  // served by the backend
	StatusStale = "STALE" // served from a stale stored object
)

const controlPrefix = "microcache-"

// isControlHeader reports whether name starts with "microcache-" in any case.
func isControlHeader(name string) bool {
	return len(name) >= len(controlPrefix) && strings.EqualFold(name[:len(controlPrefix)], controlPrefix)
}

// responseTraits is what one backend response says about caching, read in a
// single pass over its headers.
type responseTraits struct {
	cache, nocache bool // microcache-cache / microcache-nocache
	setsCookie     bool // Set-Cookie present
	private        bool // Cache-Control: private or no-store
	varyAll        bool // Vary: *

	ttl, staleIfError, staleWhileRevalidate          time.Duration
	hasTTL, hasStaleIfError, hasStaleWhileRevalidate bool
	staleRecache, noStaleRecache                     bool
	collapsed, noCollapsed                           bool

	vary      []string // canonical header names from Vary and microcache-vary
	varyQuery []string // parameter names from microcache-vary-query
	tags      []string // tags from microcache-tags
}

// readTraits parses the caching-relevant headers of a response.
func readTraits(h http.Header) responseTraits {
	var t responseTraits
	t.scan(h, false)
	return t
}

// scan reads the caching-relevant headers of h into t in one pass, and with
// scrub also deletes the microcache-* headers from h. Names are compared
// case-insensitively, since handlers may write to the map directly.
func (t *responseTraits) scan(h http.Header, scrub bool) {
	for name, values := range h {
		if !isControlHeader(name) {
			switch {
			case len(name) == len("Set-Cookie") && strings.EqualFold(name, "Set-Cookie"):
				t.setsCookie = t.setsCookie || len(values) > 0
			case len(name) == len("Cache-Control") && strings.EqualFold(name, "Cache-Control"):
				t.private = t.private || hasToken(values, "private") || hasToken(values, "no-store")
			case len(name) == len("Vary") && strings.EqualFold(name, "Vary"):
				t.vary = appendNames(t.vary, values, &t.varyAll)
			}
			continue
		}
		if scrub {
			delete(h, name) // deleting the current entry during range is allowed
		}
		if len(values) == 0 {
			continue
		}
		t.control(strings.ToLower(name[len(controlPrefix):]), values)
	}
}

// control applies one microcache-* header, named by its lower-case suffix.
func (t *responseTraits) control(suffix string, values []string) {
	v := strings.TrimSpace(values[0])
	switch suffix {
	case "cache":
		t.cache = parseFlag(v)
	case "nocache":
		t.nocache = parseFlag(v)
	case "ttl":
		t.ttl, t.hasTTL = parseDuration(v)
	case "stale-if-error":
		t.staleIfError, t.hasStaleIfError = parseDuration(v)
	case "stale-while-revalidate":
		t.staleWhileRevalidate, t.hasStaleWhileRevalidate = parseDuration(v)
	case "stale-recache":
		t.staleRecache = parseFlag(v)
	case "no-stale-recache":
		t.noStaleRecache = parseFlag(v)
	case "collapsed-forwarding":
		t.collapsed = parseFlag(v)
	case "no-collapsed-forwarding":
		t.noCollapsed = parseFlag(v)
	case "vary":
		t.vary = appendNames(t.vary, values, nil)
	case "vary-query":
		t.varyQuery = appendTokens(t.varyQuery, values)
	case "tags":
		t.tags = appendTokens(t.tags, values)
	}
}

// parseFlag reports whether v is a true boolean ("1", "true", ...);
// anything else, malformed values included, is false.
func parseFlag(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// parseDuration parses whole seconds ("30") or a Go duration ("500ms").
// ok is false for malformed, negative or overflowing values.
func parseDuration(v string) (d time.Duration, ok bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt64/int64(time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}

// hasToken reports whether any of the comma-separated values contains token,
// compared case-insensitively; a token may carry a "=..." argument.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if i := strings.IndexByte(part, '='); i >= 0 {
				part = strings.TrimSpace(part[:i])
			}
			if strings.EqualFold(part, token) {
				return true
			}
		}
	}
	return false
}

// appendTokens appends the non-empty comma-separated tokens of values to
// dst, skipping ones already present.
func appendTokens(dst []string, values []string) []string {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" && !slices.Contains(dst, part) {
				dst = append(dst, part)
			}
		}
	}
	return dst
}

// appendNames is appendTokens for header names: they are canonicalized, and
// "*" sets *all (when all is not nil) instead of being appended.
func appendNames(dst []string, values []string, all *bool) []string {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			switch {
			case part == "":
			case part == "*":
				if all != nil {
					*all = true
				}
			default:
				if name := textproto.CanonicalMIMEHeaderKey(part); !slices.Contains(dst, name) {
					dst = append(dst, name)
				}
			}
		}
	}
	return dst
}

// canonicalNames returns the canonical, de-duplicated form of header names.
func canonicalNames(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	return appendNames(nil, names, nil)
}
