package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// modules finds the root module first and every nested module, and skips
// what the go command skips.
func TestModules(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"", "b", "a/inner", "testdata/x", "node_modules/y", ".git/z", "_skip", "plain"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if dir != "plain" {
			if err := os.WriteFile(filepath.Join(root, dir, "go.mod"), []byte("module x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := modules(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{root, filepath.Join(root, "a/inner"), filepath.Join(root, "b")}
	if !slices.Equal(got, want) {
		t.Errorf("modules = %q, want %q", got, want)
	}
	if _, err := modules(filepath.Join(root, "plain")); err == nil {
		t.Error("a directory without go.mod gave no error")
	}
}
