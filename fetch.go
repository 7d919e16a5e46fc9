package microcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

var (
	errCorruptObject = fmt.Errorf("%w: stored object fails its consistency checks", ErrCorrupt)
	errNoCompressor  = errors.New("microcache: stored object is compressed but no Compressor is configured")
	errTimeout       = errors.New("microcache: backend timed out")
)

// fetchResult is the outcome of one buffered backend call, shared by every
// request collapsed onto it.
type fetchResult struct {
	status        int
	header        headerFields // the replayable response header
	body          []byte       // the full body, unless streamed
	contentLength string       // len(body), formatted

	// What fetch learned, written before the result is shared.
	storing  bool   // the response is to be stored under objKey (pending holds the Store)
	objKey   string // the key it is stored (or would have been) under
	opts     Options
	streamed bool // the body went to the leader's client as it came

	// Written by commit, by the request that made the call only: the
	// requests collapsed onto it read neither.
	pending *Store // the Store fetch prepared, until commit makes it; nil: none
	stored  bool   // commit stored the response under objKey

	timedOut  bool
	cancelled bool // the request's context ended before the handler returned
	lookAgain bool // no call was made: another process held the fetch lease
	panicked  *panicked

	age            int         // the Age the backend's response carried, in seconds; -1 when none
	personal       bool        // the response says it is for its own request only (private, no-store, nocache, Vary)
	empty          bool        // the handler returned without writing anything
	lengthMismatch bool        // the body does not match the declared Content-Length (kept in contentLength)
	trailer        http.Header // trailers the handler set, to send after the body; nil when none
	unsized        bool        // replay without Content-Length (the handler declared trailers but no length)
}

// panicked is a recovered panic with the stack where it happened.
type panicked struct {
	value any
	stack []byte
}

func (p *panicked) Error() string { return fmt.Sprintf("panic: %v\n\n%s", p.value, p.stack) }

// Unwrap lets errors.Is and errors.As see a panic value that is an error.
func (p *panicked) Unwrap() error {
	err, _ := p.value.(error)
	return err
}

// isAbort reports whether the panic is http.ErrAbortHandler, the sentinel a
// handler uses to abort a response on purpose.
func (p *panicked) isAbort() bool {
	return p != nil && p.value == http.ErrAbortHandler
}

// failed reports whether the backend failed: a 5xx, a timeout or a panic.
func (res *fetchResult) failed() bool {
	return res.timedOut || res.panicked != nil || res.status >= 500
}

// shareable reports whether requests collapsed onto this call may use its
// response: it is being stored, or it is a 5xx (or a timeout) that sets no
// cookie and says nothing that makes it its own request's (private,
// no-store, microcache-nocache, a Vary).
func (res *fetchResult) shareable() bool {
	if res.streamed || res.panicked != nil || res.cancelled {
		return false
	}
	if res.storing || res.timedOut {
		return true
	}
	return res.status >= 500 && !res.personal && !res.header.has("Set-Cookie")
}

