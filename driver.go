package microcache

import (
	"context"
	"net/http"
	"time"
)

// Driver stores the two kinds of record a [Microcache] keeps: per-key
// [Options], learned from the backend's most recent response for a URL, and
// [Object]s, the stored responses themselves. Options and objects live in
// separate namespaces: the same key string may name one of each.
//
// Implementations must be safe for concurrent use. Every method may return
// an error; the middleware then serves the request from the backend, stores
// nothing and reports the failure (see [ErrorMonitor]), so a failing driver
// never fails a request. Keys are opaque strings built by the middleware; an
// implementation may hash them (a remote driver shared by several processes
// must hash them the same way everywhere, for example with SHA-256).
//
// Objects handed to SetObject and returned by GetObject are shared, not
// copied: neither the driver nor the middleware modifies one after it has
// been stored. A driver that keeps bytes rather than pointers (Redis, say)
// encodes with [Object.MarshalBinary] and [Options.MarshalBinary].
type Driver interface {
	// GetOptions returns the options stored under key. ok is false when
	// there are none. The caller must not modify the slices of o: a driver
	// may share them between keys.
	GetOptions(ctx context.Context, key string) (o Options, ok bool, err error)

	// SetOptions stores o under key, replacing what was there.
	SetOptions(ctx context.Context, key string, o Options) error

	// GetObject returns the object stored under key, or nil when there is
	// none. The caller must not modify it.
	GetObject(ctx context.Context, key string) (*Object, error)

	// SetObject stores obj under key, replacing what was there. A driver
	// may drop the object once obj.RetainUntil() has passed.
	SetObject(ctx context.Context, key string, obj *Object) error

	// DeleteObject removes the object stored under key, if any.
	DeleteObject(ctx context.Context, key string) error

	// Len returns the number of objects currently stored, or -1 if the
	// driver cannot tell cheaply.
	Len() int
}

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

	// Uncacheable is true when the last backend response for the URL could
	// not be stored (for example it said "microcache-nocache: 1" or set a
	// cookie). Such a URL is passed straight through to the backend until a
	// response says otherwise.
	Uncacheable bool

	// StaleRecache and CollapsedForwarding are the flags the response asked
	// for (or the Config defaults).
	StaleRecache        bool
	CollapsedForwarding bool
}

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
