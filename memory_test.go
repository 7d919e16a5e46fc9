package microcache_test

import (
	"bytes"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// Memory under hostile key cardinality: an attacker who requests endless
// distinct URLs (or variants) must not make the process grow past the
// driver's byte budget, and the driver's own byte count must track what the
// heap really holds.

const memBodySize = 1 << 10

// memWriter is a ResponseWriter that keeps nothing, so the heap measured
// is the cache's.
type memWriter struct {
	h      http.Header
	status int
}

func (w *memWriter) Header() http.Header         { return w.h }
func (w *memWriter) WriteHeader(code int)        { w.status = code }
func (w *memWriter) Write(p []byte) (int, error) { return len(p), nil }

// memOrigin answers every request with a 1 KiB body and hdr.
func memOrigin(hdr ...string) http.Handler {
	payload := []byte(strings.Repeat("m", memBodySize))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(payload)
	})
}

// memRequests serves n requests built by mk(i) through h, reusing one
// writer, and fails on any non-200.
func memRequests(t *testing.T, h http.Handler, from, to int, mk func(i int) *http.Request) {
	t.Helper()
	w := &memWriter{h: make(http.Header, 4)}
	for i := from; i < to; i++ {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, mk(i))
		if w.status != http.StatusOK {
			t.Fatalf("request %d: status %d", i, w.status)
		}
	}
}

func plainRequest(path, rawQuery string, hdr http.Header) *http.Request {
	if hdr == nil {
		hdr = make(http.Header)
	}
	return &http.Request{
		Method: http.MethodGet, Host: "victim.example", Header: hdr,
		URL:   &url.URL{Path: path, RawQuery: rawQuery},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody,
	}
}

func heapAlloc() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // twice: the second empties sync.Pool victim caches
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// cardinalityN is the number of distinct keys a flood uses: many times what
// the budget holds, small enough for -race on a loaded machine.
func cardinalityN() int {
	if testing.Short() {
		return 12_000
	}
	return 25_000
}

// cardinalityFlood serves cardinalityN distinct keys built by mk into a
// cache with an 8 MiB driver budget and checks that the heap stays within
// the budget plus a constant.
func cardinalityFlood(t *testing.T, mk func(i int) *http.Request, respHdr ...string) {
	const budget = 8 << 20
	const slack = 16 << 20
	n := cardinalityN()
	d := microcache.NewDriverLRUBytes(1<<30, budget)
	c := newCache(t, microcache.Config{TTL: time.Minute, HashQuery: true, Driver: d})
	h := c.Middleware(memOrigin(respHdr...))
	before := heapAlloc()
	start := time.Now()
	memRequests(t, h, 0, n, mk)
	elapsed := time.Since(start)
	grew := heapAlloc() - before
	t.Logf("%d keys in %v: heap +%.1f MiB, driver %.1f MiB in %d objects, %d evictions",
		n, elapsed.Round(time.Millisecond), float64(grew)/(1<<20), float64(d.Bytes())/(1<<20), d.Len(), d.Evictions())
	if grew > budget+slack {
		t.Errorf("heap grew by %d bytes, budget %d + slack %d", grew, budget, slack)
	}
	if d.Bytes() > budget {
		t.Errorf("driver holds %d bytes, budget %d", d.Bytes(), budget)
	}
	if d.Evictions() == 0 {
		t.Errorf("no evictions after %d keys of ~%d bytes into a %d-byte budget", n, memBodySize, budget)
	}
	runtime.KeepAlive(c)
}

func TestMemoryCardinalityPaths(t *testing.T) {
	cardinalityFlood(t, func(i int) *http.Request {
		return plainRequest("/item/"+strconv.Itoa(i), "", nil)
	})
}

func TestMemoryCardinalityQueryValues(t *testing.T) {
	cardinalityFlood(t, func(i int) *http.Request {
		return plainRequest("/search", "q="+strconv.Itoa(i)+"&page=1", nil)
	})
}

func TestMemoryCardinalityVaryValues(t *testing.T) {
	cardinalityFlood(t, func(i int) *http.Request {
		return plainRequest("/", "", http.Header{"X-Id": {strconv.Itoa(i)}})
	}, "Vary", "X-Id")
}

// After a flood of distinct keys the cache still stores new objects: the
// hostile records are evicted in LRU order rather than crowding out
// everything stored afterwards.
func TestMemoryCardinalityFloodKeepsCaching(t *testing.T) {
	const budget = 1 << 20 // small, so a short flood fills it many times over
	d := microcache.NewDriverLRUBytes(1<<30, budget)
	h := newCache(t, microcache.Config{TTL: time.Minute, HashQuery: true, Driver: d, Exposed: true}).Middleware(memOrigin())
	memRequests(t, h, 0, 5000, func(i int) *http.Request { return plainRequest("/", "flood="+strconv.Itoa(i), nil) })
	for i := range 32 {
		path := "/after/" + strconv.Itoa(i)
		memRequests(t, h, 0, 1, func(int) *http.Request { return plainRequest(path, "", nil) })
		if s := state(get(t, h, "http://victim.example"+path)); s != microcache.StatusHit {
			t.Fatalf("%s requested twice after the flood: %s, want HIT (driver: %d objects, %d bytes)",
				path, s, d.Len(), d.Bytes())
		}
	}
}

