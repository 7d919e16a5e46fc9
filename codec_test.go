package microcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// exported returns a copy of o with what prepare and stamp derive cleared,
// so that objects can be compared with reflect.DeepEqual on their exported
// fields and header.
func exported(o *Object) Object {
	c := *o
	c.header = headerFields{s: c.header.enc(), encLen: c.header.encLen, n: c.header.n} // without Content-Length
	c.clock, c.times, c.hot = 0, timings{}, nil
	return c
}

// withHeader sets h as o's header and returns o.
func withHeader(o *Object, h http.Header) *Object {
	o.SetHeader(h)
	return o
}

// sameObject reports whether a and b have equal exported fields. Times are
// compared as instants (Equal), so the location and monotonic reading do
// not matter; nil and empty Header, Body and value lists are equal.
func sameObject(a, b *Object) bool {
	if a.Status != b.Status || a.Compressed != b.Compressed || a.Size != b.Size ||
		a.Epoch != b.Epoch || !a.Date.Equal(b.Date) || !a.Expires.Equal(b.Expires) ||
		a.Date.IsZero() != b.Date.IsZero() || a.Expires.IsZero() != b.Expires.IsZero() ||
		a.StaleWhileRevalidate != b.StaleWhileRevalidate || a.StaleIfError != b.StaleIfError ||
		!bytes.Equal(a.Body, b.Body) {
		return false
	}
	ah, bh := a.Header(), b.Header()
	if len(ah) != len(bh) {
		return false
	}
	for k, av := range ah {
		bv, ok := bh[k]
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if av[i] != bv[i] {
				return false
			}
		}
	}
	return true
}

