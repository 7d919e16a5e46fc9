// Package microcache is an HTTP microcache: middleware that stores the
// responses of any [http.Handler] for seconds, to cut load on the origin,
// smooth response times and keep answering while a dependency fails.
//
// [New] builds a [Microcache] from a [Config]; [Microcache.Middleware] wraps
// a handler. GET responses are buffered, stored through a [Driver] (an
// in-memory LRU by default, see [NewDriverLRU]) and optionally compressed by
// a [Compressor]. HEAD is answered from stored GET responses. A successful
// POST, PUT, PATCH or DELETE purges every stored variant of its URL. Other
// methods, protocol upgrades, requests with credentials or a body, and URLs
// whose responses cannot be stored pass straight through.
//
// # Control headers
//
// The backend steers the cache with response headers prefixed
// "microcache-", which never reach the client, so they cannot clash with the
// Cache-Control headers meant for CDNs and browsers. Names are matched
// case-insensitively; N is whole seconds or a Go duration ("500ms"); a
// malformed, negative or overflowing value is ignored.
//
//	microcache-cache: 1                    store this response even when Config.Nocache is set
//	microcache-nocache: 1                  do not store it; pass the URL through from now on
//	microcache-ttl: N                      overrides Config.TTL
//	microcache-stale-if-error: N           overrides Config.StaleIfError
//	microcache-stale-while-revalidate: N   overrides Config.StaleWhileRevalidate
//	microcache-stale-recache: 1            turns Config.StaleRecache on
//	microcache-no-stale-recache: 1         turns Config.StaleRecache off
//	microcache-collapsed-forwarding: 1     turns Config.CollapsedForwarding on
//	microcache-no-collapsed-forwarding: 1  turns Config.CollapsedForwarding off
//	microcache-vary: h1, h2                request headers that select a variant
//	microcache-vary-query: p1, p2          query parameters that select a variant
//
// With [Config.Exposed] every response the cache handles carries
// "Microcache: HIT", "MISS" or "STALE"; HIT and STALE responses carry Age
// unless [Config.SuppressAgeHeader] is set.
//
// # Safe by default
//
// A response is never stored when it sets a cookie, says Vary: *, has a
// status other than 2xx or 3xx (206 and 304 excluded), is a 201 or 202,
// is empty (the handler wrote nothing), disagrees with its declared
// Content-Length, carries trailers, or grows past [Config.MaxObjectSize];
// nor, unless it says "microcache-cache: 1", when it says Cache-Control:
// private or no-store. Requests with an Authorization header, a cookie
// named in [Config.SessionCookies], or a body are never answered from the
// cache. The cache does not otherwise look at request cookies: a page
// personalised by a cookie must say so (private, microcache-nocache) or
// name the cookie in SessionCookies. An answer that cannot be stored for a
// reason of its own request never removes what other clients are served;
// [HitForPassAfter] of them in a row make the URL pass through. Range
// and conditional requests are answered from complete stored responses;
// the backend is asked for the complete response. Cache keys include the
// connection's scheme, host, path, the sorted query (with
// [Config.HashQuery]) and the X-Forwarded-Host, X-Forwarded-Proto and
// Forwarded headers, and are never hashed, so they cannot collide. Without
// HashQuery the query is not part of the key (only the parameters named by
// microcache-vary-query are): set HashQuery unless responses never depend
// on the query.
//
// A failing driver or compressor, or a corrupt stored object, never fails
// a request: the backend answers, nothing is stored, and the failure is
// counted (see [Stats]) and reported (see [ErrorMonitor]).
//
// # Limits
//
// Responses are buffered up to [Config.MaxObjectSize]; a larger response,
// or one whose handler flushes (server-sent events, long polls), is
// streamed to its client and not stored.
//
// A Microcache is safe for concurrent use by multiple goroutines.
package microcache
