package microcache

import (
	"net/http"
	"slices"
)

// verdict is what the cache makes of one backend answer to a GET.
type verdict int

const (
	// storeIt: the answer is stored.
	storeIt verdict = iota
	// refusedByOrigin: the origin said its answers for the URL must not be
	// stored; the URL passes through from now on.
	refusedByOrigin
	// refusedForRequest: this answer cannot be stored for a reason of its
	// own (a 4xx, a cookie, an empty or truncated answer...). It leaves
	// the URL's stored objects alone and counts a strike (see
	// HitForPassAfter).
	refusedForRequest
)

// judge returns the verdict on an answer with this status and traits.
func (m *Microcache) judge(status int, t *responseTraits) verdict {
	switch {
	case t.nocache, t.varyAll:
		return refusedByOrigin
	case status < 200 || status >= 400 || status == http.StatusPartialContent || status == http.StatusNotModified:
		return refusedForRequest
	case t.setsCookie:
		return refusedForRequest
	case t.cache:
		return storeIt
	case m.cfg.Nocache, t.private:
		return refusedByOrigin
	case status == http.StatusCreated || status == http.StatusAccepted:
		// They describe one action (a resource made, a job queued), not
		// the resource at this URL: a "still processing" 202 must not be
		// replayed once the job is done.
		return refusedForRequest
	}
	return storeIt
}

// learn returns the options a response asks for. Their Epoch is left for
// the caller to set.
func (m *Microcache) learn(t *responseTraits) Options {
	c := &m.cfg
	o := Options{
		TTL:                  c.TTL,
		StaleIfError:         c.StaleIfError,
		StaleWhileRevalidate: c.StaleWhileRevalidate,
		StaleRecache:         (c.StaleRecache || t.staleRecache) && !t.noStaleRecache,
		CollapsedForwarding:  (c.CollapsedForwarding || t.collapsed) && !t.noCollapsed,
	}
	if t.hasTTL {
		o.TTL = t.ttl
	}
	if t.hasStaleIfError {
		o.StaleIfError = t.staleIfError
	}
	if t.hasStaleWhileRevalidate {
		o.StaleWhileRevalidate = t.staleWhileRevalidate
	}
	o.Vary = sortedUnion(c.Vary, t.vary)
	o.VaryQuery = sortedUnion(nil, t.varyQuery)
	return o
}

// sortedUnion returns the sorted union of a and b (nil when empty), so that
// a response listing the same names in another order selects the same
// variants.
func sortedUnion(a, b []string) []string {
	if len(a)+len(b) == 0 {
		return nil
	}
	u := appendTokens(append([]string(nil), a...), b)
	slices.Sort(u)
	return u
}
