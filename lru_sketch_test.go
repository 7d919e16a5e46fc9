package microcache

import (
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"testing"
)

func sketchHash(seed maphash.Seed, i int) uint64 { return maphash.String(seed, "k"+strconv.Itoa(i)) }

// A key's first access only passes the doorkeeper; later ones count, up to
// the counters' saturation.
func TestLRUSketchCounts(t *testing.T) {
	s := newLRUSketch(1024)
	seed := maphash.MakeSeed()
	h := sketchHash(seed, 1)
	if got := s.estimate(h); got != 0 {
		t.Fatalf("estimate before any access = %d, want 0", got)
	}
	s.add(h)
	if got := s.estimate(h); got != 1 {
		t.Fatalf("estimate after one access = %d, want 1 (the doorkeeper)", got)
	}
	for i := 2; i <= 20; i++ {
		s.add(h)
		if want := min(i, sketchCounter+1); s.estimate(h) != want {
			t.Fatalf("estimate after %d accesses = %d, want %d", i, s.estimate(h), want)
		}
	}
	// Other keys seen once are estimated low: a few collisions at most.
	high := 0
	for i := 2; i < 500; i++ {
		s.add(sketchHash(seed, i))
	}
	for i := 2; i < 500; i++ {
		if s.estimate(sketchHash(seed, i)) > 2 {
			high++
		}
	}
	if high > 5 {
		t.Errorf("%d of 498 keys seen once are estimated above 2", high)
	}
}

// An access to a key whose counters are saturated writes nothing: not the
// table, not the doorkeeper, not the change count. This is what lets hits
// on a hot key from many goroutines share the sketch's cache lines.
func TestLRUSketchSaturatedNoWrite(t *testing.T) {
	s := newLRUSketch(64)
	h := sketchHash(maphash.MakeSeed(), 7)
	for range 40 {
		s.add(h)
	}
	before := make([]uint64, len(s.table))
	for i := range s.table {
		before[i] = s.table[i].Load()
	}
	added := s.added.Load()
	s.add(h)
	for i := range s.table {
		if s.table[i].Load() != before[i] {
			t.Fatalf("word %d changed on a saturated key's access", i)
		}
	}
	if s.added.Load() != added {
		t.Errorf("change count moved from %d to %d", added, s.added.Load())
	}
}

// Every sample changes the counters are halved and the doorkeeper emptied,
// so that popularity fades.
func TestLRUSketchHalving(t *testing.T) {
	s := newLRUSketch(8) // 8 words: a sample of 80 changes
	seed := maphash.MakeSeed()
	h := sketchHash(seed, 0)
	for range 13 {
		s.add(h)
	}
	if got := s.estimate(h); got != 13 {
		t.Fatalf("estimate = %d, want 13", got)
	}
	// Other keys' accesses bring the change count to the sample.
	for i := 1; s.added.Load() != 0 && s.estimate(h) == 13; i++ {
		s.add(sketchHash(seed, i))
		if i > 1000 {
			t.Fatal("no halving after 1000 changes")
		}
	}
	// 12 counted, halved to 6; the doorkeeper emptied.
	if got := s.estimate(h); got != 6 {
		t.Errorf("estimate after halving = %d, want 6", got)
	}
}

// Concurrent accesses are safe (run with -race) and lose few counts.
func TestLRUSketchConcurrent(t *testing.T) {
	s := newLRUSketch(1 << 12)
	seed := maphash.MakeSeed()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				s.add(sketchHash(seed, i%8))
				s.add(sketchHash(seed, 1000+g*2000+i))
			}
		})
	}
	wg.Wait()
	for i := range 8 {
		if got := s.estimate(sketchHash(seed, i)); got != sketchCounter+1 {
			t.Errorf("hot key %d estimated %d, want saturated", i, got)
		}
	}
}

// The sketch has two words per key it is sized for, within its bounds,
// whatever the capacity asked (a limit near math.MaxInt included).
func TestLRUSketchSize(t *testing.T) {
	for _, tc := range []struct{ capacity, words int }{
		{0, 8}, {1, 8}, {4, 8}, {5, 16}, {1000, 2048}, {1 << 30, sketchMaxWords}, {math.MaxInt, sketchMaxWords},
	} {
		if got := len(newLRUSketch(tc.capacity).table); got != tc.words {
			t.Errorf("newLRUSketch(%d) has %d words, want %d", tc.capacity, got, tc.words)
		}
	}
}
