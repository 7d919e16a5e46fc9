package microcache

import (
	"net/http"
	"strconv"
	"time"
)

// Object is a stored response. Objects are immutable once handed to a
// [Driver]: the middleware builds a new Object rather than modifying one,
// so they can be shared between goroutines without locks.
//
// The response header is kept in a compact form, not as an http.Header
// map (a map costs about 400 bytes even for one entry, more than the rest
// of a small object); read it with [Object.Header] and set it with
// [Object.SetHeader].
type Object struct {
	// Status is the response's status code (2xx or 3xx, never 206 or 304).
	Status int

	// Body is the response body, compressed by the configured [Compressor]
	// when Compressed is true.
	Body []byte

	// Compressed reports whether Body is compressed.
	Compressed bool

	// clock is the id of the clock that times were stamped on; 0 until
	// stamped.
	clock uint32

	// Size is the length of the uncompressed body in bytes.
	Size int

	// Epoch is the [Options.Epoch] the object belongs to.
	Epoch uint64

	// header holds the response headers as the client will receive them
	// (see SetHeader), and the Content-Length value once prepared.
	header headerFields

	// times are the object's instants on the clock of the Microcache that
	// built it, set by stamp before the object is shared.
	times timings

	// hot holds the expanded body of a compressed object while it is among
	// the recently expanded ones (see hotBodies); nil for other objects.
	hot *hotBody

	// The fields below are read on a hit only for objects from another
	// process; keeping them last keeps the hit's fields on fewer cache lines.

	// Date is when the backend produced the response; Age counts from it.
	Date time.Time

	// Expires is when the object stops being fresh.
	Expires time.Time

	// StaleWhileRevalidate and StaleIfError are how long after Expires the
	// object may still be served stale, in each of the two cases.
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
}

// Header returns a copy of the object's response header: every header a
// client receives when the object is replayed, apart from Content-Length,
// Age and the microcache header, which are set on each replay. Changing
// the copy does not change the object.
func (o *Object) Header() http.Header { return o.header.header() }

// SetHeader replaces the object's response header with the headers of h
// that may be replayed to clients: hop-by-hop headers (the fixed list of
// RFC 9110 section 7.6.1 and those named in Connection), microcache-*
// control headers, the microcache status header, Age, Content-Length and
// names without values are left out. The object keeps a copy of the
// header's bytes and nothing of h, so h may be changed afterwards.
// SetHeader must not be called once the object has been handed to a
// [Driver].
func (o *Object) SetHeader(h http.Header) { o.header = clientFields(h) }

// RetainUntil returns the last instant at which the object can still be
// served, fresh or stale. Drivers may discard it after that.
func (o *Object) RetainUntil() time.Time {
	return o.Expires.Add(max(o.StaleWhileRevalidate, o.StaleIfError))
}

// storedSize approximates the bytes the object occupies: body, header
// block and the Object itself.
func (o *Object) storedSize() int64 {
	return int64(cap(o.Body)) + o.header.byteSize() + objectOverhead
}

// objectOverhead is the heap size of an Object struct, measured with
// runtime.MemStats in memory_test.go.
const objectOverhead = 192

// prepare precomputes what replaying the object needs: its Content-Length
// value, kept with its header. It must run before the object is shared.
func (o *Object) prepare() { o.header = o.header.withContentLength(o.Size) }

// contentLength returns the object's Content-Length value, formatting it
// for objects that were not prepared (a hand-built one, say).
func (o *Object) contentLength() string {
	if cl := o.header.contentLength(); cl != "" {
		return cl
	}
	return strconv.Itoa(o.Size)
}
