package microcache

import (
	"math/bits"
	"sync/atomic"
)

// lruSketch estimates how often each key was accessed lately, for the
// admission decisions of [DriverLRU] (TinyLFU): a count-min sketch of 4-bit
// counters behind a doorkeeper bloom filter. The doorkeeper absorbs each
// key's first access, so keys seen once (a scan, a flood of random URLs)
// leave the counters alone; the counters are halved every sample
// increments, so that popularity fades and a key once hot does not stay
// admitted forever.
//
// Keys are given as 64-bit hashes (the driver's maphash of the key). A key's
// four counters lie in one 64-byte block of the table, so an access touches
// one cache line of it.
//
// All methods are safe for concurrent use without locks: counters are
// packed sixteen to a word and updated with compare-and-swap. An access
// that would change nothing writes nothing: a key whose doorkeeper bits are
// set and whose counters are saturated (a hot key) is only read, so hits on
// one key from many goroutines share the sketch's cache lines read-only.
// Concurrent increments may be lost to a halving; an estimate is an
// estimate.
type lruSketch struct {
	table     []atomic.Uint64 // counters, sixteen per word; len a power of two >= 8
	blockMask uint64          // len(table)/8 - 1: blocks of eight words
	door      []atomic.Uint64 // doorkeeper bits; len a power of two
	doorMask  uint64          // len(door)*64 - 1
	added     atomic.Int64    // changes since the last halving
	sample    int64           // changes between halvings

	// gen names the sketch's generation: it changes when the sketch is
	// halved. A caller that saw a key saturated in a generation may skip
	// the key's accesses while it lasts (see add).
	gen atomic.Uint32
}

const (
	sketchMaxWords = 1 << 20 // 8 MiB of counters at most, enough for a million keys
	sketchCounter  = 15      // a saturated counter
)

// newLRUSketch returns a sketch sized for about capacity keys: two words
// of sixteen counters (16 bytes) and sixteen doorkeeper bits per key,
// halved every forty times capacity changes. The paper's sample is ten
// times the capacity; on a Zipf(1.0) popularity over 100 times more keys
// than slots, the simulator (lru_sim_test.go) measured a hit ratio of
// 0.56 with it, 0.61 with forty (the optimum being 0.62): a longer sample
// tells keys of the long tail apart.
func newLRUSketch(capacity int) *lruSketch {
	words := 8
	for words/2 < capacity && words < sketchMaxWords {
		words <<= 1
	}
	s := &lruSketch{
		table:     make([]atomic.Uint64, words),
		blockMask: uint64(words/8 - 1),
		door:      make([]atomic.Uint64, words/8),
		doorMask:  uint64(words*8 - 1),
		sample:    20 * int64(words),
	}
	s.gen.Store(1) // 0 is no generation
	return s
}

// counter returns where counter row (0 to 3) of the key hashed to h lies:
// the word's index and the counter's bit shift in it. The bits used are 4
// to 23 for the counters and 40 and above for the block, apart from the
// 4 lowest which pick the driver's shard.
func (s *lruSketch) counter(h uint64, row int) (word int, shift uint) {
	block := (h >> 40) & s.blockMask
	sel := h >> (4 + 5*row)
	return int(block*8) + 2*row + int(sel&1), uint((sel>>1)&15) * 4
}

// doorBits returns the two doorkeeper bits of the key hashed to h, from a
// remix of h so that they are independent of the counters' bits.
func (s *lruSketch) doorBits(h uint64) (a, b uint64) {
	g := bits.RotateLeft64(h*0x9e3779b97f4a7c15, 32)
	return g & s.doorMask, (g >> 32) & s.doorMask
}

func (s *lruSketch) doorHas(i uint64) bool { return s.door[i/64].Load()&(1<<(i%64)) != 0 }

// add records one access to the key hashed to h. It reports whether the
// key is saturated (its doorkeeper bits set and its counters at their
// maximum), in which case the access changed nothing, and further accesses
// would change nothing either until the generation read before the call
// ends: the caller may then skip them.
func (s *lruSketch) add(h uint64) (saturated bool) {
	a, b := s.doorBits(h)
	hasA, hasB := s.doorHas(a), s.doorHas(b)
	if !hasA || !hasB {
		// A first access (or a false negative after a halving): it only
		// passes the doorkeeper.
		if !hasA {
			s.door[a/64].Or(1 << (a % 64))
		}
		if !hasB {
			s.door[b/64].Or(1 << (b % 64))
		}
		s.changed()
		return false
	}
	changed, saturated := s.increment(h)
	if changed {
		s.changed()
	}
	return saturated
}

// increment adds one to the smallest of the key's counters (a conservative
// update: counters shared with more frequent keys are left alone, which
// keeps estimates closer). It reports whether any counter changed, and
// whether all were saturated already.
func (s *lruSketch) increment(h uint64) (changed, saturated bool) {
	low := uint64(sketchCounter)
	var words [4]int
	var shifts [4]uint
	for row := range 4 {
		words[row], shifts[row] = s.counter(h, row)
		low = min(low, (s.table[words[row]].Load()>>shifts[row])&15)
	}
	if low == sketchCounter {
		return false, true
	}
	for row := range 4 {
		w := &s.table[words[row]]
		for {
			old := w.Load()
			if (old>>shifts[row])&15 != low {
				break // above the minimum, or raised by another goroutine
			}
			if w.CompareAndSwap(old, old+1<<shifts[row]) {
				changed = true
				break
			}
		}
	}
	return changed, false
}

// changed counts one change and halves the sketch once sample changes have
// been counted since the last halving. The goroutine whose swap moves the
// count back does the halving; others go on meanwhile.
func (s *lruSketch) changed() {
	if n := s.added.Add(1); n >= s.sample && s.added.CompareAndSwap(n, n/2) {
		s.halve()
	}
}

// halve divides every counter by two and empties the doorkeeper, in a new
// generation.
func (s *lruSketch) halve() {
	s.gen.Add(1)
	const keep = 0x7777777777777777 // each counter's three low bits after the shift
	for i := range s.table {
		w := &s.table[i]
		for {
			old := w.Load()
			if old == 0 || w.CompareAndSwap(old, (old>>1)&keep) {
				break
			}
		}
	}
	for i := range s.door {
		s.door[i].Store(0)
	}
}

// estimate returns the key's estimated recent accesses, 0 to 16: its
// smallest counter, plus one if it passed the doorkeeper.
func (s *lruSketch) estimate(h uint64) int {
	low := uint64(sketchCounter)
	for row := range 4 {
		word, shift := s.counter(h, row)
		low = min(low, (s.table[word].Load()>>shift)&15)
	}
	n := int(low)
	if a, b := s.doorBits(h); s.doorHas(a) && s.doorHas(b) {
		n++
	}
	return n
}
