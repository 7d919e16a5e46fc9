// Command testall runs the tests of every Go module in this repository:
// the root module and each nested one (a directory with a go.mod of its
// own, such as redisdriver/ or examples/gin/), which `go test ./...` in the
// root does not reach. It runs `go test ARGS ./...` in each module
// directory in turn, ARGS being its own arguments (-race when there are
// none), prints which module it is testing, and exits non-zero if any
// module failed, after testing them all.
//
// Run it from the repository's root:
//
//	go run ./tools/testall            # go test -race ./... in every module
//	go run ./tools/testall -count=1   # other go test flags instead
package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"-race"}
	}
	mods, err := modules(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testall:", err)
		os.Exit(2)
	}
	var failed []string
	for _, dir := range mods {
		fmt.Printf("== go test %s ./... in %s\n", strings.Join(args, " "), dir)
		cmd := exec.Command("go", append(append([]string{"test"}, args...), "./...")...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			failed = append(failed, dir)
		}
	}
	fmt.Printf("testall: %d modules passed, %d failed\n", len(mods)-len(failed), len(failed))
	if len(failed) > 0 {
		fmt.Fprintln(os.Stderr, "testall: failed in", strings.Join(failed, ", "))
		os.Exit(1)
	}
}

// modules returns the directories under root that hold a go.mod, root
// first, then the others in lexical order. Directories named testdata or
// node_modules, and hidden ones, are skipped, as the go command skips them.
func modules(root string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return nil, fmt.Errorf("no go.mod in %s: run testall from the repository's root", root)
	}
	var mods []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "go.mod" {
			mods = append(mods, filepath.Dir(path))
		}
		return nil
	})
	slices.Sort(mods) // a directory sorts before what it holds: root first
	return mods, err
}
