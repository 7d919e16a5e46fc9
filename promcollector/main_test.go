package promcollector_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: the
// collectors start none, and every cache a test makes is stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
