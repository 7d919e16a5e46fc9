package microcache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// clientFields drops exactly the hop-by-hop headers, those named in
// Connection, Age, Content-Length, control headers and the status header
// (in any case) and names without values.
func TestClientFields(t *testing.T) {
	in := http.Header{
		"Content-Type": {"text/plain"}, "X-Keep": {"a", "b"}, "Set-Cookie": {"c=1"},
		"Connection": {"close, x-named"}, "X-Named": {"1"}, "keep-alive": {"timeout=5"},
		"Te": {"trailers"}, "Trailer": {"X"}, "Transfer-Encoding": {"chunked"},
		"Upgrade": {"h2c"}, "Proxy-Connection": {"x"}, "Proxy-Authenticate": {"x"},
		"Proxy-Authorization": {"x"}, "AGE": {"5"}, "Content-Length": {"10"},
		"microcache-ttl": {"5"}, "X-Empty": {}, "MICROCACHE": {"HIT"},
	}
	f := clientFields(in)
	want := []string{"Content-Type", "text/plain", "Set-Cookie", "c=1", "X-Keep", "a", "X-Keep", "b"}
	if got := f.pairs(); !slices.Equal(got, want) {
		t.Fatalf("fields %q, want %q", got, want)
	}
	out := f.header()
	if v, kept := out["X-Empty"]; len(out) != 4 || !slices.Equal(out["X-Keep"], []string{"a", "b"}) || !kept || len(v) != 0 {
		t.Fatalf("header() = %v", out)
	}
	out["X-Keep"][0] = "changed"
	if in["X-Keep"][0] != "a" || f.pairs()[5] != "a" {
		t.Error("the copy aliases the input or the fields")
	}
	if !f.has("set-cookie") || f.has("X-Named") {
		t.Error("has is wrong")
	}
	if f.names() != 4 || f.values() != 4 {
		t.Errorf("names %d values %d, want 4 and 4", f.names(), f.values())
	}
	// A name without values is kept: its presence tells net/http not to
	// add its own (a Date, a sniffed Content-Type).
	if e := clientFields(http.Header{"Date": nil}); e.names() != 1 || e.values() != 0 || !e.has("Date") {
		t.Error("a header name with no values was dropped")
	}
}

// pairs returns f as name, value, name, value, ... in order.
func (f headerFields) pairs() []string {
	var p []string
	if f.encLen == 0 {
		return p
	}
	r := fieldReader{f.enc()}
	for names := r.uvarint(); names > 0; names-- {
		name := r.string()
		for count := r.uvarint(); count > 0; count-- {
			p = append(p, name, r.string())
		}
	}
	return p
}

// The encoding is the codec's: built from a header and decoded from an
// encoded object, it is the same string, and it shares nothing with the
// header it was built from.
func TestHeaderFieldsEncoding(t *testing.T) {
	long := strings.Repeat("v", 300) // a two-byte length
	in := http.Header{"B": {"2", long}, "A": {"1"}}
	f := clientFields(in)
	want := "\x02\x01A\x01\x011\x01B\x02\x012\xac\x02" + long
	if f.enc() != want || f.n != 3 || f.names() != 2 || f.contentLength() != "" {
		t.Fatalf("enc %q (n %d, names %d, Content-Length %q), want %q", f.enc(), f.n, f.names(), f.contentLength(), want)
	}
	if unsafe.StringData(f.pairs()[5]) == unsafe.StringData(long) {
		t.Error("a value shares the handler's bytes")
	}
	var d decoder
	d.b = []byte(f.enc())
	got := d.fields(1234)
	if d.err != nil || got.enc() != f.enc() || got.n != f.n || got.contentLength() != "1234" || len(d.b) != 0 {
		t.Fatalf("decoded %+v (err %v, %d bytes left), want %+v with Content-Length 1234", got, d.err, len(d.b), f)
	}
}

// fill replaces each name's values in the target, in one shared array whose
// per-name slices are capped: appending to one cannot reach the next.
func TestHeaderFieldsFill(t *testing.T) {
	f := clientFields(http.Header{"A": {"1", "2"}, "B": {"3"}})
	h := http.Header{"A": {"old"}, "C": {"kept"}}
	vals := make([]string, f.values()+1)
	if n := f.fill(h, vals); n != 3 {
		t.Fatalf("fill used %d slots, want 3", n)
	}
	if !slices.Equal(h["A"], []string{"1", "2"}) || !slices.Equal(h["B"], []string{"3"}) || h.Get("C") != "kept" {
		t.Fatalf("filled header %v", h)
	}
	h["A"] = append(h["A"], "x")
	if h.Get("B") != "3" {
		t.Fatal("appending to one name overwrote the next")
	}
}

// A prepared object's Content-Length value is kept after its header's
// encoding, so the string handed to clients keeps only the header's bytes
// alive; objects that were never prepared format it.
func TestObjectContentLength(t *testing.T) {
	for _, size := range []int{0, 7, 1024, 100_000_000, 1<<31 - 1} {
		o := &Object{Size: size}
		o.SetHeader(http.Header{"Content-Type": {"text/plain"}})
		if got := o.contentLength(); got != strconv.Itoa(size) {
			t.Errorf("unprepared, size %d: %q", size, got)
		}
		enc := o.header.enc()
		o.prepare()
		got := o.contentLength()
		if got != strconv.Itoa(size) || o.header.enc() != enc {
			t.Errorf("prepared, size %d: %q, header %q (was %q)", size, got, o.header.enc(), enc)
		}
		if unsafe.StringData(got) != unsafe.StringData(o.header.s[o.header.encLen:]) {
			t.Errorf("size %d: the Content-Length value is not the header block's", size)
		}
	}
}
