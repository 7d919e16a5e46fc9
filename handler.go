package microcache

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// handler is what Middleware returns: the request flow around next.
type handler struct {
	m    *Microcache
	next http.Handler
}

// ServeHTTP routes a request: GET and HEAD are answered from the cache when
// they can be; POST, PUT, PATCH and DELETE pass through and purge the URL
// on success; protocol upgrades and every other method pass through. Every
// request ends in one Outcome, reported once.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.m
	var out Outcome
	// Deferred, so that a request whose handler panics is counted too, as
	// the panic goes on to net/http untouched.
	defer m.report(r, &out)
	switch {
	case m.cfg.Passthrough != nil && m.cfg.Passthrough(r):
		h.pass(w, r, false, PassPredicate, &out)
	case isUpgrade(r):
		// The pass-through writer removes control headers from the 101 and
		// offers Hijack, Flush and Unwrap, so the handler reaches the
		// connection as it would without the cache.
		h.pass(w, r, false, PassUpgrade, &out)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		h.serveCacheable(w, r, true, &out)
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodDelete:
		// RFC 9111 section 4.4: a non-error answer to an unsafe method
		// invalidates the target URI. Methods of unknown safety, which the
		// RFC also names, do not purge here: handlers that ignore the
		// method would let any client clear any URL with a made-up one.
		// The purge is written before the answer can reach the client:
		// when the handler returns, or earlier if it sends part of the
		// answer while it runs (then the URL is purged again when it
		// returns, since a GET may have stored the old content meanwhile).
		p := h.newPassWriter(w, false, PassMethod)
		p.beforeSend = func() {
			if purges(p.finalStatus()) {
				m.invalidate(r, w.Header())
			}
		}
		h.run(p, r, &out)
		if purges(p.finalStatus()) && !p.hijacked {
			m.invalidate(r, w.Header())
		}
	default:
		h.pass(w, r, false, PassMethod, &out)
	}
}

// serveCacheable handles GET and HEAD: from a fresh object (hit), from a
// stale one while it is refreshed (stale), or from the backend (miss or
// pass), and records how in out. mayWait is passed on to miss.
func (h *handler) serveCacheable(w http.ResponseWriter, r *http.Request, mayWait bool, out *Outcome) {
	m := h.m
	if why := m.bypassCache(r); why != PassNone {
		h.pass(w, r, false, why, out)
		return
	}
	var lk lookup
	lk.url.build(m, r)
	defer lk.done()
	if lk.url.tooLong() {
		h.pass(w, r, false, PassKeyTooLong, out)
		return
	}
	if err := m.find(r, &lk); err != nil {
		m.driverFailed(r, err)
		h.pass(w, r, false, PassDriverError, out)
		return
	}
	if lk.uncacheable() {
		// Learn from this response too: the URL may have become cacheable.
		if p := h.pass(w, r, r.Method == http.MethodGet, PassUncacheable, out); r.Method == http.MethodGet {
			m.relearn(r, &lk, p)
		}
		return
	}

	m.useObject(r, &lk)
	miss := MissURI
	switch {
	case lk.obj != nil:
		miss = MissStale
	case lk.varies:
		miss = MissVary
	}
	if obj := lk.obj; obj != nil {
		t := timingsOf(m.clk, obj)
		now := m.clk.now()
		switch t.freshnessAt(now) {
		case fresh:
			*out = Outcome{Kind: OutcomeHit, Status: obj.Status, TTL: time.Duration(t.fresh - now)}
			m.writeObject(w, r, obj, &t, lk.body, out, now)
			return
		case staleRevalidate:
			if m.revalidate(h.next, r, &lk) {
				*out = Outcome{Kind: OutcomeStale, Status: obj.Status, TTL: time.Duration(t.fresh - now)}
				m.writeObject(w, r, obj, &t, lk.body, out, now)
				return
			}
		}
		if !t.staleIfErrorAt(now) {
			lk.obj = nil // no fallback
		}
	}
	if r.Method == http.MethodHead {
		// Only GET responses are stored; a HEAD miss goes through as it is.
		h.pass(w, r, false, PassHead, out)
		return
	}
	h.miss(w, r, &lk, miss, mayWait, out)
}

// bypassCache returns why r must neither be answered from nor stored in
// the cache, or PassNone: it carries credentials (a response fetched for
// other credentials must never answer it), a session cookie named in
// Config.SessionCookies (likewise), or a body (which may select the
// response, a known cache-poisoning vector).
func (m *Microcache) bypassCache(r *http.Request) PassReason {
	switch {
	case len(r.Header["Authorization"]) > 0:
		return PassCredentials
	case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
		return PassBody
	case len(m.cfg.SessionCookies) > 0 && hasCookie(r.Header["Cookie"], m.cfg.SessionCookies):
		return PassSessionCookie
	}
	return PassNone
}

// hasCookie reports whether the Cookie header values carry a cookie with
// one of names (compared exactly: cookie names are case-sensitive),
// without allocating.
func hasCookie(values []string, names []string) bool {
	for _, v := range values {
		for v != "" {
			var pair string
			pair, v, _ = strings.Cut(v, ";")
			name, _, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if slices.Contains(names, strings.TrimSpace(name)) {
				return true
			}
		}
	}
	return false
}

