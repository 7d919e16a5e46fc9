// Package acceptlang normalises the Accept-Language request header to one
// of the languages a service supports. Placed in front of a cache that
// varies on the header (a response saying "Vary: Accept-Language" or
// "microcache-vary: Accept-Language", or Config.Vary), it makes the cache
// keep one variant per supported language instead of one per distinct
// header value that browsers send, of which there are thousands.
//
//	h := acceptlang.Normalize(language.English, language.French, language.German)(cache.Middleware(app))
//
// It is a separate module, so that the microcache module does not require
// golang.org/x/text.
package acceptlang

import (
	"hash/maphash"
	"net/http"
	"strings"
	"sync/atomic"

	"golang.org/x/text/language"
)

// header is the canonical form of the header's name, the key it has in an
// [http.Header].
const header = "Accept-Language"

// maxLen bounds the header value that is parsed: browsers send less than a
// few hundred bytes, and parsing costs time and memory in proportion to
// the length, up to the server's header limit (1 MiB by default).
const maxLen = 1 << 10

// Normalize returns middleware that rewrites the request's Accept-Language
// header to the best match among supported, a service's languages with
// its default first, and calls the next handler with it.
//
// The next handler sees exactly one Accept-Language value: the String form
// of one of the supported tags, as given (language.French is "fr",
// language.BrazilianPortuguese "pt-BR"). It is the one that
// [language.Matcher] finds the best for the languages of the header,
// weighed by their q-values: regional variants and close languages match
// (fr-CA and Breton br match fr, de-AT and Swiss German gsw match de, en-IN
// matches en), and languages with q=0 are left out. It is supported[0] when the header is
// absent or empty, when it does not parse ([language.ParseAcceptLanguage]),
// when it is longer than 1 KiB (it is then not read), when it only has
// "*", and when none of its languages matches any supported one. A header
// sent on several lines is read as one list.
//
// The caller's request is not changed: when the value has to change, the
// next handler gets a shallow copy of the request with a copy of its
// header map. When the header already has the chosen value (a single
// "fr", say), the request is passed on as it is.
//
// The choice is remembered for a few hundred recently seen header values
// (up to 256 bytes each), so that the common ones are not parsed again;
// memory stays bounded whatever clients send.
//
// Put it outside the cache, so that the cache keys on the rewritten value:
//
//	acceptlang.Normalize(en, fr, de)(cache.Middleware(app))
//
// A response of app then says "Vary: Accept-Language", and the cache keeps
// at most len(supported) variants of a URL. ("Vary: Accept-Language" also
// tells CDNs and browsers, which see the header the client sent, to vary;
// "microcache-vary: Accept-Language" varies only the microcache.)
//
// Normalize panics, with a message starting "acceptlang: ", when supported
// is empty; the middleware panics when given a nil handler. The returned
// middleware and the handlers it makes are safe for concurrent use.
func Normalize(supported ...language.Tag) func(http.Handler) http.Handler {
	if len(supported) == 0 {
		panic("acceptlang: Normalize needs at least one supported language")
	}
	m := &matcher{
		matcher: language.NewMatcher(supported),
		values:  make([]string, len(supported)),
		seed:    maphash.MakeSeed(),
	}
	for i, tag := range supported {
		m.values[i] = tag.String()
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("acceptlang: Normalize middleware called with a nil handler")
		}
		return &handler{m: m, next: next}
	}
}

// matcher chooses among the supported languages. Normalize builds it;
// afterwards only memo changes.
type matcher struct {
	matcher language.Matcher
	values  []string // the header value of each supported language

	// memo remembers the choice for recently seen header values, since
	// parsing and matching cost several times more than the rest, and a
	// site's clients send few distinct values. A value has one slot,
	// chosen by its hash; a new value replaces the slot's, so memory stays
	// bounded (memoSlots values of at most memoMaxLen bytes) whatever
	// clients send.
	seed maphash.Seed
	memo [memoSlots]atomic.Pointer[memoEntry]
}

const (
	memoSlots  = 256
	memoMaxLen = 256 // longer values are parsed every time
)

type memoEntry struct {
	value string
	index int
}

// match returns the index of the supported language that best matches the
// Accept-Language values, and 0 for the default.
func (m *matcher) match(values []string) int {
	switch len(values) {
	case 0:
		return 0
	case 1:
	default:
		return m.choose(strings.Join(values, ",")) // one list (RFC 9110 §5.3)
	}
	value := values[0]
	if len(value) > memoMaxLen {
		return m.choose(value)
	}
	slot := &m.memo[maphash.String(m.seed, value)%memoSlots]
	if e := slot.Load(); e != nil && e.value == value {
		return e.index
	}
	i := m.choose(value)
	// A copy, so as not to keep the request's memory alive.
	slot.Store(&memoEntry{value: strings.Clone(value), index: i})
	return i
}

// choose parses and matches an Accept-Language list.
func (m *matcher) choose(list string) int {
	if len(list) > maxLen {
		return 0
	}
	tags, _, err := language.ParseAcceptLanguage(list)
	if err != nil || len(tags) == 0 {
		return 0
	}
	_, i, confidence := m.matcher.Match(tags...)
	if confidence == language.No {
		// Match may then pick a language by script (es -> en, both Latin):
		// the default is more predictable.
		return 0
	}
	return i
}

type handler struct {
	m    *matcher
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := r.Header[header]
	want := h.m.values[h.m.match(got)]
	if len(got) == 1 && got[0] == want {
		h.next.ServeHTTP(w, r)
		return
	}
	r2 := r.WithContext(r.Context()) // a shallow copy
	r2.Header = r.Header.Clone()
	if r2.Header == nil {
		r2.Header = make(http.Header, 1)
	}
	r2.Header[header] = []string{want}
	h.next.ServeHTTP(w, r2)
}