// The driver's byte count grows linearly with the objects stored, and
// tracks the real heap: the test logs the per-object overhead beyond body
// and header bytes, both as the driver counts it and as the heap measures
// it, and fails only past loose bounds.
func TestMemoryHeapPerObject(t *testing.T) {
	const n = 10_000
	d := microcache.NewDriverLRU(1 << 30)
	c := newCache(t, microcache.Config{TTL: time.Minute, Driver: d})
	h := c.Middleware(memOrigin())
	mk := func(i int) *http.Request { return plainRequest("/item/"+strconv.Itoa(i), "", nil) }
	// The stored header is "Content-Type: text/plain".
	const headerBytes = len("Content-Type") + len("text/plain")
	memRequests(t, h, 0, 100, mk) // warm up pools and maps outside the measurement

	base := d.Bytes()
	heap0 := heapAlloc()
	memRequests(t, h, 100, 100+n/2, mk)
	half := d.Bytes() - base
	memRequests(t, h, 100+n/2, 100+n, mk)
	full := d.Bytes() - base
	heap := heapAlloc() - heap0
	if d.Len() != n+100 {
		t.Fatalf("driver holds %d objects, want %d", d.Len(), n+100)
	}

	perObj := float64(full) / n
	counted := perObj - memBodySize - float64(headerBytes)
	real := float64(heap)/n - memBodySize - float64(headerBytes)
	t.Logf("driver counts %.0f B/object: %.0f B beyond body+headers (%d+%d B)", perObj, counted, memBodySize, headerBytes)
	t.Logf("heap holds %.0f B/object: %.0f B beyond body+headers", float64(heap)/n, real)

	if ratio := float64(full) / float64(2*half); ratio < 0.95 || ratio > 1.05 {
		t.Errorf("driver bytes not linear: %d for %d objects, %d for %d", half, n/2, full, n)
	}
	// About 405 B today (see the README's memory breakdown); the bound
	// catches a regression such as a header map or a second copy coming
	// back, not noise.
	const maxOverhead = 520
	if counted <= 0 || counted > maxOverhead {
		t.Errorf("driver counts %.0f B per object beyond body and headers, want (0, %d]", counted, maxOverhead)
	}
	if real > maxOverhead {
		t.Errorf("heap holds %.0f B per object beyond body and headers, want <= %d", real, maxOverhead)
	}
	// The byte budget is only a bound on memory if the heap does not hold
	// much more than the driver counts.
	if float64(heap) > 2*float64(full) {
		t.Errorf("heap grew %d bytes for %d counted by the driver", heap, full)
	}
	runtime.KeepAlive(c)
}

// The same for a response with a typical header: six names, three of them
// with values made for each response (an ETag, a Last-Modified, a request
// id). The header is kept as one block of its bytes, so it costs little
// beyond them.
func TestMemoryHeapPerObjectTypicalHeader(t *testing.T) {
	const n = 10_000
	payload := []byte(strings.Repeat("m", memBodySize))
	var seq int
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq++
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=5")
		h.Set("Etag", `"`+strconv.FormatInt(int64(seq)*7919, 16)+`-`+strconv.Itoa(seq)+`"`)
		h.Set("Last-Modified", time.Unix(int64(1e9+seq), 0).UTC().Format(http.TimeFormat))
		h.Set("X-Request-Id", "req-"+strconv.Itoa(1e9+seq))
		h.Set("Server", "origin/1.0")
		w.Write(payload)
	})
	d := microcache.NewDriverLRU(1 << 30)
	c := newCache(t, microcache.Config{TTL: time.Minute, Driver: d})
	h := c.Middleware(origin)
	mk := func(i int) *http.Request { return plainRequest("/item/"+strconv.Itoa(i), "", nil) }
	memRequests(t, h, 0, 100, mk)

	heap0 := heapAlloc()
	memRequests(t, h, 100, 100+n, mk)
	heap := heapAlloc() - heap0
	if d.Len() != n+100 {
		t.Fatalf("driver holds %d objects, want %d", d.Len(), n+100)
	}
	// The header bytes of one response (all are the same length).
	rec := &memWriter{h: http.Header{}}
	origin.ServeHTTP(rec, mk(0))
	headerBytes := 0
	for name, values := range rec.h {
		headerBytes += len(name) + len(values[0])
	}
	real := float64(heap)/n - memBodySize - float64(headerBytes)
	t.Logf("heap holds %.0f B/object: %.0f B beyond body+headers (%d+%d B)", float64(heap)/n, real, memBodySize, headerBytes)
	// About 420 B today; as string pairs the header cost about 50 B more.
	const maxOverhead = 520
	if real > maxOverhead {
		t.Errorf("heap holds %.0f B per object beyond body and headers, want <= %d", real, maxOverhead)
	}
	runtime.KeepAlive(c)
}

// The driver New makes when Config.Driver is nil has a byte bound
// (DefaultDriverBytes), not only an object count: 20 responses at the
// default MaxObjectSize (80 MiB) never make it hold more than 64 MiB.
func TestDefaultDriverByteBound(t *testing.T) {
	if encodingDriverRun() {
		t.Skip("the default driver is replaced by -microcache.driver")
	}
	big := bytes.Repeat([]byte("x"), microcache.DefaultMaxObjectSize)
	c := newCache(t, microcache.Config{TTL: time.Hour})
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) }))
	for i := range 20 {
		get(t, h, "/big/"+strconv.Itoa(i))
		if s := c.Stats(); s.StoredBytes > microcache.DefaultDriverBytes {
			t.Fatalf("after %d large responses the default driver holds %d bytes, over its %d", i+1, s.StoredBytes, microcache.DefaultDriverBytes)
		}
	}
	if s := c.Stats(); s.Size == 0 || s.Evictions == 0 && s.Size == 20 {
		t.Errorf("stats %+v: want some objects kept and the rest refused or evicted", s)
	}
}
