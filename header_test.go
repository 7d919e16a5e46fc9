package microcache

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
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
	want := headerFields{"Content-Type", "text/plain", "Set-Cookie", "c=1", "X-Keep", "a", "X-Keep", "b"}
	if !slices.Equal(f, want) {
		t.Fatalf("fields %q, want %q", f, want)
	}
	out := f.header()
	if len(out) != 3 || !slices.Equal(out["X-Keep"], []string{"a", "b"}) {
		t.Fatalf("header() = %v", out)
	}
	out["X-Keep"][0] = "changed"
	if in["X-Keep"][0] != "a" || f[5] != "a" {
		t.Error("the copy aliases the input or the fields")
	}
	if !f.has("set-cookie") || f.has("X-Named") {
		t.Error("has is wrong")
	}
	if f.names() != 3 || f.values() != 4 {
		t.Errorf("names %d values %d, want 3 and 4", f.names(), f.values())
	}
	if clientFields(http.Header{"X-Empty": {}}) != nil {
		t.Error("a header with no values gave fields")
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

// An object's Content-Length value is kept in place when it fits, and
// formatted otherwise; objects that were never prepared format it too.
func TestObjectContentLength(t *testing.T) {
	for _, size := range []int{0, 7, 1024, 99_999_999, 100_000_000, 1 << 40} {
		o := &Object{Size: size}
		if got := o.contentLength(); got != strconv.Itoa(size) {
			t.Errorf("unprepared, size %d: %q", size, got)
		}
		o.prepare()
		if got := o.contentLength(); got != strconv.Itoa(size) {
			t.Errorf("prepared, size %d: %q", size, got)
		}
		if inPlace := o.digits > 0; inPlace != (size < 1e8) {
			t.Errorf("size %d: kept in place %v", size, inPlace)
		}
		c := *o // a copy (as recache makes) reads its own bytes
		o.clen = [8]byte{}
		if got := c.contentLength(); got != strconv.Itoa(size) {
			t.Errorf("copy, size %d: %q", size, got)
		}
	}
}
