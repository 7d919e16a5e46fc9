package microcache

import (
	"encoding/binary"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// headerFields is a response header in the compact, immutable form that
// stored objects and shared backend responses keep. The first encLen bytes
// of s hold the whole header in the encoding an encoded Object uses for it:
// the number of names, then for each name, in increasing order, its length
// and bytes, the number of its values, and each value's length and bytes,
// all numbers as minimal uvarints. A name may have no values: net/http
// sends nothing for it, but its presence suppresses what net/http would
// add (a Date, a sniffed Content-Type), so it is kept. The bytes after the encoding, when
// there are any, are the response's Content-Length value (see
// withContentLength). n is the number of values, so that a replay sizes its
// buffer at once.
//
// The bytes are copied from the header the fields are built from, so they
// keep nothing else alive, and the strings a replay hands out (values of s)
// keep nothing but these bytes alive. A header costs its bytes plus a few
// length bytes, against 32 bytes per value as string pairs, or about 400
// bytes for even a one-entry http.Header map. The encoding is built by
// fieldsFrom or validated by the decoder, so readers trust its form. A
// headerFields is never modified once built, so it may be read from many
// goroutines.
type headerFields struct {
	s      string
	encLen uint32
	n      uint32
}

// enc returns the encoded header, "" when there are no names.
func (f headerFields) enc() string { return f.s[:f.encLen] }

// contentLength returns the Content-Length value kept after the encoding,
// or "" when there is none.
func (f headerFields) contentLength() string { return f.s[f.encLen:] }

// withContentLength returns f with size as its Content-Length value, in one
// new block of bytes.
func (f headerFields) withContentLength(size int) headerFields {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(size), 10)
	b := make([]byte, 0, int(f.encLen)+len(d))
	b = append(b, f.enc()...)
	b = append(b, d...)
	// b is never written again, so the string may share its bytes.
	return headerFields{s: unsafe.String(unsafe.SliceData(b), len(b)), encLen: f.encLen, n: f.n}
}

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
		if !isReplayable(k) || containsFold(named, k) {
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

// fieldsFrom encodes the values of h under names (n values in all) in
// name order. names is sorted in place.
func fieldsFrom(h http.Header, names []string, n int) headerFields {
	if len(names) == 0 {
		return headerFields{}
	}
	slices.Sort(names)
	size := uvarintLen(len(names))
	for _, k := range names {
		size += uvarintLen(len(k)) + len(k) + uvarintLen(len(h[k]))
		for _, v := range h[k] {
			size += uvarintLen(len(v)) + len(v)
		}
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(h[k])))
		for _, v := range h[k] {
			b = appendString(b, v)
		}
	}
	// b is never written again, so the string may share its bytes.
	return headerFields{s: unsafe.String(unsafe.SliceData(b), len(b)), encLen: uint32(len(b)), n: uint32(n)}
}

// uvarintLen returns the length of x's uvarint encoding.
func uvarintLen(x int) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// fieldReader walks an encoded header. It trusts the encoding (see
// headerFields), so it does no checks of its own beyond Go's bounds checks.
type fieldReader struct{ s string }

func (r *fieldReader) uvarint() int {
	x := 0
	for shift := 0; ; shift += 7 {
		c := r.s[0]
		r.s = r.s[1:]
		x |= int(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
}

func (r *fieldReader) string() string {
	n := r.uvarint()
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// values returns the number of header values.
func (f headerFields) values() int { return int(f.n) }

// names returns the number of distinct header names.
func (f headerFields) names() int {
	if f.encLen == 0 {
		return 0
	}
	r := fieldReader{f.enc()}
	return r.uvarint()
}

// fill sets every name of f in h, replacing what h held under it, to a
// copy of its values made in vals, which must have room for f.values()
// strings. It returns how many of vals it used. Each name's slice is
// capped, so appending to it in h cannot reach the next name's values.
// The strings share f's bytes, which never change.
func (f headerFields) fill(h http.Header, vals []string) int {
	if f.encLen == 0 {
		return 0
	}
	r := fieldReader{f.enc()}
	used := 0
	for names := r.uvarint(); names > 0; names-- {
		name, start := r.string(), used
		for count := r.uvarint(); count > 0; count-- {
			vals[used] = r.string()
			used++
		}
		h[name] = vals[start:used:used]
	}
	return used
}

// header returns f as a new http.Header.
func (f headerFields) header() http.Header {
	if f.encLen == 0 {
		return http.Header{}
	}
	h := make(http.Header, f.names())
	f.fill(h, make([]string, f.n))
	return h
}

// has reports whether f holds a header of this name, compared without
// regard to case.
func (f headerFields) has(name string) bool {
	if f.encLen == 0 {
		return false
	}
	r := fieldReader{f.enc()}
	for names := r.uvarint(); names > 0; names-- {
		if strings.EqualFold(r.string(), name) {
			return true
		}
		for count := r.uvarint(); count > 0; count-- {
			r.string()
		}
	}
	return false
}

// byteSize returns the bytes f takes: names, values and their lengths, and
// the Content-Length value.
func (f headerFields) byteSize() int64 { return int64(len(f.s)) }

// isDroppedHeader reports whether a header is never replayed: hop-by-hop
// headers, and Age and Content-Length, which are set on replay. Names are
// compared case-insensitively, after a cheap length check.
func isDroppedHeader(name string) bool {
	switch len(name) {
	case 2:
		return strings.EqualFold(name, "Te")
	case 3:
		return strings.EqualFold(name, "Age")
	case 7:
		return strings.EqualFold(name, "Trailer") || strings.EqualFold(name, "Upgrade")
	case 10:
		return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive")
	case 14:
		return strings.EqualFold(name, "Content-Length")
	case 16:
		return strings.EqualFold(name, "Proxy-Connection")
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	case 18:
		return strings.EqualFold(name, "Proxy-Authenticate")
	case 19:
		return strings.EqualFold(name, "Proxy-Authorization")
	}
	return false
}

// scrubControlHeaders deletes every microcache-* header from h.
func scrubControlHeaders(h http.Header) {
	for k := range h {
		if isControlHeader(k) {
			delete(h, k)
		}
	}
}

// bodyAllowed reports whether a response with this status may carry a body
// (RFC 9110 sections 15.2, 15.3.5 and 15.4.5).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// with returns f plus the header name (canonical) with one value, in new
// fields; f is unchanged.
func (f headerFields) with(name, value string) headerFields {
	h := f.header()
	h[name] = []string{value}
	return clientFields(h)
}
