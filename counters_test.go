package microcache

import (
	"sync"
	"testing"
)

// Counts added from many goroutines all land, and totals read while they
// are added never go backwards.
func TestCountersExactUnderConcurrency(t *testing.T) {
	m := &Microcache{stats: new(counters), driver: NewDriverLRU(1)}
	const goroutines, each = 8, 5000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				m.report(nil, &Outcome{Kind: OutcomeHit})
				m.fail(ErrorEvent{Kind: ErrorTimeout})
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var prev Stats
		for range 100 {
			s := m.Stats()
			if d := s.since(prev); d.Hits < 0 || d.Errors < 0 || d.Timeouts < 0 {
				t.Errorf("totals went backwards: %+v after %+v", s, prev)
			}
			prev = s
		}
	}()
	wg.Wait()
	<-done
	s := m.Stats()
	if want := goroutines * each; s.Hits != want || s.Errors != want || s.Timeouts != want {
		t.Errorf("hits %d, errors %d, timeouts %d; want %d each", s.Hits, s.Errors, s.Timeouts, want)
	}
}
