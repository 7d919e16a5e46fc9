package promcollector

import "testing"

// A reading that steps back (a scrape that saw Errors before its Timeouts,
// or the reverse) reports the highest count seen instead, so Prometheus
// never takes it for a counter reset.
func TestMonotonic(t *testing.T) {
	var m monotonic
	for i, step := range []struct{ in, want int64 }{
		{-1, 0}, {0, 0}, {3, 3}, {2, 3}, {3, 3}, {4, 4},
	} {
		if got := m.next(step.in); got != step.want {
			t.Errorf("step %d: next(%d) = %d, want %d", i, step.in, got, step.want)
		}
	}
}
