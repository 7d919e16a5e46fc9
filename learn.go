package microcache

import (
	"net/http"
	"slices"
)

// storable reports whether a response may be stored.
func (m *Microcache) storable(status int, t *responseTraits) bool {
	switch {
	case status < 200 || status >= 400 || status == http.StatusPartialContent || status == http.StatusNotModified:
		return false
	case t.setsCookie, t.varyAll, t.nocache:
		return false
	case t.cache:
		return true
	case m.cfg.Nocache, t.private:
		return false
	}
	return true
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
