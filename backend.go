package microcache

import (
	"bytes"
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

	stored   bool   // the response was stored under objKey
	objKey   string // the key it was stored (or would have been) under
	opts     Options
	streamed bool // the body went to the leader's client as it came

	timedOut  bool
	cancelled bool // the request's context ended before the handler returned
	panicked  *panicked
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
// response: it was stored, or it is a 5xx (or a timeout) that sets no
// cookie.
func (res *fetchResult) shareable() bool {
	if res.streamed || res.panicked != nil || res.cancelled {
		return false
	}
	if res.stored || res.timedOut {
		return true
	}
	return res.status >= 500 && !res.header.has("Set-Cookie")
}

// miss answers a GET that the cache could not answer, from the backend.
// fallback is a stale object still within its stale-if-error window, or nil.
func (h *handler) miss(w http.ResponseWriter, r *http.Request, key string, opts Options, found bool, fallback *Object, fallbackBody []byte) {
	m := h.m
	fwd := forwardable(r)
	collapse := m.cfg.CollapsedForwarding
	if found {
		collapse = opts.CollapsedForwarding
	}
	if !collapse {
		res := m.fetch(h.next, fwd, key, opts, found, w, fallback, false)
		m.respond(w, r, res, fallback, fallbackBody)
		return
	}

	// Requests that select the same object wait for one backend call. With
	// a Timeout to bound it, the call runs detached from the first client's
	// cancellation, since others wait for it. Without one it keeps the
	// first client's context, so that a backend that waits for
	// cancellation (a long poll) cannot hold everyone forever; if that
	// client leaves, the others make their own calls.
	flightOpts := opts
	if !found {
		flightOpts = Options{Vary: m.cfg.Vary}
	}
	flightKey := objectKey(key, &flightOpts, r)
	leader := false
	v, _, _ := m.collapse.Do(flightKey, func() (any, error) {
		leader = true
		shared := fwd
		if m.cfg.Timeout > 0 {
			shared = fwd.WithContext(context.WithoutCancel(fwd.Context()))
		}
		return m.fetch(h.next, shared, key, opts, found, w, fallback, false), nil
	})
	res := v.(*fetchResult)
	if leader {
		m.respond(w, r, res, fallback, fallbackBody)
		return
	}
	if !res.shareable() || (res.stored && objectKey(key, &res.opts, r) != res.objKey) {
		// Not for this client: its own backend call, concurrently with the
		// other waiters.
		res = m.fetch(h.next, fwd, key, opts, found, w, fallback, false)
	}
	m.respond(w, r, res, fallback, fallbackBody)
}

// forwardable returns r, or a copy without the headers that would make the
// backend answer with part of the body or a 304, so that the response can
// be stored; the client's own headers are then applied to the stored
// object by writeReplay.
func forwardable(r *http.Request) *http.Request {
	if !needsServeContent(r) {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = r.Header.Clone()
	for _, name := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		delete(r2.Header, name)
	}
	return r2
}

// respond writes the outcome of a backend call to one client: the stale
// fallback when the backend failed and one is allowed, else the response.
func (m *Microcache) respond(w http.ResponseWriter, r *http.Request, res *fetchResult, fallback *Object, fallbackBody []byte) {
	if res.streamed {
		m.count(misses)
		if res.panicked != nil {
			// The client has part of the response: only an aborted
			// connection tells it the rest is missing.
			panic(res.panicked.value)
		}
		return
	}
	if res.failed() && !res.panicked.isAbort() && fallback != nil {
		m.count(stales)
		t := timingsOf(m.clk, fallback)
		m.writeObject(w, r, fallback, &t, fallbackBody, StatusStale, m.clk.now())
		return
	}
	m.count(misses)
	if res.panicked != nil {
		panic(res.panicked.value) // as it would reach net/http without the cache
	}
	if res.timedOut {
		if m.cfg.Exposed {
			w.Header().Set(HeaderStatus, StatusMiss)
		}
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	m.writeReplay(w, r, res.status, res.header, res.contentLength, res.body, StatusMiss, -1)
}

// fetch makes one buffered backend call for a GET and stores the response
// when it may. live, when not nil, receives the response directly if it
// turns out not to be bufferable (too large, or flushed). fallback is the
// stale object the caller may serve on failure; with stale recache it is
// stored again as fresh here, once for all collapsed requests.
func (m *Microcache) fetch(next http.Handler, r *http.Request, key string, prev Options, hadPrev bool, live http.ResponseWriter, fallback *Object, background bool) *fetchResult {
	m.count(backendCalls)
	ctx := r.Context()
	// One allocation for both: they live about as long as each other.
	call := &struct {
		rec recorder
		res fetchResult
	}{}
	rec, res := &call.rec, &call.res
	rec.init(live, m.cfg.MaxObjectSize, m.cfg.Exposed)
	res.timedOut, res.panicked = m.run(next, r, rec)
	var traits *responseTraits
	res.status, res.header, res.body, res.streamed, traits = rec.result()
	// A handler whose context ended (its client left) may have answered
	// with anything: that answer is for nobody else.
	res.cancelled = !res.timedOut && ctx.Err() != nil

	switch {
	case res.timedOut:
		m.fail(ErrorEvent{Kind: ErrorTimeout, Request: r, Err: errTimeout, Background: background})
	case res.panicked != nil:
		if !res.panicked.isAbort() {
			m.fail(ErrorEvent{Kind: ErrorPanic, Request: r, Err: res.panicked, Background: background})
		}
	case res.status >= 500:
		ev := ErrorEvent{Kind: ErrorBackend, Request: r, Status: res.status, Background: background}
		if m.errMon != nil {
			ev.Header = res.header.header() // built only for someone to read
		}
		m.fail(ev)
	}
	if res.failed() && fallback != nil && prev.StaleRecache {
		if t := timingsOf(m.clk, fallback); t.staleIfErrorAt(m.clk.now()) {
			m.recache(r, objectKey(key, &prev, r), fallback, prev)
		}
	}
	if res.timedOut || res.panicked != nil {
		res.body = nil // there is no response to give anyone
		return res
	}
	if !res.failed() && !res.cancelled {
		// A 5xx is never stored; a cancelled answer teaches nothing, so the
		// URL's options stay as they were.
		m.learnAndStore(r, key, prev, hadPrev, res, traits, background)
	}
	if res.contentLength == "" {
		res.contentLength = strconv.Itoa(len(res.body))
	}
	return res
}

// learnAndStore ends fetch for a response that teaches the URL's options:
// it stores the options and, when it may, the response.
func (m *Microcache) learnAndStore(r *http.Request, key string, prev Options, hadPrev bool, res *fetchResult, traits *responseTraits, background bool) {
	ctx := r.Context()
	storable := !res.streamed && r.Method == http.MethodGet && m.storable(res.status, traits)
	opts := m.learn(traits, prev, hadPrev)
	opts.Uncacheable = !storable
	res.opts = opts
	res.objKey = objectKey(key, &opts, r)
	if len(res.objKey) > maxKeySize {
		// A hostile value of a varied header or parameter: this variant is
		// not stored, but the URL stays cacheable for everyone else.
		storable = false
	}
	var obj *Object
	if storable {
		// Compressed before the store may be refused (a purge since, or a
		// driver failure): rare, and then only wasted work.
		obj = m.newObject(r, res, opts.TTL, background) // nil if it could not be compressed
	}
	if obj != nil {
		// Kept with the object's header: a value handed to clients keeps
		// only the header's bytes alive.
		res.contentLength = obj.contentLength()
	}
	if m.lru != nil {
		m.storeLRU(key, res, hadPrev, obj, storable)
		return
	}
	// Options may have changed while the backend ran: a purge gave the URL
	// a new epoch (then this response predates it and must not be stored),
	// or a concurrent first fetch created them (then share its epoch, so
	// neither orphans the other's objects). The Driver interface has no
	// compare-and-swap, so for drivers other than DriverLRU (see storeLRU)
	// this narrows those races rather than closing them.
	if cur, ok, err := m.driver.GetOptions(ctx, key); err == nil && ok {
		if hadPrev && cur.Epoch != prev.Epoch {
			return
		}
		opts.Epoch = cur.Epoch
		res.opts.Epoch = cur.Epoch
	}
	if err := m.driver.SetOptions(ctx, key, opts); err != nil {
		m.driverFailed(r, err)
		return
	}
	if !storable {
		if hadPrev {
			if err := m.driver.DeleteObject(ctx, res.objKey); err != nil {
				m.driverFailed(r, err)
			}
		}
		return
	}
	if obj == nil {
		return
	}
	obj.Epoch = opts.Epoch
	if err := m.driver.SetObject(ctx, res.objKey, obj); err != nil {
		m.driverFailed(r, err)
		return
	}
	res.stored = true
}

// storeLRU is the end of fetch for DriverLRU, which checks the epoch and
// stores the options (and the plain variant's object) in one locked step,
// so a purge cannot land between the check and the store. A varied
// object is stored after, with the epoch the options were stored with:
// should a purge come in between, the object is already unreachable.
func (m *Microcache) storeLRU(key string, res *fetchResult, hadPrev bool, obj *Object, storable bool) {
	plain := res.objKey == key
	var plainObj *Object
	if plain {
		plainObj = obj
	}
	epoch, ok := m.lru.storeFetched(key, res.opts, hadPrev, plainObj, plain && hadPrev && !storable)
	res.opts.Epoch = epoch
	if !ok {
		return
	}
	if !plain {
		switch {
		case obj != nil:
			obj.Epoch = epoch
			m.lru.SetObject(context.Background(), res.objKey, obj) //nolint:errcheck // DriverLRU never fails
		case hadPrev && !storable:
			m.lru.DeleteObject(context.Background(), res.objKey) //nolint:errcheck // DriverLRU never fails
		}
	}
	res.stored = obj != nil
}

// newObject builds the object that stores res, fresh for ttl from now,
// compressed when a Compressor is configured. Its Epoch is left for the
// caller to set. It returns nil, and reports, when compression fails.
func (m *Microcache) newObject(r *http.Request, res *fetchResult, ttl time.Duration, background bool) *Object {
	now := time.Now()
	obj := &Object{
		Status:               res.status,
		Body:                 res.body,
		Size:                 len(res.body),
		Date:                 now,
		Expires:              now.Add(ttl),
		StaleWhileRevalidate: res.opts.StaleWhileRevalidate,
		StaleIfError:         res.opts.StaleIfError,
		header:               res.header,
	}
	obj.prepare()
	if c := m.cfg.Compressor; c != nil {
		z, err := c.Compress(nil, res.body)
		if err != nil {
			m.fail(ErrorEvent{Kind: ErrorCompressor, Request: r, Err: err, Background: background})
			return nil
		}
		obj.Body, obj.Compressed = z, true
	}
	// A grown buffer, or Compress's worst-case allocation, would keep its
	// spare capacity for the object's lifetime.
	obj.Body = trimmed(obj.Body)
	obj.stamp(m.clk)
	return obj
}

// recache stores a stale object again as fresh for its TTL from now; its
// Date, and so its Age, is kept.
func (m *Microcache) recache(r *http.Request, objKey string, obj *Object, opts Options) {
	again := *obj
	again.Expires = time.Now().Add(opts.TTL)
	again.stamp(m.clk)
	if err := m.driver.SetObject(r.Context(), objKey, &again); err != nil {
		m.driverFailed(r, err)
	}
}

// run calls next with rec, recovering a panic. With a Timeout it runs next
// on its own goroutine and gives up waiting when the Timeout passes: the
// request's context is cancelled, rec is abandoned (later writes are
// discarded) and the goroutine ends when next returns.
func (m *Microcache) run(next http.Handler, r *http.Request, rec *recorder) (timedOut bool, p *panicked) {
	if m.cfg.Timeout <= 0 {
		return false, call(next, rec, r)
	}
	ctx, cancel := context.WithTimeout(r.Context(), m.cfg.Timeout)
	defer cancel()
	done := make(chan *panicked, 1)
	m.goTracked(func() {
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
		return true, nil
	}
	// The response is already streaming to the client: it cannot be
	// replaced any more, so it runs to its end.
	return false, <-done
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

// revalidate starts a background refresh of obj, unless one is under way.
// It returns false, starting nothing, once the Microcache is stopped: the
// caller then refreshes in the foreground.
func (m *Microcache) revalidate(next http.Handler, r *http.Request, key string, opts Options, obj *Object) bool {
	objKey := objectKey(key, &opts, r)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return false
	}
	if _, busy := m.revalidating[objKey]; busy {
		return true
	}
	m.revalidating[objKey] = struct{}{}
	m.background.Add(1)

	// The background request keeps the client's context values but not its
	// cancellation; Stop cancels it. It is a deep copy, since the client's
	// request may be reused once its handler returns.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	stop := context.AfterFunc(m.stopCtx, cancel)
	bg := forwardable(r.Clone(ctx))
	bg.Body = http.NoBody
	bg.Method = http.MethodGet // a HEAD in the stale window refreshes the GET object
	go func() {
		defer m.background.Done()
		defer func() {
			stop()
			cancel()
			m.mu.Lock()
			delete(m.revalidating, objKey)
			m.mu.Unlock()
		}()
		m.fetch(next, bg, key, opts, true, nil, obj, true)
	}()
	return true
}

// goTracked runs f on a new goroutine that Stop waits for, or untracked
// once the Microcache is stopped (Stop no longer waits then, so that no
// WaitGroup.Add can race with its Wait).
func (m *Microcache) goTracked(f func()) {
	m.mu.Lock()
	tracked := m.running
	if tracked {
		m.background.Add(1)
	}
	m.mu.Unlock()
	go func() {
		if tracked {
			defer m.background.Done()
		}
		f()
	}()
}

// trimmed returns b, or a copy of it without spare capacity when b has much.
func trimmed(b []byte) []byte {
	if cap(b)-len(b) > len(b)/8+64 {
		return bytes.Clone(b)
	}
	return b
}
