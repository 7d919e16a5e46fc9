package microcache

import (
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
