package microcache_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/httpimp/microcache"
	"github.com/klauspost/compress/zstd"
)

// compressorCases lists every Compressor the package ships.
var compressorCases = []struct {
	name string
	c    microcache.Compressor
}{
	{"snappy", microcache.CompressorSnappy{}},
	{"gzip", microcache.CompressorGzip{}},
	{"s2", microcache.CompressorS2{}},
	{"zstd", microcache.CompressorZstd{}},
}

// corpusInput is one named body to compress.
type corpusInput struct {
	name string
	data []byte
}

// compressionCorpus returns the JSON files under testdata/corpus (written by
// tools/gencorpus), without their extension in the name.
func compressionCorpus(tb testing.TB) []corpusInput {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatal("no files in testdata/corpus; run go run ./tools/gencorpus")
	}
	var out []corpusInput
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, corpusInput{strings.TrimSuffix(filepath.Base(p), ".json"), b})
	}
	return out
}

// compressionInputs returns the corpus plus edge cases: empty, tiny, 1 MiB
// bodies that are compressible and incompressible, and 3 MiB that repeats
// only at 1 MiB distance, past zstd's match window.
func compressionInputs(tb testing.TB) []corpusInput {
	tb.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var text bytes.Buffer
	vocab := strings.Fields(`{"id": "name": "price": "tags": [ ] } , true false null
		cache hit miss stale fresh origin request response header body`)
	for text.Len() < 1<<20 {
		text.WriteString(vocab[r.IntN(len(vocab))])
		text.WriteByte(' ')
	}
	noise := make([]byte, 1<<20)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	return append([]corpusInput{
		{"empty", []byte{}},
		{"small", []byte(`{"ok":true}`)},
		{"1MiB-text", text.Bytes()[:1<<20]},
		{"1MiB-random", noise},
		{"3MiB-repeated", bytes.Repeat(noise, 3)},
	}, compressionCorpus(tb)...)
}

// mustCompress compresses src into a fresh slice.
func mustCompress(tb testing.TB, c microcache.Compressor, src []byte) []byte {
	tb.Helper()
	out, err := c.Compress(nil, src)
	if err != nil {
		tb.Fatalf("Compress(%d bytes): %v", len(src), err)
	}
	return out
}

// errExpandPanicked marks an error made by expandNoPanic from a panic.
var errExpandPanicked = errors.New("expand panicked")

// expandNoPanic calls Expand and turns a panic into an error wrapping
// errExpandPanicked, so that one bad input reports which compressor and
// input failed instead of crashing the test binary.
func expandNoPanic(c microcache.Compressor, dst, src []byte, limit int) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%w: %v", errExpandPanicked, p)
		}
	}()
	return c.Expand(dst, src, limit)
}

func TestCompressorRoundTrip(t *testing.T) {
	inputs := compressionInputs(t)
	for _, cc := range compressorCases {
		for _, in := range inputs {
			t.Run(cc.name+"/"+in.name, func(t *testing.T) {
				comp := mustCompress(t, cc.c, in.data)
				// The limit is exactly the expanded size: that must fit.
				got, err := cc.c.Expand(nil, comp, len(in.data))
				if err != nil {
					t.Fatalf("Expand: %v", err)
				}
				if !bytes.Equal(got, in.data) {
					t.Fatalf("Expand gave %d bytes that differ from the %d compressed", len(got), len(in.data))
				}
			})
		}
	}
}

// TestCompressorAppends checks the append contract: both methods keep what
// dst already holds, whether or not dst has spare capacity.
func TestCompressorAppends(t *testing.T) {
	src := compressionCorpus(t)[0].data
	const prefix = "prefix:"
	for _, cc := range compressorCases {
		for _, spare := range []int{0, 1 << 16} {
			t.Run(fmt.Sprintf("%s/spare=%d", cc.name, spare), func(t *testing.T) {
				dst := append(make([]byte, 0, len(prefix)+spare), prefix...)
				comp, err := cc.c.Compress(dst, src)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(comp, []byte(prefix)) {
					t.Fatalf("Compress lost the prefix: %q", comp[:min(len(comp), 16)])
				}
				alone := mustCompress(t, cc.c, src)
				if !bytes.Equal(comp[len(prefix):], alone) {
					t.Fatal("Compress appended different bytes than it returns for a nil dst")
				}

				dst = append(make([]byte, 0, len(prefix)+spare), prefix...)
				got, err := cc.c.Expand(dst, alone, len(src))
				if err != nil {
					t.Fatal(err)
				}
				if string(got[:len(prefix)]) != prefix || !bytes.Equal(got[len(prefix):], src) {
					t.Fatal("Expand did not append the body after the prefix")
				}
			})
		}
	}
}

// TestCompressorExpandCorrupt feeds Expand truncated, foreign and random
// data: each must fail with an error and none may panic.
func TestCompressorExpandCorrupt(t *testing.T) {
	corpus := compressionCorpus(t)
	r := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for _, cc := range compressorCases {
		t.Run(cc.name, func(t *testing.T) {
			bad := map[string][]byte{
				"empty":     {},
				"plain":     []byte("this was never compressed, it is plain text"),
				"json":      corpus[0].data,
				"random-64": random(64),
				"random-4k": random(4 << 10),
			}
			for _, in := range corpus {
				comp := mustCompress(t, cc.c, in.data)
				// Every proper prefix of a small payload, a sample of a
				// large one.
				step := max(1, len(comp)/200)
				for n := 0; n < len(comp); n += step {
					bad[fmt.Sprintf("%s-truncated-%d", in.name, n)] = comp[:n]
				}
				bad[in.name+"-last-byte-cut"] = comp[:len(comp)-1]
			}
			for name, src := range bad {
				out, err := expandNoPanic(cc.c, nil, src, 1<<20)
				if errors.Is(err, errExpandPanicked) {
					t.Errorf("%s: %v", name, err)
				} else if err == nil {
					t.Errorf("%s: Expand returned %d bytes and no error", name, len(out))
				}
			}
		})
	}
}

