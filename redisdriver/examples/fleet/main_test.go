package main

import (
	"context"
	"os"
	"testing"

	"github.com/httpimp/microcache/redisdriver/internal/redistest"
)

// The walkthrough runs to its end: MISS then HITs across replicas, the
// purge everywhere, one origin call for thirty cold requests (run checks
// each and fails otherwise), and redis-server stopped.
func TestWalkthrough(t *testing.T) {
	if redistest.Binary() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(redistest.ErrNoServer)
		}
		t.Skip(redistest.ErrNoServer)
	}
	if err := run(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}
