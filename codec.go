package microcache

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"
)

// ErrCorrupt is wrapped by every error that [Options.UnmarshalBinary] and
// [Object.UnmarshalBinary] return: the bytes are not a valid encoding of
// this version (truncated, trailing bytes, unknown magic or version, or a
// field out of range). Test for it with errors.Is.
var ErrCorrupt = errors.New("microcache: corrupt encoding")

var (
	_ encoding.BinaryMarshaler   = Options{}
	_ encoding.BinaryUnmarshaler = (*Options)(nil)
	_ encoding.BinaryMarshaler   = (*Object)(nil)
	_ encoding.BinaryUnmarshaler = (*Object)(nil)
)

// Encoding prefixes: a magic byte naming the record kind, then a version.
const (
	optionsMagic   = 'O'
	optionsVersion = 2
	objectMagic    = 'B'
	objectVersion  = 3
)

// Flag bits.
const (
	optUncacheable = 1 << iota
	optStaleRecache
	optCollapsedForwarding
	optAllFlags = optUncacheable | optStaleRecache | optCollapsedForwarding

	objCompressed = 1
	objAllFlags   = objCompressed
)

// MarshalBinary encodes o for a [Driver] that stores bytes. It implements
// [encoding.BinaryMarshaler] and never fails.
//
// The format is versioned (it starts with the magic byte 'O' and a version
// byte) and canonical: equal Options encode to equal bytes, and the bytes
// decode the same in every process built with the same version of this
// package. Nil and empty Vary or VaryQuery both decode as nil.
func (o Options) MarshalBinary() ([]byte, error) {
	n := 2 + 5*binary.MaxVarintLen64 + 1 + 2*binary.MaxVarintLen64
	for _, s := range o.Vary {
		n += binary.MaxVarintLen64 + len(s)
	}
	for _, s := range o.VaryQuery {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, optionsMagic, optionsVersion)
	b = binary.AppendUvarint(b, o.Epoch)
	var flags byte
	if o.Uncacheable {
		flags |= optUncacheable
	}
	if o.StaleRecache {
		flags |= optStaleRecache
	}
	if o.CollapsedForwarding {
		flags |= optCollapsedForwarding
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(o.TTL))
	b = binary.AppendVarint(b, int64(o.StaleIfError))
	b = binary.AppendVarint(b, int64(o.StaleWhileRevalidate))
	b = binary.AppendUvarint(b, uint64(max(o.Strikes, 0)))
	b = appendStrings(b, o.Vary)
	b = appendStrings(b, o.VaryQuery)
	return b, nil
}

// UnmarshalBinary decodes data, as produced by [Options.MarshalBinary], into
// o. It implements [encoding.BinaryUnmarshaler].
//
// Decoding is strict: any input that MarshalBinary of this version could
// not have produced is rejected with an error wrapping [ErrCorrupt], and o
// is left unchanged. It never panics, allocates in proportion to len(data)
// at most, and the result does not alias data.
func (o *Options) UnmarshalBinary(data []byte) error {
	d := decoder{b: data, kind: "options"}
	d.header(optionsMagic, optionsVersion)
	var v Options
	v.Epoch = d.uvarint("epoch")
	flags := d.byte("flags")
	if d.err == nil && flags&^optAllFlags != 0 {
		d.fail("unknown flags %#x", flags)
	}
	v.Uncacheable = flags&optUncacheable != 0
	v.StaleRecache = flags&optStaleRecache != 0
	v.CollapsedForwarding = flags&optCollapsedForwarding != 0
	v.TTL = time.Duration(d.varint("ttl"))
	v.StaleIfError = time.Duration(d.varint("stale-if-error"))
	v.StaleWhileRevalidate = time.Duration(d.varint("stale-while-revalidate"))
	strikes := d.uvarint("strikes")
	if d.err == nil && strikes > math.MaxInt32 {
		d.fail("strikes %d out of range", strikes)
	}
	v.Strikes = int(strikes)
	v.Vary = d.strings("vary")
	v.VaryQuery = d.strings("vary-query")
	if err := d.finish(); err != nil {
		return err
	}
	*o = v
	return nil
}

