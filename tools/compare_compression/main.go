// Command compare_compression measures the compressors microcache offers
// (plus zlib, for reference) on real bodies, so the choice of
// [microcache.Compressor] can be made on numbers:
//
//	go run ./tools/compare_compression [-f file.json ...] [-runs N]
//
// For each file it prints one row per codec: the median time of one
// Compress call, the compressed size, the ratio (original size / compressed
// size) and the median time of one Expand call. Without -f it measures every
// file in testdata/corpus, relative to the working directory, so run it from
// the repository root. It checks that every codec gives back exactly the
// input and exits with status 1 if one does not or a file cannot be read.
package main

import (
	"bytes"
	"compress/zlib"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/httpimp/microcache"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// defaultDir holds the files measured when no -f is given.
var defaultDir = filepath.Join("testdata", "corpus")

// run is the whole command with its arguments and output streams passed in,
// so tests can drive it. It returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare_compression", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files fileList
	fs.Var(&files, "f", "file to measure (repeatable; default: every file in "+defaultDir+")")
	runs := fs.Int("runs", 9, "timed runs per measurement; the median is reported")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "compare_compression:", err)
		return 1
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q; name files with -f", fs.Arg(0)))
	}
	if *runs < 1 {
		return fail(errors.New("-runs must be at least 1"))
	}
	if len(files) == 0 {
		var err error
		if files, err = dirFiles(defaultDir); err != nil {
			return fail(err)
		}
	}
	inputs, err := loadFiles(files)
	if err != nil {
		return fail(err)
	}
	for i, in := range inputs {
		rows, err := measure(in.data, *runs, codecs)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", in.name, err))
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := writeTable(stdout, in.name, len(in.data), rows); err != nil {
			return fail(err)
		}
	}
	return 0
}

// fileList is a repeatable string flag.
type fileList []string

func (l *fileList) String() string { return fmt.Sprint([]string(*l)) }

func (l *fileList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// input is one file's name and contents.
type input struct {
	name string
	data []byte
}

// dirFiles returns the regular files directly in dir, sorted by name.
func dirFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no files in %s; name files with -f", dir)
	}
	return files, nil
}

// loadFiles reads every file before anything is measured, so a bad path
// fails the command before it prints a partial report.
func loadFiles(paths []string) ([]input, error) {
	var out []input
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, input{p, b})
	}
	return out, nil
}

// codec is one compression method under measurement.
type codec struct {
	name string
	c    microcache.Compressor
}

// codecs are measured in this order: zlib as the baseline most HTTP stacks
// have, then the package's compressors.
var codecs = []codec{
	{"zlib", &zlibCompressor{}},
	{"gzip", microcache.CompressorGzip{}},
	{"snappy", microcache.CompressorSnappy{}},
	{"s2", microcache.CompressorS2{}},
	{"zstd", microcache.CompressorZstd{}},
}

// result is one row of the report.
type result struct {
	codec    string
	compress time.Duration // median time of one Compress call
	size     int           // compressed size in bytes
	ratio    float64       // original size / compressed size
	expand   time.Duration // median time of one Expand call
}

// measure compresses and expands data with every codec, checking that each
// gives back exactly data, and times both directions.
func measure(data []byte, runs int, codecs []codec) ([]result, error) {
	var rows []result
	for _, cd := range codecs {
		comp, err := cd.c.Compress(nil, data)
		if err != nil {
			return nil, fmt.Errorf("%s: compress: %w", cd.name, err)
		}
		exp, err := cd.c.Expand(nil, comp, len(data))
		if err != nil {
			return nil, fmt.Errorf("%s: expand: %w", cd.name, err)
		}
		if !bytes.Equal(exp, data) {
			return nil, fmt.Errorf("%s: expanded output differs from the input", cd.name)
		}
		r := result{codec: cd.name, size: len(comp), ratio: float64(len(data)) / float64(max(1, len(comp)))}
		var buf []byte
		r.compress, err = perCall(runs, func() (err error) {
			buf, err = cd.c.Compress(buf[:0], data)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: compress: %w", cd.name, err)
		}
		r.expand, err = perCall(runs, func() (err error) {
			buf, err = cd.c.Expand(buf[:0], comp, len(data))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: expand: %w", cd.name, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// minRun is how long one timed run lasts at least, so that calls far
// shorter than the clock's resolution are still measured well.
const minRun = 2 * time.Millisecond

// perCall returns the median over runs of the mean duration of one call to
// f. Each run repeats f as often as it takes to last minRun.
func perCall(runs int, f func() error) (time.Duration, error) {
	n := 1
	for {
		d, err := timeCalls(n, f)
		if err != nil {
			return 0, err
		}
		if d >= minRun || n >= 1<<30 {
			break
		}
		n *= 2
	}
	times := make([]time.Duration, runs)
	for i := range times {
		d, err := timeCalls(n, f)
		if err != nil {
			return 0, err
		}
		times[i] = d / time.Duration(n)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// timeCalls returns how long n calls to f take.
func timeCalls(n int, f func() error) (time.Duration, error) {
	start := time.Now()
	for range n {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// writeTable prints a header line naming the file and its size, then one
// aligned row per result.
func writeTable(w io.Writer, name string, size int, rows []result) error {
	if _, err := fmt.Fprintf(w, "%s (%d bytes)\n", name, size); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "codec\tcompress\tsize\tratio\texpand\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%s\t\n", r.codec, formatDuration(r.compress), r.size, r.ratio, formatDuration(r.expand))
	}
	return tw.Flush()
}

// formatDuration prints d with one decimal in the largest unit that keeps
// the number at least 1, as in "123.4µs".
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d >= time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	}
}

// zlibCompressor adapts compress/zlib at its default level to
// [microcache.Compressor] for comparison. Like CompressorGzip it reuses its
// writer and reader rather than build them per call, so the two compare
// fairly; unlike it, it is not safe for concurrent use, which this
// single-threaded command does not need.
type zlibCompressor struct {
	zw *zlib.Writer
	zr io.ReadCloser
}

var _ microcache.Compressor = (*zlibCompressor)(nil)

func (z *zlibCompressor) Compress(dst, src []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	if z.zw == nil {
		z.zw = zlib.NewWriter(buf)
	} else {
		z.zw.Reset(buf)
	}
	if _, err := z.zw.Write(src); err != nil {
		return dst, err
	}
	if err := z.zw.Close(); err != nil {
		return dst, err
	}
	return buf.Bytes(), nil
}

func (z *zlibCompressor) Expand(dst, src []byte, limit int) ([]byte, error) {
	var err error
	if z.zr == nil {
		z.zr, err = zlib.NewReader(bytes.NewReader(src))
	} else {
		err = z.zr.(zlib.Resetter).Reset(bytes.NewReader(src), nil)
	}
	if err != nil {
		z.zr = nil
		return dst, err
	}
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(z.zr, int64(limit)+1))
	if err != nil {
		return dst, err
	}
	if n > int64(limit) {
		return dst, microcache.ErrExpandLimit
	}
	return buf.Bytes(), nil
}
