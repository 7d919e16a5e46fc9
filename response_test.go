package microcache

import (
	"net/http"
	"slices"
	"testing"
)

// clientHeader drops exactly the hop-by-hop headers, those named in
// Connection, Age, Content-Length and control headers, in any case.
func TestClientHeader(t *testing.T) {
	in := http.Header{
		"Content-Type": {"text/plain"}, "X-Keep": {"a", "b"}, "Set-Cookie": {"c=1"},
		"Connection": {"close, X-Named"}, "X-Named": {"1"}, "keep-alive": {"timeout=5"},
		"Te": {"trailers"}, "Trailer": {"X"}, "Transfer-Encoding": {"chunked"},
		"Upgrade": {"h2c"}, "Proxy-Connection": {"x"}, "Proxy-Authenticate": {"x"},
		"Proxy-Authorization": {"x"}, "AGE": {"5"}, "Content-Length": {"10"},
		"microcache-ttl": {"5"}, "X-Empty": {},
	}
	out := clientHeader(in)
	var names []string
	for k := range out {
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{"Content-Type", "Set-Cookie", "X-Keep"}; !slices.Equal(names, want) {
		t.Errorf("kept %q, want %q", names, want)
	}
	if !slices.Equal(out["X-Keep"], []string{"a", "b"}) {
		t.Errorf("X-Keep = %q", out["X-Keep"])
	}
	out["X-Keep"][0] = "changed"
	if in["X-Keep"][0] != "a" {
		t.Error("the copy aliases the input")
	}
}