// MarshalBinary encodes o for a [Driver] that stores bytes. It implements
// [encoding.BinaryMarshaler].
//
// Every exported field is encoded. The format is versioned (it starts with
// the magic byte 'B' and a version byte) and canonical: header names are
// sorted, so equal objects encode to equal bytes whatever the map order,
// and the bytes decode the same in every process built with the same
// version of this package. Date and Expires keep their instant (to the
// nanosecond, over the whole range of time.Time) but not their location or
// monotonic reading; the zero time stays zero.
//
// It returns an error (not wrapping [ErrCorrupt]) for an object that
// [Object.UnmarshalBinary] would reject: a nil object, a Status outside
// 100..999, a negative Size, or an uncompressed Body whose length is not
// Size.
func (o *Object) MarshalBinary() ([]byte, error) {
	if o == nil {
		return nil, errors.New("microcache: cannot encode a nil *Object")
	}
	if msg := o.invalid(); msg != "" {
		return nil, errors.New("microcache: cannot encode object: " + msg)
	}
	n := 2 + 9*binary.MaxVarintLen64 + 4 + len(o.Body) + 1 + int(o.header.encLen)
	b := make([]byte, 0, n)
	b = append(b, objectMagic, objectVersion)
	b = binary.AppendUvarint(b, uint64(o.Status))
	var flags byte
	if o.Compressed {
		flags |= objCompressed
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(o.Size))
	b = binary.AppendUvarint(b, o.Epoch)
	b = appendTime(b, o.Date)
	b = appendTime(b, o.Expires)
	b = binary.AppendVarint(b, int64(o.StaleWhileRevalidate))
	b = binary.AppendVarint(b, int64(o.StaleIfError))
	b = appendFields(b, o.header)
	b = binary.AppendUvarint(b, uint64(len(o.Body)))
	b = append(b, o.Body...)
	return b, nil
}

// invalid describes what makes o unencodable, or returns "".
func (o *Object) invalid() string {
	switch {
	case o.Status < 100 || o.Status > 999:
		return fmt.Sprintf("status %d outside 100..999", o.Status)
	case o.Size < 0:
		return fmt.Sprintf("negative size %d", o.Size)
	case !o.Compressed && len(o.Body) != o.Size:
		return fmt.Sprintf("uncompressed body of %d bytes but size %d", len(o.Body), o.Size)
	}
	return ""
}

// UnmarshalBinary decodes data, as produced by [Object.MarshalBinary], into
// o, replacing all of it, and prepares o to be served. It implements
// [encoding.BinaryUnmarshaler].
//
// Decoding is strict: any input that MarshalBinary of this version could
// not have produced is rejected with an error wrapping [ErrCorrupt], and o
// is left unchanged. It never panics and allocates in proportion to
// len(data) at most. Body and Header are copied, never aliasing data, so the
// caller may reuse data afterwards. An empty Body or Header decodes as nil;
// times decode in the Local location.
func (o *Object) UnmarshalBinary(data []byte) error {
	d := decoder{b: data, kind: "object"}
	d.header(objectMagic, objectVersion)
	var v Object
	status := d.uvarint("status")
	if d.err == nil && (status < 100 || status > 999) {
		d.fail("status %d outside 100..999", status)
	}
	v.Status = int(status)
	flags := d.byte("flags")
	if d.err == nil && flags&^objAllFlags != 0 {
		d.fail("unknown flags %#x", flags)
	}
	v.Compressed = flags&objCompressed != 0
	size := d.uvarint("size")
	if d.err == nil && size > math.MaxInt {
		d.fail("size %d too large", size)
	}
	v.Size = int(size)
	v.Epoch = d.uvarint("epoch")
	v.Date = d.time("date")
	v.Expires = d.time("expires")
	v.StaleWhileRevalidate = time.Duration(d.varint("stale-while-revalidate"))
	v.StaleIfError = time.Duration(d.varint("stale-if-error"))
	v.header = d.fields(v.Size)
	v.Body = d.bytes("body")
	if d.err == nil && !v.Compressed && len(v.Body) != v.Size {
		d.fail("uncompressed body of %d bytes but size %d", len(v.Body), v.Size)
	}
	if err := d.finish(); err != nil {
		return err
	}
	*o = v
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// appendFields encodes f as its number of names, then each name followed
// by its values (a count, then each value): f's own form (see
// headerFields), so it is copied as it is.
func appendFields(b []byte, f headerFields) []byte {
	if f.encLen == 0 {
		return append(b, 0) // no names
	}
	return append(b, f.enc()...)
}

// appendTime encodes the zero time as a single 0 byte, and any other time
// as 1, its Unix seconds (varint) and its nanoseconds (uvarint). Unlike
// UnixNano this covers every year a time.Time can hold.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decoder reads an encoding front to back. After the first error every
// method returns a zero value and the error sticks.
type decoder struct {
	b    []byte
	kind string // "options" or "object", for messages
	err  error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: "+format, append([]any{ErrCorrupt, d.kind}, args...)...)
	}
}

