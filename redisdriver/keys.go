package redisdriver

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc64"
	"strings"
	"time"
	"unsafe"

	"github.com/httpimp/microcache"
)

// Key layout. Every key starts with Options.Prefix. A URL's records carry
// the Cluster hash tag {T}, T being a digest of the part of its URL key
// before the first '|' (all of it when there is none): a variant's object
// key is its URL key, '|', then the variant's values, so the part before
// its first '|' is the same, and all of one URL's records share a slot.
// Every other part of a name is a digest of the key it stands for, so
// names have a fixed length whatever the key (URL keys reach 8 KiB).
//
//	<prefix>{T}e:<id>   the URL's epoch, decimal
//	<prefix>{T}o:<id>   the URL's options (Options.MarshalBinary)
//	<prefix>{T}b:<id>   an object: the URL's plain variant, or a variant
//	<prefix>{T}l:<id>   the fetch lease on an object key
//	<prefix>t:<digest>  a tag: the URLs stored with it
//	<prefix>events      the pub/sub channel of purges and lease releases
//
// where <id> is a digest of the URL key (e, o) or the object key (b, l).
// Digests are the first 128 bits of SHA-256, in hex.

const digestLen = 32 // hex characters

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:digestLen/2])
}

// slotPart returns the part of key that names its URL's slot.
func slotPart(key string) string {
	if i := strings.IndexByte(key, '|'); i >= 0 {
		return key[:i]
	}
	return key
}

// urlNames are the Redis keys of one URL's records.
type urlNames struct {
	epoch, opts, plain string
}

func (d *Driver) urlNames(urlKey string) urlNames {
	head := d.opts.Prefix + "{" + digest(slotPart(urlKey)) + "}"
	id := digest(urlKey)
	return urlNames{epoch: head + "e:" + id, opts: head + "o:" + id, plain: head + "b:" + id}
}

// objectName returns the Redis key of the object under objKey.
func (d *Driver) objectName(objKey string) string {
	return d.opts.Prefix + "{" + digest(slotPart(objKey)) + "}b:" + digest(objKey)
}

// leaseName returns the Redis key of the lease on objKey, and its id
// (what a release message names).
func (d *Driver) leaseName(objKey string) (name, id string) {
	id = digest(objKey)
	return d.opts.Prefix + "{" + digest(slotPart(objKey)) + "}l:" + id, id
}

func (d *Driver) tagName(tag string) string { return d.opts.Prefix + "t:" + digest(tag) }

// epochNameLen is the length of every epoch key name.
func (d *Driver) epochNameLen() int { return len(d.opts.Prefix) + 1 + digestLen + 1 + 2 + digestLen }

// Stored object values are a header, then Object.MarshalBinary:
//
//	'R' | epoch (8 bytes) | date (12 bytes) | CRC-64 of the encoding (8 bytes)
//
// (integers big-endian). The header lets scripts compare an object's date
// (a Store's IfDate) and tell whether a reader already holds an object,
// without decoding it; the checksum catches corrupt values.
const (
	valueMagic     = 'R'
	valueHeaderLen = 1 + 8 + 12 + 8
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// dateBytes encodes an instant as 12 bytes: Unix seconds and nanoseconds.
// Equal instants encode alike, whatever their locations.
func dateBytes(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// appendHeader appends the header of an object with the given epoch,
// date and encoding.
func appendHeader(b []byte, epoch uint64, date time.Time, enc []byte) []byte {
	b = append(b, valueMagic)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = dateBytes(b, date)
	return binary.BigEndian.AppendUint64(b, crc64.Checksum(enc, crcTable))
}

// encodeValue returns o's stored value.
func encodeValue(o *microcache.Object) ([]byte, error) {
	enc, err := o.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, valueHeaderLen+len(enc))
	b = appendHeader(b, o.Epoch, o.Date, enc)
	return append(b, enc...), nil
}

// decodeValue decodes a stored value, checking its header against the
// object. Errors wrap microcache.ErrCorrupt.
func decodeValue(v string) (*microcache.Object, error) {
	if len(v) < valueHeaderLen || v[0] != valueMagic {
		return nil, errCorrupt("object value without its header")
	}
	o := new(microcache.Object)
	enc := unsafe.Slice(unsafe.StringData(v[valueHeaderLen:]), len(v)-valueHeaderLen)
	// UnmarshalBinary neither modifies nor retains its input.
	if err := o.UnmarshalBinary(enc); err != nil {
		return nil, err
	}
	if string(appendHeader(nil, o.Epoch, o.Date, enc)) != v[:valueHeaderLen] {
		return nil, errCorrupt("object value whose header does not match it")
	}
	return o, nil
}
