package microcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// storeResponse ends fetch for a response that teaches the URL something:
// it prepares the Store of the options and, when it may, the response
// (res.pending), which commit makes once the response went to the client.
// The Store succeeds only if the URL's epoch is still the one the plan
// read. A purge that landed while the backend ran, or since, therefore
// wins: the response goes to the clients that asked for it, and nothing is
// stored.
//
// An answer that cannot be stored for a reason of its own request (see
// refusedForRequest) changes nothing but the URL's strike count: the
// objects other clients are served, and their stale-if-error fallbacks,
// stay. Only the origin's word, or HitForPassAfter such answers in a row,
// make the URL pass through.
func (m *Microcache) storeResponse(r *http.Request, p *fetchPlan, res *fetchResult, traits *responseTraits) {
	v := m.judge(res.status, traits)
	switch {
	case res.streamed:
		v = refusedByOrigin // a stream (or a body past MaxObjectSize) will stream again
	case v == storeIt && (res.empty || res.lengthMismatch || res.trailer != nil):
		v = refusedForRequest
	}
	var opts Options
	if v == refusedForRequest && p.rec.Options != nil {
		// This answer says nothing about the URL's other answers.
		opts = *p.rec.Options
		opts.Strikes++
		opts.Uncacheable = opts.Strikes >= HitForPassAfter
	} else {
		opts = m.learn(traits)
		opts.Uncacheable = v == refusedByOrigin
		if v == refusedForRequest {
			opts.Strikes = 1
		}
	}
	opts.Epoch = p.rec.Epoch
	if opts.Epoch == 0 {
		opts.Epoch = newEpoch() // the store creates the URL's record
	}
	res.opts = opts
	res.objKey = p.keyUnder(&opts, r)
	st := Store{URLKey: p.urlKey, Epoch: p.rec.Epoch, Options: &opts}
	switch {
	case len(res.objKey) > maxKeySize:
		// A hostile value of a varied header or parameter: this variant is
		// not stored, but the URL stays cacheable for everyone else.
	case v == storeIt:
		if m.cfg.ETag && res.status == http.StatusOK && !res.header.has("Etag") && !res.header.has("Last-Modified") {
			res.header = res.header.with("Etag", contentETag(res.body))
		}
		// Compressed before the store may be refused (a purge since, or a
		// driver failure): rare, and then only wasted work.
		if obj := m.newObject(r, res, p.background); obj != nil { // nil if it could not be compressed
			obj.Epoch = opts.Epoch
			st.ObjectKey, st.Object, st.Tags = res.objKey, obj, traits.tags
			// Kept with the object's header: a value handed to clients
			// keeps only the header's bytes alive.
			res.contentLength = obj.contentLength()
		}
	case v == refusedByOrigin && p.rec.Options != nil:
		st.ObjectKey, st.Delete = res.objKey, true
	}
	res.pending, res.storing = &st, st.Object != nil
}

// commit makes the Store that fetch prepared for res, if any, and records
// in res.stored whether the response was stored. With a shared driver it
// runs while the response goes to the client (see respondAndStore); the
// fetch lease and the collapsed requests' flight are held until it
// returns. Only the request that made the backend call commits.
func (m *Microcache) commit(r *http.Request, res *fetchResult) {
	st := res.pending
	if st == nil {
		return
	}
	res.pending = nil
	stored, err := m.driver.Store(context.WithoutCancel(r.Context()), st)
	if err != nil {
		m.driverFailed(r, err)
		return
	}
	res.stored = stored && st.Object != nil
}

// newObject builds the object that stores res, fresh for res.opts.TTL from
// now, compressed when a Compressor is configured. Its Epoch is left for
// the caller to set. It returns nil, and reports, when compression fails.
func (m *Microcache) newObject(r *http.Request, res *fetchResult, background bool) *Object {
	now := time.Now()
	produced := now
	if res.age > 0 {
		// A cache behind the handler held it that long already: Age on a
		// hit counts from when it was produced (RFC 9111 section 4.2.3).
		produced = now.Add(-time.Duration(res.age) * time.Second)
	}
	obj := &Object{
		Status:               res.status,
		Body:                 res.body,
		Size:                 len(res.body),
		Date:                 produced,
		Expires:              now.Add(res.opts.TTL),
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

// recache stores the plan's stale fallback again as fresh for its TTL from
// now; its Date, and so its Age, is kept. The store succeeds only if the
// URL's epoch is unchanged and the fallback is still the object stored, so
// it never brings back a purged object or replaces a newer response.
func (m *Microcache) recache(r *http.Request, p *fetchPlan) {
	again := *p.fallback
	again.Expires = time.Now().Add(p.rec.Options.TTL)
	again.stamp(m.clk)
	st := Store{URLKey: p.urlKey, Epoch: p.rec.Epoch, ObjectKey: p.objKey, Object: &again, IfDate: p.fallback.Date}
	if _, err := m.driver.Store(context.WithoutCancel(r.Context()), &st); err != nil {
		m.driverFailed(r, err)
	}
}

// trimmed returns b, or a copy of it without spare capacity when b has much.
func trimmed(b []byte) []byte {
	if cap(b)-len(b) > len(b)/8+64 {
		return bytes.Clone(b)
	}
	return b
}

// contentETag returns a strong entity tag for body: the first 16 bytes of
// its SHA-256, in hex, quoted.
func contentETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}
