package microcache

import "net/http"

// lookup is what the cache found for one GET or HEAD: the keys it built,
// the URL's record and the object that answers the request, if any. It is
// built once per request by find and carried through the hit, miss and
// store paths, so that keys are built once and nothing is looked up twice.
type lookup struct {
	url     keyBuf // the URL key
	variant keyBuf // the object key when the URL's options vary; else empty
	varies  bool   // variant holds the object key

	// rec is what the driver holds for the URL. rec.Object is the plain
	// variant's object as the driver returned it; see obj.
	rec Record

	// obj is the stored object for this request's variant at the URL's
	// epoch, or nil. Once the request has been answered from it or it was
	// found unfit, it is the stale-if-error fallback or nil.
	obj     *Object
	body    []byte // obj's body, expanded
	release func() // returns body's buffer; nil when there is none to return
}

// objectKey returns the key the request's variant is stored under, as a
// string of its own.
func (lk *lookup) objectKey() string {
	if lk.varies {
		return lk.variant.String()
	}
	return lk.url.String()
}

// uncacheable reports whether the URL's options say it passes through.
func (lk *lookup) uncacheable() bool { return lk.rec.Options != nil && lk.rec.Options.Uncacheable }

// done returns the lookup's buffers.
func (lk *lookup) done() {
	if lk.release != nil {
		lk.release()
		lk.release = nil
	}
	lk.variant.release()
	lk.url.release()
}

// find looks up the URL of r (whose key lk.url holds) and the object r
// selects: one driver call for a plain URL, two for a varied one. lk.obj is
// left nil when there is no object, it belongs to a purged epoch, or the
// variant's key would be too long to store. The object's body is not
// expanded yet (see useObject).
func (m *Microcache) find(r *http.Request, lk *lookup) error {
	var err error
	if lk.rec, err = m.driver.Lookup(r.Context(), lk.url.view()); err != nil {
		return err
	}
	rec := &lk.rec
	o := rec.Options
	if o == nil || o.Uncacheable {
		return nil
	}
	obj := rec.Object
	if len(o.Vary) > 0 || len(o.VaryQuery) > 0 {
		lk.variant.buildVariant(&lk.url, o, r)
		lk.varies = true
		obj = nil
		if !lk.variant.tooLong() { // longer keys are never stored: see storeResponse
			if obj, err = m.driver.Object(r.Context(), lk.variant.view()); err != nil {
				return err
			}
		}
	}
	if obj != nil && obj.Epoch == rec.Epoch {
		lk.obj = obj // else purged
	}
	return nil
}

// useObject expands lk.obj's body. It drops lk.obj, and reports, when the
// object is corrupt.
func (m *Microcache) useObject(r *http.Request, lk *lookup) {
	if lk.obj == nil {
		return
	}
	body, release, ok := m.bodyOf(r, lk.obj)
	if !ok {
		lk.obj = nil
		return
	}
	lk.body = body
	if release != nil {
		lk.release = release
	}
}