// TestCompressorExpandBitFlips flips single bits of valid payloads. Codecs
// without a checksum (snappy, s2) may decode those to wrong bytes, so the
// only requirements are no panic and nothing past the limit.
func TestCompressorExpandBitFlips(t *testing.T) {
	src := compressionCorpus(t)[0].data
	r := rand.New(rand.NewPCG(5, 6))
	for _, cc := range compressorCases {
		t.Run(cc.name, func(t *testing.T) {
			comp := mustCompress(t, cc.c, src)
			for range 500 {
				bad := bytes.Clone(comp)
				i := r.IntN(len(bad))
				bad[i] ^= 1 << r.IntN(8)
				out, err := expandNoPanic(cc.c, nil, bad, len(src))
				if errors.Is(err, errExpandPanicked) {
					t.Fatalf("flip at byte %d: %v", i, err)
				}
				if err == nil && len(out) > len(src) {
					t.Fatalf("flip at byte %d: Expand returned %d bytes, past the limit %d", i, len(out), len(src))
				}
			}
		})
	}
}

// TestCompressorExpandLimit checks that every compressor refuses to expand
// past the limit with ErrExpandLimit and leaves dst as it was.
func TestCompressorExpandLimit(t *testing.T) {
	for _, cc := range compressorCases {
		for _, in := range compressionCorpus(t) {
			comp := mustCompress(t, cc.c, in.data)
			for _, limit := range []int{0, len(in.data) / 2, len(in.data) - 1} {
				t.Run(fmt.Sprintf("%s/%s/limit=%d", cc.name, in.name, limit), func(t *testing.T) {
					dst := []byte("keep")
					out, err := cc.c.Expand(dst, comp, limit)
					if !errors.Is(err, microcache.ErrExpandLimit) {
						t.Fatalf("Expand error = %v, want ErrExpandLimit", err)
					}
					if string(out) != "keep" {
						t.Fatalf("Expand returned %d bytes on error, want dst unchanged", len(out))
					}
				})
			}
		}
	}
}

// TestCompressorZstdForeignFrames covers zstd data that Compress does not
// write. A frame from another encoder that declares its size expands; data
// whose size is undeclared, or larger than declared, is refused, because
// Expand could not bound it before decoding.
func TestCompressorZstdForeignFrames(t *testing.T) {
	var c microcache.CompressorZstd
	big := compressionInputs(t)[2].data // 1MiB-text

	other, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	declared := other.EncodeAll(big, nil)
	got, err := c.Expand(nil, declared, len(big))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("other encoder: Expand = %d bytes, %v; want the %d bytes back", len(got), err, len(big))
	}

	var stream bytes.Buffer
	other.Reset(&stream)
	if _, err := other.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(stream.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("streamed frame: header %+v, %v; want one without a content size", h, err)
	}

	small := []byte(`{"first":"frame"}`)
	for name, src := range map[string][]byte{
		"undeclared size": stream.Bytes(),
		"two frames":      append(mustCompress(t, c, small), mustCompress(t, c, big)...),
		"tiny trailer":    append(mustCompress(t, c, big), mustCompress(t, c, small)...),
	} {
		got, err := c.Expand([]byte("keep"), src, 4<<20)
		if err == nil || string(got) != "keep" {
			t.Errorf("%s: Expand = %d bytes, %v; want an error and dst unchanged", name, len(got), err)
		}
	}
}

// TestCompressorConcurrent runs round trips from 8 goroutines at once per
// compressor; run it with -race to check the shared and pooled state.
func TestCompressorConcurrent(t *testing.T) {
	corpus := compressionCorpus(t)
	for _, cc := range compressorCases {
		t.Run(cc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					var comp, exp []byte
					for i := range 20 {
						in := corpus[(g+i)%len(corpus)].data
						var err error
						if comp, err = cc.c.Compress(comp[:0], in); err != nil {
							t.Errorf("Compress: %v", err)
							return
						}
						if exp, err = cc.c.Expand(exp[:0], comp, len(in)); err != nil {
							t.Errorf("Expand: %v", err)
							return
						}
						if !bytes.Equal(exp, in) {
							t.Errorf("goroutine %d round %d: round trip changed the body", g, i)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

func BenchmarkCompress(b *testing.B) {
	corpus := compressionCorpus(b)
	for _, cc := range compressorCases {
		for _, in := range corpus {
			b.Run(cc.name+"/"+in.name, func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				var out []byte
				for b.Loop() {
					var err error
					if out, err = cc.c.Compress(out[:0], in.data); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(in.data))/float64(len(out)), "ratio")
			})
		}
	}
}

func BenchmarkExpand(b *testing.B) {
	corpus := compressionCorpus(b)
	for _, cc := range compressorCases {
		for _, in := range corpus {
			b.Run(cc.name+"/"+in.name, func(b *testing.B) {
				comp := mustCompress(b, cc.c, in.data)
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				var out []byte
				for b.Loop() {
					var err error
					if out, err = cc.c.Expand(out[:0], comp, len(in.data)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(in.data))/float64(len(comp)), "ratio")
			})
		}
	}
}