// sameOptions is reflect.DeepEqual with nil and empty lists equal.
func sameOptions(a, b Options) bool {
	if len(a.Vary) == 0 && len(b.Vary) == 0 {
		a.Vary, b.Vary = nil, nil
	}
	if len(a.VaryQuery) == 0 && len(b.VaryQuery) == 0 {
		a.VaryQuery, b.VaryQuery = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func sampleObject() *Object {
	date := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	body := []byte("<html>hello</html>")
	return withHeader(&Object{
		Status:               200,
		Body:                 body,
		Size:                 len(body),
		Epoch:                0xdeadbeefcafe,
		Date:                 date,
		Expires:              date.Add(time.Minute),
		StaleWhileRevalidate: 10 * time.Second,
		StaleIfError:         time.Hour,
	}, http.Header{
		"Content-Type":  {"text/html; charset=utf-8"},
		"Cache-Control": {"public", "max-age=60"},
		"Vary":          {"Accept-Encoding", "Accept-Language", ""},
		"X-Empty":       {},
		"Etag":          {`"abc"`},
	})
}

func sampleOptions() Options {
	return Options{
		Epoch:                1<<64 - 1,
		Uncacheable:          true,
		Strikes:              2,
		TTL:                  30 * time.Second,
		StaleIfError:         -time.Nanosecond,
		StaleWhileRevalidate: 1<<63 - 1,
		StaleRecache:         true,
		CollapsedForwarding:  true,
		Vary:                 []string{"Accept-Encoding", "Cookie"},
		VaryQuery:            []string{"page", "", "sort"},
	}
}

func mustMarshalObject(t testing.TB, o *Object) []byte {
	t.Helper()
	b, err := o.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

func TestCodecObjectRoundTrip(t *testing.T) {
	now := time.Now().Round(0) // strip the monotonic reading
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	cases := map[string]*Object{
		"minimal":      {Status: 200},
		"sample":       sampleObject(),
		"empty body":   withHeader(&Object{Status: 204, Body: nil, Size: 0}, http.Header{"X": {"1"}}),
		"compressed":   {Status: 200, Body: []byte{0xff, 0x00, 0x01}, Compressed: true, Size: 1000},
		"compressed 0": withHeader(&Object{Status: 301, Compressed: true, Size: 0}, http.Header{"Location": {"/x"}}),
		"local now": {Status: 200, Date: now, Expires: now.Add(time.Minute),
			StaleWhileRevalidate: time.Second, StaleIfError: -time.Second, Epoch: 1},
		"large body":         {Status: 200, Body: big, Size: len(big)},
		"epoch zero instant": {Status: 999, Date: time.Unix(0, 0), Expires: time.Unix(0, 1)},
		"far future": {Status: 100, Date: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
			Expires: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		"beyond UnixNano": {Status: 200, Expires: now.Add(1<<63 - 1)},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			b := mustMarshalObject(t, in)
			var out Object
			if err := out.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !sameObject(in, &out) {
				t.Fatalf("round trip changed the object:\n in  %+v\n out %+v", exported(in), exported(&out))
			}
			if in.Date.IsZero() != out.Date.IsZero() || in.Expires.IsZero() != out.Expires.IsZero() {
				t.Fatal("zero time did not round-trip as zero")
			}
			if out.header.contentLength() == "" {
				t.Fatal("decoded object was not prepared")
			}
			if again := mustMarshalObject(t, &out); !bytes.Equal(again, b) {
				t.Fatal("re-encoding differs")
			}
		})
	}
}

// TestCodecObjectDeepEqual checks the exact decoded form: times in Local,
// nil for empty Header and Body, everything else unchanged.
func TestCodecObjectDeepEqual(t *testing.T) {
	now := time.Now().Round(0)
	in := sampleObject()
	in.Date, in.Expires = now, now.Add(time.Minute)
	var out Object
	if err := out.UnmarshalBinary(mustMarshalObject(t, in)); err != nil {
		t.Fatal(err)
	}
	if got, want := exported(&out), exported(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	var zero Object
	if err := zero.UnmarshalBinary(mustMarshalObject(t, withHeader(&Object{Status: 200, Body: []byte{}}, http.Header{}))); err != nil {
		t.Fatal(err)
	}
	if got, want := exported(&zero), (Object{Status: 200}); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestCodecObjectReplaces(t *testing.T) {
	out := sampleObject()
	if err := out.UnmarshalBinary(mustMarshalObject(t, &Object{Status: 404})); err != nil {
		t.Fatal(err)
	}
	if out.header.encLen != 0 || out.Body != nil || out.Status != 404 || !out.Date.IsZero() {
		t.Fatalf("old fields survived: %+v", exported(out))
	}
}

func TestCodecOptionsRoundTrip(t *testing.T) {
	cases := map[string]Options{
		"zero":        {},
		"sample":      sampleOptions(),
		"flags":       {StaleRecache: true},
		"empty lists": {Vary: []string{}, VaryQuery: []string{}},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := in.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var out Options
			if err := out.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !sameOptions(in, out) {
				t.Fatalf("got %+v, want %+v", out, in)
			}
		})
	}
	var out Options
	in := sampleOptions()
	b, _ := in.MarshalBinary()
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
}

func TestCodecDeterministic(t *testing.T) {
	o := sampleObject()
	h := o.Header()
	for i := range 20 {
		h["X-Key-"+strings.Repeat("k", i)] = []string{"v", strings.Repeat("w", i)}
	}
	o.SetHeader(h)
	first := mustMarshalObject(t, o)
	for range 100 {
		if b := mustMarshalObject(t, o); !bytes.Equal(b, first) {
			t.Fatal("object encoding is not deterministic")
		}
		// A fresh map with the same contents, built in another order.
		h2 := make(http.Header)
		for k, v := range h {
			h2[k] = v
		}
		c := *o
		c.SetHeader(h2)
		if b := mustMarshalObject(t, &c); !bytes.Equal(b, first) {
			t.Fatal("object encoding depends on map layout")
		}
	}
	opts := sampleOptions()
	firstOpts, _ := opts.MarshalBinary()
	for range 100 {
		if b, _ := opts.MarshalBinary(); !bytes.Equal(b, firstOpts) {
			t.Fatal("options encoding is not deterministic")
		}
	}
}

// unmarshaler is what both decoders have in common.
type unmarshaler interface{ UnmarshalBinary([]byte) error }

func validEncodings(t testing.TB) map[string]struct {
	data []byte
	new  func() unmarshaler
} {
	t.Helper()
	optBytes, _ := sampleOptions().MarshalBinary()
	zeroOpts, _ := Options{}.MarshalBinary()
	newObj := func() unmarshaler { return new(Object) }
	newOpts := func() unmarshaler { return new(Options) }
	return map[string]struct {
		data []byte
		new  func() unmarshaler
	}{
		"object":         {mustMarshalObject(t, sampleObject()), newObj},
		"minimal object": {mustMarshalObject(t, &Object{Status: 200}), newObj},
		"options":        {optBytes, newOpts},
		"zero options":   {zeroOpts, newOpts},
	}
}

func wantCorrupt(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: decoded without error", what)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: error %v does not wrap ErrCorrupt", what, err)
	}
	if !strings.HasPrefix(err.Error(), "microcache: ") {
		t.Fatalf("%s: error %q lacks the microcache prefix", what, err)
	}
}

