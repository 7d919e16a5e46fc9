package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleJSON writes a small compressible JSON file and returns its path and
// contents.
func sampleJSON(t *testing.T) (string, []byte) {
	t.Helper()
	data := []byte(`{"items":[` + strings.Repeat(`{"id":1,"name":"lamp","tags":["new","sale"]},`, 50) + `{}]}`)
	path := filepath.Join(t.TempDir(), "sample.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestRunTable(t *testing.T) {
	path, data := sampleJSON(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-f", path, "-runs", "1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run = %d, stderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if want := path + " (" + strconv.Itoa(len(data)) + " bytes)"; lines[0] != want {
		t.Errorf("header line = %q, want %q", lines[0], want)
	}
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != "codec compress size ratio expand" {
		t.Errorf("column names = %q", got)
	}
	rows := lines[2:]
	if len(rows) != len(codecs) {
		t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(codecs), stdout.String())
	}
	for i, row := range rows {
		f := strings.Fields(row)
		if len(f) != 5 {
			t.Errorf("row %q has %d columns, want 5", row, len(f))
			continue
		}
		if f[0] != codecs[i].name {
			t.Errorf("row %d codec = %q, want %q", i, f[0], codecs[i].name)
		}
		size, err := strconv.Atoi(f[2])
		if err != nil || size <= 0 || size >= len(data) {
			t.Errorf("%s: size %q is not a positive number below the input's %d", f[0], f[2], len(data))
		}
		ratio, err := strconv.ParseFloat(f[3], 64)
		if err != nil || !strings.Contains(f[3], ".") || len(f[3])-strings.Index(f[3], ".") != 3 {
			t.Errorf("%s: ratio %q is not a number with 2 decimals", f[0], f[3])
		} else if want := float64(len(data)) / float64(size); ratio < want-0.01 || ratio > want+0.01 {
			t.Errorf("%s: ratio %v, want %.2f", f[0], ratio, want)
		}
		for _, d := range []string{f[1], f[4]} {
			if !strings.HasSuffix(d, "s") {
				t.Errorf("%s: time %q has no unit", f[0], d)
			}
		}
	}
}

func TestRunRepeatedFlag(t *testing.T) {
	path, _ := sampleJSON(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-f", path, "-f", path, "-runs", "1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run = %d, stderr: %s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), path+" ("); n != 2 {
		t.Errorf("got %d tables, want 2:\n%s", n, stdout.String())
	}
}

func TestRunMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "x.json")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-f", missing}, &stdout, &stderr); code != 1 {
		t.Errorf("run = %d, want 1", code)
	}
	want := "compare_compression: open " + missing + ": no such file or directory\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing before the error", stdout.String())
	}
	if _, err := loadFiles([]string{missing}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loadFiles error = %v, want one matching os.ErrNotExist", err)
	}
}

func TestRunBadArguments(t *testing.T) {
	for _, args := range [][]string{{"-runs", "0"}, {"stray.json"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Errorf("run(%q) = %d, want 1", args, code)
		}
		if !strings.HasPrefix(stderr.String(), "compare_compression: ") {
			t.Errorf("run(%q) stderr = %q", args, stderr.String())
		}
	}
}

// brokenCompressor expands to the wrong bytes.
type brokenCompressor struct{}

func (brokenCompressor) Compress(dst, src []byte) ([]byte, error) { return append(dst, src...), nil }

func (brokenCompressor) Expand(dst, src []byte, limit int) ([]byte, error) {
	return append(dst, bytes.ToUpper(src)...), nil
}

func TestMeasureDetectsBadRoundTrip(t *testing.T) {
	_, err := measure([]byte("lower case"), 1, []codec{{"broken", brokenCompressor{}}})
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("measure error = %v, want one naming the broken codec", err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Nanosecond:    "850ns",
		123400 * time.Nanosecond: "123.4µs",
		2500 * time.Microsecond:  "2.5ms",
		3 * time.Second:          "3.0s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