func (d *decoder) header(magic, version byte) {
	switch {
	case len(d.b) < 2:
		d.fail("%d bytes, too short for a header", len(d.b))
	case d.b[0] != magic:
		d.fail("magic byte %#x, want %q", d.b[0], magic)
	case d.b[1] != version:
		d.fail("unknown version %d (this package reads version %d)", d.b[1], version)
	default:
		d.b = d.b[2:]
	}
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated before %s", what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.fail("truncated in %s", what)
		return 0
	case n < 0:
		d.fail("%s overflows 64 bits", what)
		return 0
	case n > 1 && d.b[n-1] == 0:
		// binary.Uvarint accepts padded encodings; the canonical
		// form never ends in a zero byte.
		d.fail("%s is not minimally encoded", what)
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint(what string) int64 {
	ux := d.uvarint(what) // zig-zag, as binary.AppendVarint writes
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// length reads a length or count of items each at least min bytes long,
// checking it against the bytes that remain.
func (d *decoder) length(what string, min int) int {
	n := d.uvarint(what)
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail("%s %d exceeds the %d bytes left", what, n, len(d.b))
		return 0
	}
	return int(n)
}

// raw returns the next n bytes, which the caller must copy.
func (d *decoder) raw(what string, min int) []byte {
	n := d.length(what+" length", min)
	if d.err != nil {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) bytes(what string) []byte {
	p := d.raw(what, 1)
	if len(p) == 0 {
		return nil
	}
	return bytes.Clone(p)
}

func (d *decoder) string(what string) string {
	return string(d.raw(what, 1))
}

func (d *decoder) strings(what string) []string {
	n := d.length(what+" count", 1) // each string has a length byte at least
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.string(what)
	}
	return ss
}

// fields decodes a header written by appendFields. Names must be in
// strictly increasing order (a name may have no values), and replayable
// (see isReplayable): SetHeader keeps no other. The checks read the input
// in place; the header, once valid, is copied in one block, followed by
// size as its Content-Length value.
func (d *decoder) fields(size int) headerFields {
	start := d.b
	n := d.length("header name count", 2) // each name: length and value count
	if n == 0 {
		return headerFields{}.withContentLength(size)
	}
	values := 0
	var prev []byte
	for i := range n {
		name := d.raw("header name", 1)
		count := d.length("header value count", 1)
		switch {
		case d.err != nil:
		case i > 0 && bytes.Compare(name, prev) <= 0:
			d.fail("header name %q out of order after %q", name, prev)
		case !isReplayable(unsafe.String(unsafe.SliceData(name), len(name))):
			d.fail("header %q is never stored", name)
		}
		if d.err != nil {
			return headerFields{}
		}
		for range count {
			d.raw("header value", 1)
		}
		if d.err != nil {
			return headerFields{}
		}
		values += count
		prev = name
	}
	enc := start[:len(start)-len(d.b)]
	return headerFields{s: unsafe.String(unsafe.SliceData(enc), len(enc)), encLen: uint32(len(enc)), n: uint32(values)}.withContentLength(size)
}

func (d *decoder) time(what string) time.Time {
	switch flag := d.byte(what); {
	case d.err != nil:
		return time.Time{}
	case flag == 0:
		return time.Time{}
	case flag != 1:
		d.fail("%s flag %d, want 0 or 1", what, flag)
		return time.Time{}
	}
	sec := d.varint(what + " seconds")
	nsec := d.uvarint(what + " nanoseconds")
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.fail("%s nanoseconds %d out of range", what, nsec)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if t.IsZero() {
		d.fail("%s is the zero time but not encoded as such", what)
		return time.Time{}
	}
	return t
}
