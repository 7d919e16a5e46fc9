package microcache

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// maxKeySize is the longest cache key, in bytes, that the middleware will
// build. A request whose key would be longer (a hostile query string or
// header, say) passes through uncached instead of costing memory.
const maxKeySize = 8 << 10

// forwardedHeaders are request headers that commonly change what a backend
// renders (absolute links, redirects) without being part of the URL. They
// are always part of the key so that a client cannot poison the cache by
// sending them to a backend that trusts them.
var forwardedHeaders = []string{"X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"}

// Keys are sequences of length-prefixed fields ("<len>:<bytes>"), so no two
// different sequences encode to the same string and no field can spill into
// the next. The URL key names the URL: scheme, lower-cased host, escaped
// path, the canonical query (when Config.HashQuery) and forwardedHeaders.
// The object key adds the values of the request headers and query parameters
// an Options record varies on; when there are none it equals the URL key.
// Keys are used as they are, never hashed, so collisions are impossible, and
// a client can only make keys long (bounded by maxKeySize), not equal.

// appendField appends s as one length-prefixed field.
func appendField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// appendValues appends a field count (or "-" when absent) and then each
// value as a field, so absent, empty and multi-valued inputs all differ.
func appendValues(b []byte, values []string, present bool) []byte {
	if !present {
		return append(b, '-')
	}
	b = strconv.AppendInt(b, int64(len(values)), 10)
	b = append(b, '#')
	for _, v := range values {
		b = appendField(b, v)
	}
	return b
}

// keyBuffers recycles key-building buffers. Keys are copied into a string
// once built, so a buffer never escapes.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// urlKey returns the URL key of r, or ok false when it would exceed
// maxKeySize.
func (m *Microcache) urlKey(r *http.Request) (key string, ok bool) {
	var k keyBuf
	k.build(m, r)
	defer k.release()
	if k.tooLong() {
		return "", false
	}
	return k.String(), true
}

// keyBuf holds a key being used by one request: built into a pooled
// buffer, looked up without allocating (view), and copied into a string
// only when it must outlive the request (String). The zero keyBuf is an
// empty key that holds no buffer.
type keyBuf struct {
	bp *[]byte
	b  []byte
	s  string
}

// build makes k the URL key of r.
func (k *keyBuf) build(m *Microcache, r *http.Request) {
	k.bp = keyBuffers.Get().(*[]byte)
	k.b = m.appendURLKey((*k.bp)[:0], r)
}

// buildVariant makes k the key of the variant of the URL key url that r
// selects under o, which must vary on something.
func (k *keyBuf) buildVariant(url *keyBuf, o *Options, r *http.Request) {
	k.release()
	k.bp = keyBuffers.Get().(*[]byte)
	k.b = appendObjectKey((*k.bp)[:0], url.view(), o, r)
	k.s = ""
}

func (k *keyBuf) tooLong() bool { return len(k.b) > maxKeySize }

// view returns the key without copying it. The result must not be
// retained past the request or the next build: Driver.Lookup and
// Driver.Object promise not to retain their keys.
func (k *keyBuf) view() string { return unsafe.String(unsafe.SliceData(k.b), len(k.b)) }

// String returns the key as a string of its own.
func (k *keyBuf) String() string {
	if k.s == "" {
		k.s = string(k.b)
	}
	return k.s
}

// release returns the buffer to the pool; view results die with it.
func (k *keyBuf) release() {
	if k.bp == nil {
		return
	}
	*k.bp = k.b[:0]
	keyBuffers.Put(k.bp)
	k.bp, k.b = nil, nil
}