// fetch makes one buffered backend call for a GET and stores the response
// when it may. live, when not nil, receives the response directly if it
// turns out not to be bufferable (too large, or flushed). With stale
// recache, the plan's fallback is stored again as fresh here when the
// backend fails, once for all collapsed requests.
func (m *Microcache) fetch(next http.Handler, r *http.Request, p *fetchPlan, live http.ResponseWriter) *fetchResult {
	m.count(backendCalls)
	ctx := r.Context()
	// One allocation for both: they live about as long as each other.
	call := &struct {
		rec recorder
		res fetchResult
	}{}
	rec, res := &call.rec, &call.res
	rec.init(m, live, m.cfg.MaxObjectSize)
	rec.streamOut = Outcome{Kind: OutcomeMiss, Miss: p.miss, Streamed: true}
	rec.onStream = p.released
	res.timedOut, res.panicked = m.run(next, r, rec, p.objKey)
	traits := rec.finish(res)
	res.personal = traits.private || traits.nocache || traits.varyAll || len(traits.vary) > 0
	// A handler whose context ended (its client left) may have answered
	// with anything: that answer is for nobody else.
	res.cancelled = !res.timedOut && ctx.Err() != nil

	switch {
	case res.timedOut:
		m.fail(ErrorEvent{Kind: ErrorTimeout, Request: r, Err: errTimeout, Background: p.background})
	case res.panicked != nil:
		if !res.panicked.isAbort() {
			m.fail(ErrorEvent{Kind: ErrorPanic, Request: r, Err: res.panicked, Background: p.background})
		}
	case res.status >= 500:
		ev := ErrorEvent{Kind: ErrorBackend, Request: r, Status: res.status, Background: p.background}
		if m.errMon != nil {
			ev.Header = res.header.header() // built only for someone to read
		}
		m.fail(ev)
	}
	if res.failed() && p.fallback != nil && p.rec.Options != nil && p.rec.Options.StaleRecache {
		if t := timingsOf(m.clk, p.fallback); t.staleIfErrorAt(m.clk.now()) {
			m.recache(r, p)
		}
	}
	if res.timedOut || res.panicked != nil {
		res.body = nil // there is no response to give anyone
		return res
	}
	if res.streamed && live != nil && res.trailer != nil {
		// The client has the header and body; net/http sends these after.
		copyTrailer(live.Header(), res.trailer)
	}
	if !res.failed() && !res.cancelled {
		// A 5xx is never stored; a cancelled answer teaches nothing, so the
		// URL's options stay as they were.
		m.storeResponse(r, p, res, traits)
	}
	if res.contentLength == "" && !res.unsized {
		res.contentLength = strconv.Itoa(len(res.body))
	}
	return res
}

// run calls next with rec, recovering a panic. With a Timeout it runs next
// on its own goroutine and gives up waiting when the Timeout passes: the
// request's context is cancelled, rec is abandoned (later writes are
// discarded), and until next returns the object key counts as still
// running (see stillRunning). A response that has started streaming to
// its client by then is not cut off: it runs to its end.
func (m *Microcache) run(next http.Handler, r *http.Request, rec *recorder, key string) (timedOut bool, p *panicked) {
	if m.cfg.Timeout <= 0 {
		return false, call(next, rec, r)
	}
	// Cancelled by hand rather than by a deadline, so that a stream (a
	// long poll that answers in pieces) keeps its context past Timeout.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	done := make(chan *panicked, 1)
	finished := make(chan struct{})
	m.goTracked(func() {
		defer close(finished)
		p := call(next, rec, r.WithContext(ctx))
		if p != nil && !p.isAbort() && rec.isAbandoned() {
			// Nobody waits for this result any more; still report it.
			m.fail(ErrorEvent{Kind: ErrorPanic, Request: r, Err: p, Background: true})
		}
		done <- p
	})
	timer := time.NewTimer(m.cfg.Timeout)
	defer timer.Stop()
	select {
	case p := <-done:
		return false, p
	case <-timer.C:
	}
	if rec.abandon() {
		m.trackAbandoned(key, finished)
		return true, nil
	}
	// The response is already streaming to the client: it cannot be
	// replaced any more, so it runs to its end.
	return false, <-done
}

// trackAbandoned counts key as still running until finished is closed.
func (m *Microcache) trackAbandoned(key string, finished <-chan struct{}) {
	m.mu.Lock()
	m.abandoned[key]++
	m.mu.Unlock()
	m.goTracked(func() {
		<-finished
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.abandoned[key]--; m.abandoned[key] <= 0 {
			delete(m.abandoned, key)
		}
	})
}

// stillRunning reports whether a handler abandoned after a Timeout still
// runs for the object key.
func (m *Microcache) stillRunning(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.abandoned[key] > 0
}

// call runs next, returning a recovered panic instead of panicking.
func call(next http.Handler, w http.ResponseWriter, r *http.Request) (p *panicked) {
	defer func() {
		if v := recover(); v != nil {
			p = &panicked{value: v}
			if v != http.ErrAbortHandler {
				p.stack = debug.Stack()
			}
		}
	}()
	next.ServeHTTP(w, r)
	return nil
}
