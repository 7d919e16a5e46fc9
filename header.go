package microcache

import (
	"net/http"
	"slices"
	"strings"
)

// headerFields is a response header in the compact, immutable form that
// stored objects and shared backend responses keep: name/value pairs laid
// out flat (name, value, name, value, ...), ordered by name, with a name
// repeated once per value and the values of one name in their original
// order. Names without values are not kept (net/http sends nothing for
// them).
//
// One slice holds the whole header: 32 bytes per value, against about 400
// bytes for even a one-entry http.Header map. The strings are shared with
// the header the fields were built from, never copied. A headerFields is
// never modified once built, so it may be read from many goroutines.
type headerFields []string

// clientFields returns the fields of a recorded backend header that are fit
// to replay: without microcache-* control headers, the microcache status
// header, hop-by-hop headers (RFC 9110 section 7.6.1: the fixed list and
// those named in Connection), Age and Content-Length (both are set on every
// replay). Set-Cookie is kept for the client that caused the response;
// responses that set cookies are never stored or shared.
func clientFields(h http.Header) headerFields {
	named := appendTokens(nil, h["Connection"]) // hop-by-hop by name
	var buf [16]string
	names := buf[:0]
	n := 0
	for k, v := range h {
		if len(v) == 0 || !isReplayable(k) || containsFold(named, k) {
			continue
		}
		names = append(names, k)
		n += len(v)
	}
	return fieldsFrom(h, names, n)
}

// isReplayable reports whether a header of this name may be stored and
// replayed to clients: it is neither a control header, nor the cache's own
// status header (a backend's, or an inner cache's, would otherwise be
// replayed as this cache's), nor one of the headers dropped on replay (see
// isDroppedHeader).
func isReplayable(name string) bool {
	return !isControlHeader(name) && !isDroppedHeader(name) &&
		!(len(name) == len(HeaderStatus) && strings.EqualFold(name, HeaderStatus))
}

// containsFold reports whether names holds name, compared without regard
// to case.
func containsFold(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// fieldsFrom lays out the values of h under names (n values in all) in
// name order. names is sorted in place.
func fieldsFrom(h http.Header, names []string, n int) headerFields {
	if n == 0 {
		return nil
	}
	slices.Sort(names)
	f := make(headerFields, 0, 2*n)
	for _, k := range names {
		for _, v := range h[k] {
			f = append(f, k, v)
		}
	}
	return f
}

// values returns the number of header values.
func (f headerFields) values() int { return len(f) / 2 }

// names returns the number of distinct header names.
func (f headerFields) names() int {
	n := 0
	for i := 0; i < len(f); i += 2 {
		if i == 0 || f[i] != f[i-2] {
			n++
		}
	}
	return n
}

// fill sets every name of f in h, replacing what h held under it, to a
// copy of its values made in vals, which must have room for f.values()
// strings. It returns how many of vals it used. Each name's slice is
// capped, so appending to it in h cannot reach the next name's values.
func (f headerFields) fill(h http.Header, vals []string) int {
	used := 0
	for i := 0; i+1 < len(f); i += 2 {
		name, start := f[i], used
		vals[used] = f[i+1]
		used++
		for ; i+3 < len(f) && f[i+2] == name; i += 2 {
			vals[used] = f[i+3]
			used++
		}
		h[name] = vals[start:used:used]
	}
	return used
}

// header returns f as a new http.Header.
func (f headerFields) header() http.Header {
	if len(f) == 0 {
		return http.Header{}
	}
	h := make(http.Header, f.names())
	f.fill(h, make([]string, f.values()))
	return h
}

// has reports whether f holds a header of this name, compared without
// regard to case.
func (f headerFields) has(name string) bool {
	for i := 0; i < len(f); i += 2 {
		if strings.EqualFold(f[i], name) {
			return true
		}
	}
	return false
}

// byteSize returns the bytes f's names and values take, counting each pair
// slot in the slice.
func (f headerFields) byteSize() int64 {
	n := int64(cap(f)) * 16
	for _, s := range f {
		n += int64(len(s))
	}
	return n
}
