package microcache_test

import (
	"errors"
	"testing"
)

// FuzzExpand feeds arbitrary bytes to every compressor's Expand. Whatever
// the input, Expand must not panic, and when it succeeds it must not return
// more than the limit. The seeds are valid payloads of each codec, so the
// fuzzer starts from inputs that get past the headers.
func FuzzExpand(f *testing.F) {
	const limit = 1 << 20
	corpus := compressionCorpus(f)
	for _, cc := range compressorCases {
		for _, src := range [][]byte{nil, []byte("a"), []byte(`{"ok":true,"ok":true,"ok":true}`), corpus[0].data} {
			f.Add(mustCompress(f, cc.c, src))
		}
	}
	f.Add([]byte{})
	f.Add([]byte("plain text, never compressed"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}) // a varint length of 4 GiB
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})       // a bare zstd magic number
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})       // a bare gzip header start

	f.Fuzz(func(t *testing.T, src []byte) {
		for _, cc := range compressorCases {
			out, err := expandNoPanic(cc.c, nil, src, limit)
			switch {
			case errors.Is(err, errExpandPanicked):
				t.Fatalf("%s: %v", cc.name, err)
			case err == nil && len(out) > limit:
				t.Fatalf("%s: Expand returned %d bytes, past the limit %d", cc.name, len(out), limit)
			}
		}
	})
}
