package microcache

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/golang/snappy"
)

// ErrExpandLimit is returned by a [Compressor]'s Expand when the expanded
// data would be longer than the limit it was given.
var ErrExpandLimit = errors.New("microcache: expanded body exceeds its limit")

// Compressor compresses stored bodies. Implementations must be safe for
// concurrent use. Both methods append to dst (which may be nil) and return
// the extended slice, so callers can reuse buffers. An error from either
// method never fails a request: on Compress the response is served
// unstored, on Expand the stored object is treated as a miss.
type Compressor interface {
	// Compress appends the compressed form of src to dst.
	Compress(dst, src []byte) ([]byte, error)

	// Expand appends the expanded form of src to dst. It must return an
	// error, and not panic, when src is corrupt, and must return
	// [ErrExpandLimit] rather than produce more than limit bytes.
	Expand(dst, src []byte, limit int) ([]byte, error)
}

// CompressorSnappy compresses with Snappy (github.com/golang/snappy): fast,
// with a moderate ratio. The zero value is ready to use.
type CompressorSnappy struct{}

var _ Compressor = CompressorSnappy{}

// Compress implements [Compressor].
func (CompressorSnappy) Compress(dst, src []byte) ([]byte, error) {
	n := snappy.MaxEncodedLen(len(src))
	if n < 0 {
		return nil, snappy.ErrTooLarge
	}
	dst = slices.Grow(dst, n)
	enc := snappy.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+len(enc)], nil
}

// Expand implements [Compressor].
func (CompressorSnappy) Expand(dst, src []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n > limit {
		return dst, ErrExpandLimit
	}
	dst = slices.Grow(dst, n)
	dec, err := snappy.Decode(dst[len(dst):len(dst)+n], src)
	if err != nil {
		return dst, err
	}
	return dst[:len(dst)+len(dec)], nil
}

// CompressorGzip compresses with gzip at the default level: slower than
// Snappy with a better ratio. Writers and readers are pooled. The zero value
// is ready to use.
type CompressorGzip struct{}

var _ Compressor = CompressorGzip{}

var (
	gzipWriters sync.Pool // *gzip.Writer
	gzipReaders sync.Pool // *gzip.Reader
)

// Compress implements [Compressor].
func (CompressorGzip) Compress(dst, src []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		zw = gzip.NewWriter(buf)
	} else {
		zw.Reset(buf)
	}
	defer gzipWriters.Put(zw)
	if _, err := zw.Write(src); err != nil {
		return dst, err
	}
	if err := zw.Close(); err != nil {
		return dst, err
	}
	return buf.Bytes(), nil
}

// Expand implements [Compressor].
func (CompressorGzip) Expand(dst, src []byte, limit int) ([]byte, error) {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(src))
	} else {
		err = zr.Reset(bytes.NewReader(src))
	}
	if err != nil {
		return dst, err
	}
	defer gzipReaders.Put(zr)
	return readLimited(dst, zr, limit)
}

// readLimited appends everything r yields to dst, failing with
// ErrExpandLimit past limit bytes.
func readLimited(dst []byte, r io.Reader, limit int) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return dst, err
	}
	if n > int64(limit) {
		return dst, ErrExpandLimit
	}
	return buf.Bytes(), nil
}