func TestCodecUnmarshalTruncated(t *testing.T) {
	for name, tc := range validEncodings(t) {
		t.Run(name, func(t *testing.T) {
			for n := range len(tc.data) {
				// A fresh, exactly sized copy, so reads past the end fault.
				data := bytes.Clone(tc.data[:n])
				wantCorrupt(t, tc.new().UnmarshalBinary(data), fmt.Sprintf("truncated to %d of %d bytes", n, len(tc.data)))
			}
		})
	}
}

func TestCodecUnmarshalTrailing(t *testing.T) {
	for name, tc := range validEncodings(t) {
		t.Run(name, func(t *testing.T) {
			wantCorrupt(t, tc.new().UnmarshalBinary(append(bytes.Clone(tc.data), 0)), "trailing byte")
		})
	}
}

func TestCodecUnmarshalHeader(t *testing.T) {
	obj := mustMarshalObject(t, sampleObject())
	opt, _ := sampleOptions().MarshalBinary()
	mod := func(b []byte, i int, c byte) []byte {
		b = bytes.Clone(b)
		b[i] = c
		return b
	}
	var o Object
	var p Options
	wantCorrupt(t, o.UnmarshalBinary(opt), "options bytes as object")
	wantCorrupt(t, p.UnmarshalBinary(obj), "object bytes as options")
	wantCorrupt(t, o.UnmarshalBinary(mod(obj, 0, 'X')), "wrong object magic")
	wantCorrupt(t, p.UnmarshalBinary(mod(opt, 0, 'X')), "wrong options magic")
	wantCorrupt(t, o.UnmarshalBinary(mod(obj, 1, objectVersion+1)), "object version 3")
	// Version 1 kept header names without values; its objects are not read.
	wantCorrupt(t, o.UnmarshalBinary(mod(obj, 1, 1)), "object version 1")
	wantCorrupt(t, p.UnmarshalBinary(mod(opt, 1, 0)), "options version 0")
	wantCorrupt(t, o.UnmarshalBinary(nil), "nil")
	if o.Status != 0 || p.Epoch != 0 {
		t.Fatal("failed decode modified its receiver")
	}
}

// rawObject holds the encoded fields of an object, to build invalid
// encodings that MarshalBinary refuses to write.
type rawObject struct {
	status, flags, size, epoch, date, expires, swr, sie, header, body []byte
}

func (r rawObject) bytes() []byte {
	b := []byte{objectMagic, objectVersion}
	for _, f := range [][]byte{r.status, r.flags, r.size, r.epoch, r.date, r.expires, r.swr, r.sie, r.header, r.body} {
		b = append(b, f...)
	}
	return b
}

func uv(x uint64) []byte { return binary.AppendUvarint(nil, x) }
func sv(x int64) []byte  { return binary.AppendVarint(nil, x) }
func cat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

// validRaw is a valid 200 with epoch 1, no header and no body.
func validRaw() rawObject {
	z := []byte{0}
	return rawObject{status: uv(200), flags: z, size: z, epoch: uv(1), date: z, expires: z, swr: z, sie: z, header: z, body: z}
}