// isUpgrade reports whether r asks to switch protocols: "upgrade" is one of
// the tokens of its Connection header (as in "keep-alive, Upgrade").
func isUpgrade(r *http.Request) bool {
	return hasToken(r.Header["Connection"], "upgrade")
}

// pass sends r to the backend through a passWriter, which removes control
// headers, sets the outcome's headers and records the status (and, with
// learn, the caching traits); out records the pass and why.
func (h *handler) pass(w http.ResponseWriter, r *http.Request, learn bool, why PassReason, out *Outcome) *passWriter {
	return h.run(h.newPassWriter(w, learn, why), r, out)
}

// newPassWriter returns the writer of a pass-through to w, for why.
func (h *handler) newPassWriter(w http.ResponseWriter, learn bool, why PassReason) *passWriter {
	return &passWriter{ResponseWriter: w, m: h.m, out: Outcome{Kind: OutcomePass, Pass: why}, learn: learn}
}

// run calls the handler through p, and records the pass in out.
func (h *handler) run(p *passWriter, r *http.Request, out *Outcome) *passWriter {
	m := h.m
	m.count(backendCalls)
	w := p.ResponseWriter
	*out = p.out // if next panics, this is what is reported
	h.next.ServeHTTP(p, r)
	p.finish()
	*out = p.out
	out.Status = p.finalStatus()
	if p.finalStatus() >= 500 {
		m.fail(ErrorEvent{Kind: ErrorBackend, Request: r, Status: p.finalStatus(), Header: w.Header()})
	}
	return p
}

// relearn updates the options of an uncacheable URL from a pass-through
// response: a storable answer makes the URL cacheable again, in a new
// epoch. Objects stored before the URL was learned uncacheable (the
// variants other than the one that taught it, or an object kept by a
// hit-for-pass) are older than what clients got while it passed through:
// the URL is purged first, so none of them is served again. The store is
// conditional on the purge's epoch, so a purge that lands meanwhile wins.
func (m *Microcache) relearn(r *http.Request, lk *lookup, p *passWriter) {
	// The response must be one the buffered path would store: not
	// hijacked, not flushed, not empty, within MaxObjectSize, without
	// trailers, matching its Content-Length.
	if !p.storableAnswer(m.cfg.MaxObjectSize) || m.judge(p.finalStatus(), &p.traits) != storeIt {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	key := lk.url.String()
	epoch := newEpoch()
	if err := m.driver.Purge(ctx, key, epoch); err != nil {
		// Reported, and the store still tried: a shared driver that cannot
		// reach its store purges its local tier all the same (and the
		// store then succeeds there); a purge that did not happen makes it
		// fail.
		m.driverFailed(r, err)
	}
	next := m.learn(&p.traits)
	next.Epoch = epoch
	st := Store{URLKey: key, Epoch: epoch, Options: &next}
	if _, err := m.driver.Store(ctx, &st); err != nil {
		m.driverFailed(r, err)
	}
}

// invalidate purges the URL of r, which a successful unsafe method may
// have changed, and the URLs its answer (header h) names in Location and
// Content-Location when they are of r's origin: RFC 9111 section 4.4 lets
// a cache invalidate those, and forbids it for another origin's, which
// would let one site clear another's.
func (m *Microcache) invalidate(r *http.Request, h http.Header) {
	own, ok := m.urlKey(r)
	if !ok {
		return
	}
	m.purge(r, own)
	for _, name := range [...]string{"Location", "Content-Location"} {
		if v := h.Get(name); v != "" {
			if key, ok := m.sameOriginKey(r, v); ok && key != own {
				m.purge(r, key)
			}
		}
	}
}

// sameOriginKey returns the URL key of ref, a URI reference resolved
// against r's URL, keyed as r is; ok is false when ref does not parse, is
// of another origin (scheme or host) than r, or is too long to be a key.
func (m *Microcache) sameOriginKey(r *http.Request, ref string) (key string, ok bool) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if (u.Scheme != "" && !strings.EqualFold(u.Scheme, scheme)) || (u.Host != "" && !strings.EqualFold(u.Host, r.Host)) {
		return "", false
	}
	target := r.URL.ResolveReference(u)
	r2 := new(http.Request)
	*r2 = *r
	r2.Method = http.MethodGet
	r2.URL = &url.URL{Path: target.Path, RawPath: target.RawPath, RawQuery: target.RawQuery}
	return m.urlKey(r2)
}

// purge gives the URL under key a new epoch, for r, which makes every
// stored variant unreachable: one write, whatever the driver held. It is
// detached from r's cancellation, so the client's leaving cannot cancel
// it.
func (m *Microcache) purge(r *http.Request, key string) {
	if err := m.driver.Purge(context.WithoutCancel(r.Context()), key, newEpoch()); err != nil {
		m.driverFailed(r, err)
	}
}

// writeObject replays obj (whose expanded body is body, and whose timings
// are t) to w at now, as out says.
func (m *Microcache) writeObject(w http.ResponseWriter, r *http.Request, obj *Object, t *timings, body []byte, out *Outcome, now int64) {
	age := -1
	if !m.cfg.SuppressAgeHeader {
		age = t.ageAt(now)
	}
	m.writeReplay(w, r, obj.Status, obj.header, obj.contentLength(), body, out, age)
}

// purges reports whether an answer with status to an unsafe method
// invalidates its URL: a success or a redirect (RFC 9111 section 4.4: a
// non-error status).
func purges(status int) bool { return status >= 200 && status < 400 }
