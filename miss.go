package microcache

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fetchPlan is what one backend call for a GET starts from: the URL's
// keys and record as the cache read them, and the stale object that may
// answer a failure. A background refresh keeps its own copy.
type fetchPlan struct {
	urlKey string // the URL key
	objKey string // the object key under rec's options; urlKey when they vary on nothing
	rec    Record // the URL's epoch and options as read (rec.Object is not used)

	// fallback is a stale object still within its stale-if-error window,
	// and fallbackBody its expanded body; nil when there is none.
	fallback     *Object
	fallbackBody []byte

	background bool       // a stale-while-revalidate refresh, with no client waiting
	miss       MissReason // what the cache held, for the outcome

	// released, when not nil, is called once the response starts
	// streaming to the leader's client: collapsed waiters then stop
	// waiting and make their own calls.
	released func()
}

// plan returns the fetchPlan of a lookup.
func (lk *lookup) plan() fetchPlan {
	return fetchPlan{
		urlKey:       lk.url.String(),
		objKey:       lk.objectKey(),
		rec:          lk.rec,
		fallback:     lk.obj,
		fallbackBody: lk.body,
	}
}

// keyUnder returns the key of the variant r selects under o: the plan's
// own object key when o varies as the URL's options did.
func (p *fetchPlan) keyUnder(o *Options, r *http.Request) string {
	if varyAlike(p.rec.Options, o) {
		return p.objKey
	}
	return objectKey(p.urlKey, o, r)
}

// mayTake reports whether a request collapsed onto a call whose result
// res is to be stored (and was: see flights.do) may be given it: res is
// stored under the key of the request's own variant, and no purge landed
// between the Store and the request's lookup. The lookup read the URL's
// epoch: 0 (no purge had landed on the URL), or the epoch the Store kept
// or created, unless a purge replaced it since. A purge that lands after
// the lookup is concurrent with the request, which may get either answer.
func (p *fetchPlan) mayTake(res *fetchResult, r *http.Request) bool {
	return (p.rec.Epoch == 0 || p.rec.Epoch == res.opts.Epoch) && p.keyUnder(&res.opts, r) == res.objKey
}

// varyAlike reports whether a and b select variants the same way; nil
// options vary on nothing.
func varyAlike(a, b *Options) bool {
	var none Options
	if a == nil {
		a = &none
	}
	if b == nil {
		b = &none
	}
	return slices.Equal(a.Vary, b.Vary) && slices.Equal(a.VaryQuery, b.VaryQuery)
}

