package microcache

import (
	"net/http"
	"unsafe"
)

// handler is what Middleware returns: the request flow around next.
type handler struct {
	m    *Microcache
	next http.Handler
}

// ServeHTTP routes a request: GET and HEAD are answered from the cache when
// they can be; POST, PUT, PATCH and DELETE pass through and purge the URL
// on success; protocol upgrades and every other method pass through.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.m
	if isUpgrade(r) {
		// The pass-through writer removes control headers from the 101 and
		// offers Hijack, Flush and Unwrap, so the handler reaches the
		// connection as it would without the cache.
		h.pass(w, r, false)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.serveCacheable(w, r)
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		// RFC 9111 section 4.4: a non-error answer to an unsafe method
		// invalidates the target URI. Methods of unknown safety, which the
		// RFC also names, do not purge here: handlers that ignore the
		// method would let any client clear any URL with a made-up one.
		p := h.pass(w, r, false)
		if s := p.finalStatus(); s >= 200 && s < 400 && !p.hijacked {
			m.purge(r)
		}
	default:
		h.pass(w, r, false)
	}
}

// serveCacheable handles GET and HEAD.
func (h *handler) serveCacheable(w http.ResponseWriter, r *http.Request) {
	m := h.m
	if bypassCache(r) {
		h.pass(w, r, false)
		return
	}
	var key keyBuf
	key.build(m, r)
	defer key.release()
	if key.tooLong() {
		h.pass(w, r, false)
		return
	}

	opts, found, obj, err := m.find(r, &key)
	if err != nil {
		m.driverFailed(r, err)
		h.pass(w, r, false)
		return
	}
	if found && opts.Uncacheable {
		// Learn from this response too: the URL may have become cacheable.
		if p := h.pass(w, r, r.Method == http.MethodGet); r.Method == http.MethodGet {
			m.relearn(r, &key, opts, p)
		}
		return
	}

	var body []byte
	if obj != nil {
		var release func()
		var ok bool
		if body, release, ok = m.bodyOf(r, obj); !ok {
			obj = nil
		} else {
			defer release()
		}
	}

	if obj != nil {
		t := timingsOf(m.clk, obj)
		now := m.clk.now()
		switch t.freshnessAt(now) {
		case fresh:
			m.count(hits)
			m.writeObject(w, r, obj, &t, body, StatusHit, now)
			return
		case staleRevalidate:
			if m.revalidate(h.next, r, key.String(), opts, obj) {
				m.count(stales)
				m.writeObject(w, r, obj, &t, body, StatusStale, now)
				return
			}
		}
		if !t.staleIfErrorAt(now) {
			obj = nil
		}
	}
	if r.Method == http.MethodHead {
		// Only GET responses are stored; a HEAD miss goes through as it is.
		h.pass(w, r, false)
		return
	}
	h.miss(w, r, key.String(), opts, found, obj, body)
}

// find looks up the options of the URL key and the object r selects. obj is
// nil when there is none, or it belongs to a purged epoch. With DriverLRU a
// hit builds no key string: keys are looked up from pooled buffers.
func (m *Microcache) find(r *http.Request, key *keyBuf) (opts Options, found bool, obj *Object, err error) {
	if m.lru != nil {
		// One lookup finds the options and the plain variant's object.
		opts, obj, found = m.lru.lookup(key.view())
	} else if opts, found, err = m.driver.GetOptions(r.Context(), key.String()); err != nil {
		return
	}
	if !found || opts.Uncacheable {
		return opts, found, nil, nil
	}
	varies := len(opts.Vary) > 0 || len(opts.VaryQuery) > 0
	switch {
	case varies && m.lru != nil:
		bp := keyBuffers.Get().(*[]byte)
		b := appendObjectKey((*bp)[:0], key.view(), &opts, r)
		obj = nil
		if len(b) <= maxKeySize { // longer keys are never stored: see fetch
			_, obj, _ = m.lru.lookup(unsafe.String(unsafe.SliceData(b), len(b)))
		}
		*bp = b[:0]
		keyBuffers.Put(bp)
	case m.lru == nil:
		objKey := objectKey(key.String(), &opts, r)
		if len(objKey) > maxKeySize {
			return opts, found, nil, nil
		}
		if obj, err = m.driver.GetObject(r.Context(), objKey); err != nil {
			return
		}
	}
	if obj != nil && obj.Epoch != opts.Epoch {
		obj = nil // purged
	}
	return opts, found, obj, nil
}

// bypassCache reports whether r must neither be answered from nor stored in
// the cache: it carries credentials (a response fetched for other
// credentials must never answer it), or a body (which may select the
// response, a known cache-poisoning vector).
func bypassCache(r *http.Request) bool {
	return len(r.Header["Authorization"]) > 0 ||
		r.ContentLength != 0 || len(r.TransferEncoding) > 0
}

// isUpgrade reports whether r asks to switch protocols: "upgrade" is one of
// the tokens of its Connection header (as in "keep-alive, Upgrade").
func isUpgrade(r *http.Request) bool {
	return hasToken(r.Header["Connection"], "upgrade")
}

// pass sends r to the backend through a passWriter, which removes control
// headers and records the status (and, with learn, the caching traits).
func (h *handler) pass(w http.ResponseWriter, r *http.Request, learn bool) *passWriter {
	m := h.m
	m.count(passes)
	m.count(backendCalls)
	p := &passWriter{ResponseWriter: w, exposed: m.cfg.Exposed, learn: learn}
	h.next.ServeHTTP(p, r)
	p.finish()
	if p.finalStatus() >= 500 {
		m.fail(ErrorEvent{Kind: ErrorBackend, Request: r, Status: p.finalStatus(), Header: w.Header()})
	}
	return p
}

// relearn updates the options of an uncacheable URL from a pass-through
// response: a storable answer makes the URL cacheable again.
func (m *Microcache) relearn(r *http.Request, key *keyBuf, opts Options, p *passWriter) {
	// The response must be one the buffered path would store: not
	// hijacked, not flushed, within MaxObjectSize.
	status := p.finalStatus()
	if p.hijacked || p.flushed || p.written > int64(m.cfg.MaxObjectSize) || !m.storable(status, &p.traits) {
		return
	}
	next := m.learn(&p.traits, opts, true)
	if err := m.driver.SetOptions(r.Context(), key.String(), next); err != nil {
		m.driverFailed(r, err)
	}
}

// purge gives the URL of r a new epoch, which makes every stored variant
// unreachable, and deletes the variant r itself selects.
func (m *Microcache) purge(r *http.Request) {
	key, ok := m.urlKey(r)
	if !ok {
		return
	}
	ctx := r.Context()
	opts, found, err := m.driver.GetOptions(ctx, key)
	if err != nil {
		m.driverFailed(r, err)
		return
	}
	if !found {
		return // no options: no object can be reached either
	}
	objKey := objectKey(key, &opts, r)
	opts.Epoch = newEpoch()
	if err := m.driver.SetOptions(ctx, key, opts); err != nil {
		m.driverFailed(r, err)
	}
	if err := m.driver.DeleteObject(ctx, objKey); err != nil {
		m.driverFailed(r, err)
	}
}

// writeObject replays obj (whose expanded body is body, and whose timings
// are t) to w at now.
func (m *Microcache) writeObject(w http.ResponseWriter, r *http.Request, obj *Object, t *timings, body []byte, state string, now int64) {
	age := -1
	if !m.cfg.SuppressAgeHeader {
		age = t.ageAt(now)
	}
	m.writeReplay(w, r, obj.Status, obj.header, obj.contentLength(), body, state, age)
}
