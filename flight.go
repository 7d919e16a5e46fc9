package microcache

import "sync"

// flights collapses concurrent misses for one object onto one backend
// call (collapsed forwarding). Unlike golang.org/x/sync/singleflight, a
// call can release its waiters before it returns: when its response
// starts streaming to the leader's client, the waiters must not wait for
// the whole stream (an SSE connection may last for hours), so each makes
// its own call at once. The zero value is ready to use; it is safe for
// concurrent use.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight // guarded by mu
}

// flight is one collapsed backend call. res is written once, before done
// is released, and only read after. A flight stays registered after its
// result is shared, until its leader has stored the response (see do):
// requests that come meanwhile get the same result rather than call the
// backend again (a result to be stored once its Store succeeded).
type flight struct {
	g    *flights
	key  string
	once sync.Once
	done sync.WaitGroup // released once: by release
	res  *fetchResult   // nil: nothing to share, every waiter calls the backend itself

	// A result to be stored (res.storing) is used by the waiters only once
	// its Store is made, and only if it stored: a purge that landed
	// before the Store (which then fails) may have been answered before
	// a waiter came, and that waiter must not get the purged answer.
	finishOnce sync.Once
	finished   sync.WaitGroup // released once: by finish
	stored     bool           // written before finished is released

	// releaseLease, when the leader took the fleet's fetch lease, releases
	// it; finish calls it, and so does the leader when its response starts
	// streaming (see handler.miss). Set by the leader's fn only.
	releaseLease func()
}

// do calls fn, unless a call for key is under way: then it waits for that
// call's result (or its early release) and returns it with a nil lead; a
// result to be stored is returned once the leader finished the flight,
// and only if it reported it stored (else nil). fn receives its flight,
// to release the waiters early. The leader (the caller that ran fn) gets
// its flight as lead, and must call lead.finish once it stored the
// result: until then the flight hands the result to every request for
// key.
func (g *flights) do(key string, fn func(f *flight) *fetchResult) (res *fetchResult, lead *flight) {
	g.mu.Lock()
	if f, ok := g.m[key]; ok {
		g.mu.Unlock()
		f.done.Wait()
		if f.res != nil && f.res.storing {
			f.finished.Wait()
			if !f.stored {
				return nil, nil // the Store failed (a purge since?): every waiter calls the backend itself
			}
		}
		return f.res, nil
	}
	if g.m == nil {
		g.m = make(map[string]*flight)
	}
	f := &flight{g: g, key: key}
	f.done.Add(1)
	f.finished.Add(1)
	g.m[key] = f
	g.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			// fn panicked (it recovers the handler's panics, but a monitor
			// may panic): waiters fetch themselves.
			f.release(nil)
			f.finish(false)
		}
	}()
	res = fn(f)
	f.share(res)
	ok = true
	return res, f
}

// finish records whether the leader's Store succeeded (stored), for the
// waiters of a result to be stored, releases the fetch lease if the leader
// holds one, and forgets the flight. Safe to call more than once; only the
// first call counts.
func (f *flight) finish(stored bool) {
	f.forget()
	f.finishOnce.Do(func() {
		f.stored = stored
		f.finished.Done()
		if f.releaseLease != nil {
			f.releaseLease()
		}
	})
}

// share hands res to the flight's waiters, once. Safe to call more than
// once and from any goroutine; only the first call (of share or release)
// counts.
func (f *flight) share(res *fetchResult) {
	f.once.Do(func() {
		f.res = res
		f.done.Done()
	})
}

// forget unregisters the flight, so that later requests start a call of
// their own. Safe to call more than once.
func (f *flight) forget() {
	f.g.mu.Lock()
	if f.g.m[f.key] == f {
		delete(f.g.m, f.key)
	}
	f.g.mu.Unlock()
}

// release forgets the flight and hands res to its waiters: an early
// release, before the call returns. Forgotten first, so that no waiter
// that acts on res (one that looks the object up again, say) finds the
// flight again.
func (f *flight) release(res *fetchResult) {
	f.forget()
	f.share(res)
}

// finishIfLed finishes f when there is one (see finish).
func (f *flight) finishIfLed(stored bool) {
	if f != nil {
		f.finish(stored)
	}
}