// appendURLKey appends the URL key of r to b.
func (m *Microcache) appendURLKey(b []byte, r *http.Request) []byte {
	// The scheme is the connection's: a request target's is the client's
	// to choose ("GET https://host/ HTTP/1.1" on a plain listener), and
	// keying on it would let the plain listener's answer (typically a
	// redirect to https) be stored for TLS clients.
	if r.TLS != nil {
		b = append(b, 's')
	} else {
		b = append(b, 'p')
	}
	b = strconv.AppendInt(b, int64(len(r.Host)), 10)
	b = append(b, ':')
	for i := 0; i < len(r.Host); i++ {
		c := r.Host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = appendField(b, r.URL.EscapedPath())
	if m.cfg.HashQuery {
		b = m.appendQuery(b, r.URL.RawQuery)
	}
	if len(r.Header) == 0 {
		return append(b, "---"...) // what the loop appends for three absent headers
	}
	for _, name := range forwardedHeaders {
		v, present := r.Header[name]
		b = appendValues(b, v, present)
	}
	return b
}

// objectKey returns the key of the variant of urlKey that r selects under o.
func objectKey(urlKey string, o *Options, r *http.Request) string {
	if len(o.Vary) == 0 && len(o.VaryQuery) == 0 {
		return urlKey
	}
	bp := keyBuffers.Get().(*[]byte)
	b := appendObjectKey((*bp)[:0], urlKey, o, r)
	key := string(b)
	*bp = b[:0]
	keyBuffers.Put(bp)
	return key
}

// appendObjectKey appends to b the key of the variant of urlKey that r
// selects under o, which must vary on something.
func appendObjectKey(b []byte, urlKey string, o *Options, r *http.Request) []byte {
	b = append(b, urlKey...)
	b = append(b, '|')
	for _, name := range o.Vary {
		v, present := r.Header[name]
		b = appendField(b, name)
		b = appendValues(b, v, present)
	}
	if len(o.VaryQuery) > 0 {
		params := parseQuery(r.URL.RawQuery)
		b = append(b, '?')
		for _, name := range o.VaryQuery {
			b = appendField(b, name)
			n := 0
			for _, p := range params {
				if !p.raw && p.name == name {
					n++
				}
			}
			if n == 0 {
				b = append(b, '-')
				continue
			}
			b = strconv.AppendInt(b, int64(n), 10)
			b = append(b, '#')
			for _, p := range params {
				if !p.raw && p.name == name {
					b = appendField(b, p.value)
				}
			}
		}
		// Pairs that could not be decoded (a ';' in them, a bad escape) may
		// carry a varied parameter for a backend that splits differently,
		// so they are all part of the key.
		for _, p := range params {
			if p.raw {
				b = append(b, '!')
				b = appendField(b, p.name)
			}
		}
	}
	return b
}

// queryParam is one name=value pair of a query string. raw marks a pair
// kept verbatim because it could not be decoded unambiguously (a ';' in it,
// or a bad escape): it never equals a decoded pair.
type queryParam struct {
	name, value string
	raw         bool
}

// parseQuery splits a raw query on '&' and decodes each pair. Unlike
// url.ParseQuery it keeps the order of values, never drops a pair, and does
// not treat ';' as a separator (backends disagree on that, which is a known
// cache-poisoning vector, so such a pair is kept whole and raw).
func parseQuery(raw string) []queryParam {
	if raw == "" {
		return nil
	}
	params := make([]queryParam, 0, strings.Count(raw, "&")+1)
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			params = append(params, queryParam{name: pair, raw: true})
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		dn, err1 := url.QueryUnescape(name)
		dv, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil {
			params = append(params, queryParam{name: pair, raw: true})
			continue
		}
		params = append(params, queryParam{name: dn, value: dv})
	}
	return params
}

// appendQuery appends the canonical form of a raw query: pairs sorted by
// name (values of one name keep their order), minus Config.QueryIgnore.
func (m *Microcache) appendQuery(b []byte, raw string) []byte {
	params := parseQuery(raw)
	params = slices.DeleteFunc(params, func(p queryParam) bool {
		return !p.raw && slices.Contains(m.cfg.QueryIgnore, p.name)
	})
	slices.SortStableFunc(params, func(a, b queryParam) int {
		if c := cmp.Compare(a.name, b.name); c != 0 {
			return c
		}
		switch {
		case a.raw == b.raw:
			return 0
		case a.raw:
			return 1
		default:
			return -1
		}
	})
	b = append(b, '?')
	b = strconv.AppendInt(b, int64(len(params)), 10)
	b = append(b, '#')
	for _, p := range params {
		if p.raw {
			b = append(b, '!')
		}
		b = appendField(b, p.name)
		b = appendField(b, p.value)
	}
	return b
}