// miss answers a GET that the cache could not answer, from the backend.
// lk.obj is a stale object still within its stale-if-error window, or nil;
// why says what the cache held. With mayWait, a driver shared by several
// processes (DriverLeaser) may make it wait for another process's call and
// look the object up again. out records the outcome.
func (h *handler) miss(w http.ResponseWriter, r *http.Request, lk *lookup, why MissReason, mayWait bool, out *Outcome) {
	m := h.m
	fwd := forwardable(r)
	plan := lk.plan()
	plan.miss = why
	collapse := m.cfg.CollapsedForwarding
	if lk.rec.Options != nil {
		collapse = lk.rec.Options.CollapsedForwarding
	}
	if m.cfg.Timeout > 0 && m.stillRunning(plan.objKey) {
		// A handler abandoned after a Timeout still runs for this object:
		// another call would most likely hang on the same dependency, and
		// handlers would pile up. Answer as the timeout did.
		m.respond(w, r, &fetchResult{timedOut: true}, &plan, false, out)
		return
	}
	if !collapse {
		res := m.fetch(h.next, fwd, &plan, w)
		m.respondAndStore(w, r, res, &plan, out, nil)
		return
	}

	// Requests that select the same object wait for one backend call. With
	// a Timeout to bound it, the call runs detached from the first client's
	// cancellation, since others wait for it. Without one it keeps the
	// first client's context, so that a backend that waits for
	// cancellation (a long poll) cannot hold everyone forever; if that
	// client leaves, the others make their own calls.
	flightKey := plan.objKey
	if lk.rec.Options == nil {
		flightKey = objectKey(plan.urlKey, &Options{Vary: m.cfg.Vary}, r)
	}
	// The fetch lease, when the leader took one, is released once the
	// response is stored (or the leader gave up), as is the flight (see
	// flight.finish): until then other processes wait, and requests here
	// share the result.
	res, lead := m.collapse.do(flightKey, func(f *flight) *fetchResult {
		shared, cancelShared := fwd, context.CancelFunc(func() {})
		if m.cfg.Timeout > 0 {
			ctx, cancel := context.WithCancel(context.WithoutCancel(fwd.Context()))
			shared, cancelShared = fwd.WithContext(ctx), cancel
			defer cancel()
		}
		if mayWait {
			release, waited := m.lease(shared, flightKey)
			if waited {
				res := &fetchResult{lookAgain: true}
				f.release(res) // forgotten before anyone looks again
				return res
			}
			f.releaseLease = release
		}
		leadPlan := plan // the waiters' plan has no release
		leadPlan.released = func() {
			f.release(nil)
			if f.releaseLease != nil {
				// Nor do other processes: they look again and, the object
				// still missing, make their own calls. (finish releases it
				// again, harmlessly.)
				f.releaseLease()
			}
			// Nobody else waits for a stream: it is its client's alone, and
			// ends when that client leaves (an SSE handler waits for that).
			context.AfterFunc(fwd.Context(), cancelShared)
		}
		return m.fetch(h.next, shared, &leadPlan, w)
	})
	leader := lead != nil
	if leader {
		defer lead.finish(false) // if respond panics
	}
	if res != nil && res.lookAgain && mayWait {
		// Another process fetched (or gave up): everyone collapsed here
		// looks the object up again, once, and fetches if still missing.
		// A request looking again already that joined such a flight
		// fetches (its result is not shareable) rather than look again.
		h.serveCacheable(w, r, false, out)
		return
	}
	collapsed := !leader
	if !leader && (res == nil || !res.shareable() || (res.storing && !plan.mayTake(res, r))) {
		// Not for this client: its own backend call, concurrently with the
		// other waiters.
		res = m.fetch(h.next, fwd, &plan, w)
		collapsed = false
	}
	switch {
	case collapsed:
		m.respond(w, r, res, &plan, true, out)
	case leader:
		m.respondAndStore(w, r, res, &plan, out, lead)
	default:
		m.respondAndStore(w, r, res, &plan, out, nil)
	}
}

// respondAndStore ends a miss that made a backend call: it writes the
// response to w and makes the Store fetch prepared (commit); then it
// finishes lead, the flight the request led (nil: none), which releases
// what waits for the Store (the flight's waiters, the fetch lease). out
// records the outcome, and whether the response was stored.
//
// With an in-process driver the Store (a microsecond) comes first. With
// a shared driver (one offering fetch leases: a remote one) it runs
// concurrently with the response, which is sent at once (flushed) rather
// than when the handler returns: the client does not wait for the round
// trip (over HTTP/2 it has the header and the whole body; the stream's
// end follows when the handler returns, after the Store), and a slow
// client holds neither the Store nor what waits for it.
func (m *Microcache) respondAndStore(w http.ResponseWriter, r *http.Request, res *fetchResult, p *fetchPlan, out *Outcome, lead *flight) {
	if res.pending == nil || m.leaser == nil {
		m.commit(r, res)
		lead.finishIfLed(res.stored)
		m.respond(w, r, res, p, false, out)
		recordStored(out, res)
		return
	}
	committed := make(chan struct{})
	var panicked any // a panic of the driver's Store, raised again on the request's goroutine
	go func() {
		defer close(committed)
		defer func() {
			if panicked = recover(); panicked != nil {
				lead.finishIfLed(false)
			}
		}()
		m.commit(r, res)
		lead.finishIfLed(res.stored)
	}()
	m.respond(w, r, res, p, false, out)
	http.NewResponseController(w).Flush() //nolint:errcheck // a writer that cannot flush sends at the end
	<-committed
	if panicked != nil {
		panic(panicked) // as an in-process driver's would, for net/http to recover
	}
	recordStored(out, res)
}

