package microcache

import (
	"net/http"
	"sync"
	"sync/atomic"
)

// hotBytes bounds, per Microcache, the expanded bodies of compressed
// objects kept beside them, so that hot objects are expanded once rather
// than on every hit. Bodies are kept in the order they were expanded and
// dropped oldest first.
const hotBytes = 16 << 20

// hotBody holds the expanded body of one compressed object, or nil.
type hotBody = atomic.Pointer[[]byte]

// hotBodies is the budget of expanded bodies kept beside their objects.
// It is touched only when a body is expanded, never on a hit that finds
// its body already expanded.
type hotBodies struct {
	mu    sync.Mutex
	queue []*hotBody // in the order they were filled; guarded by mu
	sizes []int      // body sizes, parallel to queue; guarded by mu
	bytes int        // sum of sizes; guarded by mu
	max   int
}

// keep stores body in cell (if the cell is still empty) and drops the
// oldest kept bodies past the budget. Bodies larger than a quarter of the
// budget are not kept.
func (hb *hotBodies) keep(cell *hotBody, body []byte) {
	if len(body) > hb.max/4 || !cell.CompareAndSwap(nil, &body) {
		return
	}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.queue = append(hb.queue, cell)
	hb.sizes = append(hb.sizes, len(body))
	hb.bytes += len(body)
	n := 0
	for hb.bytes > hb.max {
		hb.queue[n].Store(nil)
		hb.bytes -= hb.sizes[n]
		n++
	}
	if n > 0 {
		hb.queue = append(hb.queue[:0], hb.queue[n:]...)
		hb.sizes = append(hb.sizes[:0], hb.sizes[n:]...)
	}
}

// expandBuffers recycles buffers for expanded bodies.
var expandBuffers sync.Pool // *[]byte

// bodyOf returns obj's body, expanded when it is compressed, and a function
// to call once the body has been written (nil when there is nothing to
// return). ok is false, and the failure is
// reported, when the object is corrupt.
func (m *Microcache) bodyOf(r *http.Request, obj *Object) (body []byte, release func(), ok bool) {
	switch {
	case obj.Status < 200 || obj.Status > 999 || obj.Size < 0 || obj.Size > m.cfg.MaxObjectSize,
		!obj.Compressed && len(obj.Body) != obj.Size:
		m.fail(ErrorEvent{Kind: ErrorCompressor, Request: r, Err: errCorruptObject})
		return nil, nil, false
	case !obj.Compressed:
		return obj.Body, nil, true
	case m.cfg.Compressor == nil:
		m.fail(ErrorEvent{Kind: ErrorCompressor, Request: r, Err: errNoCompressor})
		return nil, nil, false
	}
	if obj.hot != nil && obj.clock == m.clk.id && obj.Size <= m.hot.max/4 {
		// One of this Microcache's objects: expand it once, keep it
		// expanded while it is among the recently expanded.
		if b := obj.hot.Load(); b != nil {
			return *b, nil, true
		}
		out, ok := m.expand(r, nil, obj)
		if !ok {
			return nil, nil, false
		}
		m.hot.keep(obj.hot, out)
		return out, nil, true
	}
	bp, _ := expandBuffers.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	out, ok := m.expand(r, (*bp)[:0], obj)
	if !ok {
		expandBuffers.Put(bp)
		return nil, nil, false
	}
	*bp = out
	return out, func() { expandBuffers.Put(bp) }, true
}

// expand appends obj's expanded body to dst. ok is false, and the failure
// is reported, when expanding fails or yields other than obj.Size bytes.
func (m *Microcache) expand(r *http.Request, dst []byte, obj *Object) (out []byte, ok bool) {
	out, err := m.cfg.Compressor.Expand(dst, obj.Body, obj.Size)
	if err == nil && len(out) != obj.Size {
		err = errCorruptObject
	}
	if err != nil {
		m.fail(ErrorEvent{Kind: ErrorCompressor, Request: r, Err: err})
		return nil, false
	}
	return out, true
}
