package microcache

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
)

// ErrPurgeURL is wrapped by the error [Microcache.Purge] returns for a URL
// it cannot purge: not absolute, not http or https, or too long to be a key.
var ErrPurgeURL = errors.New("microcache: cannot purge URL")

// Purge makes every stored variant of the absolute URL rawURL
// ("https://example.com/path?q=1") unreachable, as a successful POST to it
// would: the URL gets a new epoch, in one driver write. The scheme, host,
// path and query are keyed as for a request without X-Forwarded-Host,
// X-Forwarded-Proto or Forwarded headers; the query counts only with
// [Config.HashQuery] (without it, every query of the path is purged at
// once). It returns an error wrapping [ErrPurgeURL] for a URL it cannot
// key, and the driver's error if the driver fails. Safe for concurrent
// use; it may be called from a handler the Microcache wraps.
func (m *Microcache) Purge(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.Join(ErrPurgeURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.Join(ErrPurgeURL, errors.New("microcache: purge needs an absolute http or https URL: "+rawURL))
	}
	r := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
	if u.Scheme == "https" {
		r.TLS = &tls.ConnectionState{} // the key's scheme is the connection's
	}
	key, ok := m.urlKey(r)
	if !ok {
		return errors.Join(ErrPurgeURL, errors.New("microcache: URL too long to be a key"))
	}
	return m.driver.Purge(ctx, key, newEpoch())
}

// PurgeTag makes every stored object whose response carried tag in its
// microcache-tags header unreachable: it purges every URL that stored such
// an object (all of that URL's variants), in one driver call. Tags are
// compared exactly. It returns the driver's error if the driver fails.
// Safe for concurrent use.
func (m *Microcache) PurgeTag(ctx context.Context, tag string) error {
	return m.driver.PurgeTag(ctx, tag, newEpoch())
}