// recordStored sets out, the outcome of a miss that made its own backend
// call, to what commit did: respond recorded what was to be stored.
func recordStored(out *Outcome, res *fetchResult) {
	if out.Kind != OutcomeMiss {
		return
	}
	out.Stored = res.stored
	if !res.stored {
		out.TTL = 0
	}
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
// collapsed says the call was another request's. out records the outcome;
// a request whose handler panicked is left for net/http, unreported.
func (m *Microcache) respond(w http.ResponseWriter, r *http.Request, res *fetchResult, p *fetchPlan, collapsed bool, out *Outcome) {
	*out = Outcome{Kind: OutcomeMiss, Miss: p.miss, Collapsed: collapsed, Stored: res.storing, Status: res.status, BackendStatus: res.status}
	if res.panicked != nil || res.timedOut {
		out.Status, out.BackendStatus = 0, 0
	}
	if res.storing {
		out.TTL = res.opts.TTL
	}
	if res.streamed {
		out.Streamed = true
		if res.panicked != nil {
			// The client has part of the response: only an aborted
			// connection tells it the rest is missing.
			panic(res.panicked.value)
		}
		return
	}
	if res.failed() && !res.panicked.isAbort() && p.fallback != nil {
		t := timingsOf(m.clk, p.fallback)
		now := m.clk.now()
		*out = Outcome{Kind: OutcomeStale, ForError: true, Miss: p.miss, Status: p.fallback.Status, TTL: time.Duration(t.fresh - now)}
		if !res.timedOut && res.panicked == nil {
			out.BackendStatus = res.status
		}
		m.writeObject(w, r, p.fallback, &t, p.fallbackBody, out, now)
		return
	}
	if res.panicked != nil {
		panic(res.panicked.value) // as it would reach net/http without the cache
	}
	if res.timedOut {
		out.Status = http.StatusServiceUnavailable
		m.setOutcomeHeaders(w.Header(), out)
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	if res.trailer != nil {
		announceTrailer(w.Header(), res.trailer)
	}
	body, excess := res.body, []byte(nil)
	if res.lengthMismatch {
		// A handler that wrote past its declared length: the declared part
		// first, then the rest in a write of its own, so that net/http
		// treats the excess as it would have without the cache (HTTP/1.1
		// refuses it, HTTP/2 sends it and the client reports the mismatch).
		if n, err := strconv.Atoi(res.contentLength); err == nil && n < len(body) {
			body, excess = body[:n], body[n:]
		}
	}
	m.writeReplay(w, r, res.status, res.header, res.contentLength, body, out, res.age)
	if len(excess) > 0 && r.Method != http.MethodHead {
		w.Write(excess) //nolint:errcheck // it is meant to fail as it would have
	}
	if res.trailer != nil {
		copyTrailer(w.Header(), res.trailer)
	}
}

// announceTrailer sets the Trailer header for the trailers of t that are
// not set with http.TrailerPrefix, as net/http needs before the body.
func announceTrailer(h, t http.Header) {
	var names []string
	for k := range t {
		if !strings.HasPrefix(k, http.TrailerPrefix) {
			names = append(names, k)
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
}

// copyTrailer sets the trailers t in h, where net/http reads them once the
// handler has returned.
func copyTrailer(h, t http.Header) {
	for k, v := range t {
		h[k] = v
	}
}

// DefaultLeaseTTL bounds a fleet-wide fetch lease (see [DriverLeaser]), and
// how long other processes wait for it, when [Config.Timeout] is zero;
// with a Timeout, the Timeout does.
const DefaultLeaseTTL = 5 * time.Second

// leaseTTL returns how long a fetch lease lasts and is waited for.
func (m *Microcache) leaseTTL() time.Duration {
	if m.cfg.Timeout > 0 {
		return m.cfg.Timeout
	}
	return DefaultLeaseTTL
}

// lease takes the fleet-wide fetch lease on key when the driver offers
// one. It returns the release to call once the fetch is stored, or, when
// another process holds the lease, waits for it (bounded by leaseTTL) and
// returns waited true: the caller then looks the object up again. A driver
// error is reported and the caller fetches as if there were no lease.
func (m *Microcache) lease(r *http.Request, key string) (release func(), waited bool) {
	if m.leaser == nil {
		return func() {}, false
	}
	ttl := m.leaseTTL()
	release, held, err := m.leaser.Lease(r.Context(), key, ttl)
	if err != nil {
		m.driverFailed(r, err)
		return func() {}, false
	}
	if held {
		return release, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), ttl)
	defer cancel()
	if err := m.leaser.Wait(ctx, key); err != nil && ctx.Err() == nil {
		m.driverFailed(r, err)
	}
	return nil, true
}