func TestCodecUnmarshalInvalid(t *testing.T) {
	// hdr encodes names, each with the single value "v".
	hdr := func(names ...string) []byte {
		b := uv(uint64(len(names)))
		for _, n := range names {
			b = cat(b, uv(uint64(len(n))), []byte(n), uv(1), uv(1), []byte("v"))
		}
		return b
	}
	cases := map[string]func(r *rawObject){
		"status 0":           func(r *rawObject) { r.status = uv(0) },
		"status 99":          func(r *rawObject) { r.status = uv(99) },
		"status 1000":        func(r *rawObject) { r.status = uv(1000) },
		"status overflow":    func(r *rawObject) { r.status = bytes.Repeat([]byte{0xff}, 11) },
		"unknown flag":       func(r *rawObject) { r.flags = []byte{2} },
		"size mismatch":      func(r *rawObject) { r.size, r.body = uv(3), cat(uv(2), []byte("ab")) },
		"huge size":          func(r *rawObject) { r.size, r.flags = uv(1<<64-1), []byte{objCompressed} },
		"padded varint":      func(r *rawObject) { r.status = []byte{0xc8, 0x81, 0x00} },
		"padded zero":        func(r *rawObject) { r.epoch = []byte{0x80, 0x00} },
		"bad time flag":      func(r *rawObject) { r.date = []byte{2} },
		"nanoseconds 1e9":    func(r *rawObject) { r.date = cat([]byte{1}, sv(0), uv(1e9)) },
		"flagged zero time":  func(r *rawObject) { r.expires = cat([]byte{1}, sv(time.Time{}.Unix()), uv(0)) },
		"huge header count":  func(r *rawObject) { r.header = uv(1<<32 - 1) },
		"header count > n/2": func(r *rawObject) { r.header = cat(uv(2), uv(1), []byte("a")) },
		"huge value count":   func(r *rawObject) { r.header = cat(uv(1), uv(1), []byte("X"), uv(1<<28)) },
		"huge name length":   func(r *rawObject) { r.header = cat(uv(1), uv(1<<40), uv(0)) },
		"unsorted names":     func(r *rawObject) { r.header = hdr("b", "a") },
		"duplicate names":    func(r *rawObject) { r.header = hdr("a", "a") },
		"control header":     func(r *rawObject) { r.header = hdr("Microcache-Ttl") },
		"hop-by-hop header":  func(r *rawObject) { r.header = hdr("Connection") },
		"content-length":     func(r *rawObject) { r.header = hdr("content-length") },
		"status header":      func(r *rawObject) { r.header = hdr("Microcache") },
		"huge body length":   func(r *rawObject) { r.flags, r.body = []byte{objCompressed}, uv(1<<64-1) },
		"body past end":      func(r *rawObject) { r.flags, r.body = []byte{objCompressed}, cat(uv(3), []byte("ab")) },
	}
	// The skeleton, and its header mutation, decode when valid.
	good := validRaw()
	good.header = hdr("a", "b")
	var ok Object
	if err := ok.UnmarshalBinary(good.bytes()); err != nil {
		t.Fatalf("skeleton: %v", err)
	}
	if v, found := map[string][]string(ok.Header())["b"]; !found || len(v) != 1 || v[0] != "v" || ok.Epoch != 1 || ok.Status != 200 {
		t.Fatalf("skeleton decoded wrong: %+v", exported(&ok))
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			r := validRaw()
			mutate(&r)
			wantCorrupt(t, new(Object).UnmarshalBinary(r.bytes()), name)
		})
	}
	optCases := map[string][]byte{
		"unknown flag":    {optionsMagic, optionsVersion, 0, 0x08, 0, 0, 0, 0, 0, 0},
		"huge count":      {optionsMagic, optionsVersion, 0, 0, 0, 0, 0, 0, 0xff, 0x01, 0},
		"padded epoch":    {optionsMagic, optionsVersion, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0},
		"string too long": {optionsMagic, optionsVersion, 0, 0, 0, 0, 0, 0, 1, 5, 'a', 0},
		"huge strikes":    {optionsMagic, optionsVersion, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0},
	}
	if err := new(Options).UnmarshalBinary([]byte{optionsMagic, optionsVersion, 0, 0, 0, 0, 0, 0, 1, 1, 'a', 0}); err != nil {
		t.Fatalf("options skeleton: %v", err)
	}
	for name, data := range optCases {
		wantCorrupt(t, new(Options).UnmarshalBinary(data), "options "+name)
	}
}

func TestCodecMarshalInvalid(t *testing.T) {
	for name, o := range map[string]*Object{
		"nil":           nil,
		"zero status":   {},
		"negative size": {Status: 200, Size: -1, Compressed: true},
		"size mismatch": {Status: 200, Size: 1},
	} {
		if _, err := o.MarshalBinary(); err == nil {
			t.Errorf("%s: encoded without error", name)
		} else if !strings.HasPrefix(err.Error(), "microcache: ") || errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: unexpected error %v", name, err)
		}
	}
}

func TestCodecUnmarshalNoAlias(t *testing.T) {
	in := sampleObject()
	data := mustMarshalObject(t, in)
	var out Object
	if err := out.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'Z'
	}
	if !sameObject(in, &out) {
		t.Fatalf("decoded object changed with its input: %+v", exported(&out))
	}
	if out.Body = append(out.Body, '!'); len(out.Body) != in.Size+1 {
		t.Fatal("append to body misbehaved")
	}

	opt := sampleOptions()
	data, _ = opt.MarshalBinary()
	var p Options
	if err := p.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'Z'
	}
	if !reflect.DeepEqual(opt, p) {
		t.Fatalf("decoded options changed with their input: %+v", p)
	}
}

func TestCodecUnmarshalPrepared(t *testing.T) {
	in := sampleObject()
	var out Object
	if err := out.UnmarshalBinary(mustMarshalObject(t, in)); err != nil {
		t.Fatal(err)
	}
	if got := out.header.contentLength(); got != "18" {
		t.Fatalf("decoded Content-Length %q, want 18", got)
	}
	total := 0
	for _, v := range in.Header() {
		total += len(v)
	}
	if out.header.values() != total {
		t.Fatalf("decoded header has %d values, want %d", out.header.values(), total)
	}
}
