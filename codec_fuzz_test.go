package microcache

import (
	"bytes"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// FuzzObjectUnmarshal feeds arbitrary bytes to Object.UnmarshalBinary. It
// must never panic, and whatever it accepts must be the canonical encoding
// of the decoded object: re-encoding gives the input back, and decoding that
// again gives an equal object.
func FuzzObjectUnmarshal(f *testing.F) {
	date := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, o := range []*Object{
		{Status: 200},
		sampleObject(),
		withHeader(&Object{Status: 304, Compressed: true, Size: 10, Body: []byte{1, 2, 3}},
			http.Header{"A": {"1", "2"}, "B": {}, "": {""}, "a": {"3"}}),
		{Status: 999, Date: date, Expires: date.Add(-time.Hour), Epoch: 1 << 63,
			StaleWhileRevalidate: -1, StaleIfError: 1<<63 - 1},
	} {
		b, err := o.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		var o Object
		if err := o.UnmarshalBinary(data); err != nil {
			if o.header.s != "" || o.Status != 0 {
				t.Fatalf("failed decode %v modified its receiver", err)
			}
			return
		}
		if !bytes.Equal(data, in) {
			t.Fatal("decode modified its input")
		}
		if o.header.contentLength() != strconv.Itoa(o.Size) {
			t.Fatal("decoded object is not prepared")
		}
		b, err := o.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encoding a decoded object: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("accepted a non-canonical encoding:\n in  %x\n out %x", data, b)
		}
		var o2 Object
		if err := o2.UnmarshalBinary(b); err != nil {
			t.Fatalf("decoding a re-encoding: %v", err)
		}
		if !reflect.DeepEqual(exported(&o), exported(&o2)) {
			t.Fatalf("second decode differs:\n %+v\n %+v", exported(&o), exported(&o2))
		}
		b2, err := o2.MarshalBinary()
		if err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("second re-encoding differs (err %v)", err)
		}
	})
}

// FuzzOptionsUnmarshal is FuzzObjectUnmarshal for Options.
func FuzzOptionsUnmarshal(f *testing.F) {
	for _, o := range []Options{
		{},
		sampleOptions(),
		{TTL: time.Second, Vary: []string{""}, VaryQuery: []string{"q"}},
	} {
		b, err := o.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Options
		if err := o.UnmarshalBinary(data); err != nil {
			if !reflect.DeepEqual(o, Options{}) {
				t.Fatalf("failed decode %v modified its receiver", err)
			}
			return
		}
		b, err := o.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encoding decoded options: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("accepted a non-canonical encoding:\n in  %x\n out %x", data, b)
		}
		var o2 Options
		if err := o2.UnmarshalBinary(b); err != nil {
			t.Fatalf("decoding a re-encoding: %v", err)
		}
		if !reflect.DeepEqual(o, o2) {
			t.Fatalf("second decode differs:\n %+v\n %+v", o, o2)
		}
		b2, err := o2.MarshalBinary()
		if err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("second re-encoding differs (err %v)", err)
		}
	})
}

// FuzzHeaderRoundTrip checks the readers of a decoded header (fill, has,
// names, values) against what it encodes: the object's Header, built back
// into fields with SetHeader, gives the same encoding, and every name is
// found. Decoding copies the header's bytes verbatim, so FuzzObjectUnmarshal
// alone would not exercise the readers.
func FuzzHeaderRoundTrip(f *testing.F) {
	for _, o := range []*Object{{Status: 200}, sampleObject()} {
		b, err := o.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Object
		if o.UnmarshalBinary(data) != nil {
			return
		}
		h := o.Header()
		values := 0
		for name, vs := range h {
			values += len(vs)
			if !o.header.has(name) {
				t.Fatalf("has(%q) is false", name)
			}
		}
		if values != o.header.values() || len(h) != o.header.names() {
			t.Fatalf("Header has %d values under %d names; the fields count %d and %d", values, len(h), o.header.values(), o.header.names())
		}
		var again Object
		again.SetHeader(h)
		if again.header.enc() != o.header.enc() || again.header.n != o.header.n {
			t.Fatalf("SetHeader(Header()) encodes %q, want %q", again.header.enc(), o.header.enc())
		}
	})
}
