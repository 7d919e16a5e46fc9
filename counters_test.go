package microcache

import (
	"sync"
	"testing"
)

// Counts added from many goroutines while reports are taken land in
// exactly one report each.
func TestCountersExactUnderConcurrency(t *testing.T) {
	m := &Microcache{stats: new(counters)}
	const goroutines, each = 8, 5000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				m.count(hits)
				m.fail(ErrorEvent{Kind: ErrorTimeout})
			}
		}()
	}
	done := make(chan struct{})
	var total Stats
	go func() {
		defer close(done)
		for range 100 {
			s := m.stats.take()
			total.Hits += s.Hits
			total.Errors += s.Errors
			total.Timeouts += s.Timeouts
		}
	}()
	wg.Wait()
	<-done
	s := m.stats.take()
	total.Hits += s.Hits
	total.Errors += s.Errors
	total.Timeouts += s.Timeouts
	if want := goroutines * each; total.Hits != want || total.Errors != want || total.Timeouts != want {
		t.Errorf("hits %d, errors %d, timeouts %d; want %d each", total.Hits, total.Errors, total.Timeouts, want)
	}
}
