package microcache_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/golang-lru/arc/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/httpimp/microcache"
)

// An offline simulator of eviction policies, to choose DriverLRU's: plain
// LRU, 2Q and ARC (hashicorp/golang-lru) and DriverLRU itself (Window
// TinyLFU) replay the same traces, and the hit ratios are printed side by
// side. It runs only when asked, as it takes about ten seconds:
//
//	MICROCACHE_SIM=1 go test -run TestLRUSimulation -v

// zipf samples ranks 0 to n-1 with probability proportional to
// 1/(rank+1)^s, by inverse transform over the cumulative distribution. Any
// s >= 0 works (math/rand's Zipf needs s > 1, and web traffic is often
// near 1).
type zipf struct {
	cdf []float64 // cdf[i]: the probability of a rank <= i
	rng *rand.Rand
}

func newZipf(n int, s float64, seed uint64) *zipf {
	z := &zipf{cdf: make([]float64, n), rng: rand.New(rand.NewPCG(seed, 1))}
	sum := 0.0
	for i := range z.cdf {
		sum += math.Pow(float64(i+1), -s)
		z.cdf[i] = sum
	}
	for i := range z.cdf {
		z.cdf[i] /= sum
	}
	return z
}

func (z *zipf) next() int {
	u := z.rng.Float64()
	return min(sort.SearchFloat64s(z.cdf, u), len(z.cdf)-1)
}

// optimum returns the hit ratio of a static cache of the capacity most
// probable ranks: the best any policy can do on average.
func (z *zipf) optimum(capacity int) float64 { return z.cdf[min(capacity, len(z.cdf))-1] }

// The sampler's frequencies follow the distribution.
func TestZipfSampler(t *testing.T) {
	const n, draws = 1000, 200_000
	z := newZipf(n, 1.0, 1)
	counts := make([]int, n)
	for range draws {
		counts[z.next()]++
	}
	h := 0.0
	for i := 1; i <= n; i++ {
		h += 1 / float64(i)
	}
	for _, rank := range []int{0, 1, 9} {
		want := draws / (float64(rank+1) * h)
		if got := float64(counts[rank]); math.Abs(got-want) > 5*math.Sqrt(want) {
			t.Errorf("rank %d drawn %v times, want about %.0f", rank, got, want)
		}
	}
	if got, want := z.optimum(10), (1+1./2+1./3+1./4+1./5+1./6+1./7+1./8+1./9+1./10)/h; math.Abs(got-want) > 1e-9 {
		t.Errorf("optimum(10) = %v, want %v", got, want)
	}
}

// simCache is one policy under simulation: access reports a hit, and on a
// miss admits the key as the policy sees fit.
type simCache interface{ access(key string) bool }

type simLRU struct {
	c *simplelru.LRU[string, struct{}]
}

func (s simLRU) access(k string) bool {
	if _, ok := s.c.Get(k); ok {
		return true
	}
	s.c.Add(k, struct{}{})
	return false
}

type sim2Q struct {
	c *lru.TwoQueueCache[string, struct{}]
}

func (s sim2Q) access(k string) bool {
	if _, ok := s.c.Get(k); ok {
		return true
	}
	s.c.Add(k, struct{}{})
	return false
}

type simARC struct {
	c *arc.ARCCache[string, struct{}]
}

func (s simARC) access(k string) bool {
	if _, ok := s.c.Get(k); ok {
		return true
	}
	s.c.Add(k, struct{}{})
	return false
}

// simDriver drives a Driver as the middleware does for a plain URL: a
// Lookup, and on a miss a Store under the epoch read.
type simDriver struct {
	d   microcache.Driver
	obj *microcache.Object // shared by every key: only its size matters
}

func (s simDriver) access(k string) bool {
	ctx := context.Background()
	rec, _ := s.d.Lookup(ctx, k)
	if rec.Object != nil {
		return true
	}
	epoch := rec.Epoch
	if epoch == 0 {
		epoch = rand.Uint64() | 1
	}
	s.d.Store(ctx, &microcache.Store{URLKey: k, Epoch: rec.Epoch, Options: &microcache.Options{Epoch: epoch, TTL: time.Hour},
		ObjectKey: k, Object: s.obj})
	return false
}

var simPolicies = []struct {
	name string
	new  func(capacity int) simCache
}{
	{"LRU", func(n int) simCache { c, _ := simplelru.NewLRU[string, struct{}](n, nil); return simLRU{c} }},
	{"2Q", func(n int) simCache { c, _ := lru.New2Q[string, struct{}](n); return sim2Q{c} }},
	{"ARC", func(n int) simCache { c, _ := arc.NewARC[string, struct{}](n); return simARC{c} }},
	{"W-TinyLFU", func(n int) simCache {
		return simDriver{d: microcache.NewDriverLRU(n), obj: &microcache.Object{Status: 200, Expires: time.Now().Add(time.Hour)}}
	}},
}

// simFlood replays the flood trace: hot keys requested in turn, each after
// k one-off keys, for rounds rounds; it returns the hot keys' hit ratio
// after the first warm rounds.
func simFlood(c simCache, hot, k, rounds, warm int) float64 {
	hits, reads, once := 0, 0, 0
	hotKeys := make([]string, hot)
	for i := range hotKeys {
		hotKeys[i] = "/hot/" + strconv.Itoa(i)
	}
	for round := range rounds {
		for _, h := range hotKeys {
			for range k {
				c.access("/once/" + strconv.Itoa(once))
				once++
			}
			hit := c.access(h)
			if round >= warm {
				reads++
				if hit {
					hits++
				}
			}
		}
	}
	return float64(hits) / float64(reads)
}

// simZipf replays warm then n draws of z and returns the hit ratio of the
// n.
func simZipf(c simCache, z *zipf, keys []string, warm, n int) float64 {
	for range warm {
		c.access(keys[z.next()])
	}
	hits := 0
	for range n {
		if c.access(keys[z.next()]) {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

func TestLRUSimulation(t *testing.T) {
	if os.Getenv("MICROCACHE_SIM") == "" {
		t.Skip("set MICROCACHE_SIM=1 to run the policy simulator")
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\n%-34s", "trace")
	for _, p := range simPolicies {
		fmt.Fprintf(&out, " %10s", p.name)
	}
	fmt.Fprintf(&out, " %10s\n", "optimum")

	for _, k := range []int{1, 5, 20} {
		fmt.Fprintf(&out, "%-34s", fmt.Sprintf("flood k=%d, 100 hot, cap 1000", k))
		for _, p := range simPolicies {
			fmt.Fprintf(&out, " %10.3f", simFlood(p.new(1000), 100, k, 60, 10))
		}
		fmt.Fprintf(&out, " %10.3f\n", 1.0)
	}

	const nkeys, warm, draws = 100_000, 200_000, 1_000_000
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = "/z/" + strconv.Itoa(i)
	}
	for _, s := range []float64{1.0, 1.1, 1.2} {
		for _, capacity := range []int{1000, 10_000} {
			fmt.Fprintf(&out, "%-34s", fmt.Sprintf("zipf s=%.1f, 100k keys, cap %d", s, capacity))
			for _, p := range simPolicies {
				fmt.Fprintf(&out, " %10.3f", simZipf(p.new(capacity), newZipf(nkeys, s, 7), keys, warm, draws))
			}
			fmt.Fprintf(&out, " %10.3f\n", newZipf(nkeys, s, 7).optimum(capacity))
		}
	}
	t.Log(out.String())
}
