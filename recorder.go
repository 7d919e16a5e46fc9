package microcache

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// recorder is the ResponseWriter a buffered backend request writes to. It
// records the status, a snapshot of the header taken when the status is
// written (httptest.ResponseRecorder semantics), and the body up to a limit.
//
// When the body outgrows the limit, or the handler flushes, the recorder
// stops buffering: if it has a live writer (the foreground client's), what
// was buffered and everything after goes to that writer; otherwise the rest
// is discarded. Either way the response is no longer storable.
//
// After a timeout the recorder is abandoned: later writes fail with
// http.ErrHandlerTimeout. A mutex makes that safe, since the handler then
// runs on its own goroutine.
//
// The recorder deliberately has no Unwrap and no Hijack: giving the handler
// the live connection would bypass the buffer. It implements Flush (and
// FlushError, for http.ResponseController) by switching to streaming.
type recorder struct {
	mu          sync.Mutex
	header      http.Header  // handed to the handler
	fields      headerFields // replayable header as of WriteHeader
	status      int
	body        []byte
	limit       int
	live        http.ResponseWriter // nil when nobody can receive a stream
	m           *Microcache         // for the outcome headers sent with a stream
	streamOut   Outcome             // the outcome of a response that streams to live
	wroteHeader bool
	streaming   bool // past the limit or flushed: not buffering any more
	abandoned   bool // timed out: everything is discarded

	// Read from the header when the status is written.
	traits        responseTraits
	contentLength []string // the handler's own Content-Length, for streaming
	declared      int64    // that Content-Length as a number; -1 when none or malformed
	age           int      // the Age a cache behind the handler sent, in seconds; -1 when none
	trailerNames  []string // the Trailer header's values: trailers announced before the body

	implicit bool   // the handler returned without writing anything
	onStream func() // called, with mu held, when the response starts streaming; may be nil
}

// init readies a zero recorder to record a response of at most limit
// body bytes.
func (rec *recorder) init(m *Microcache, live http.ResponseWriter, limit int) {
	rec.header, rec.limit, rec.live, rec.m = make(http.Header), limit, live, m
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(code int) {
	if code < 100 || code > 999 {
		// As net/http does, so the panic happens in the handler, where it
		// is recovered and reported like any other.
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.writeHeaderLocked(code)
}

func (rec *recorder) writeHeaderLocked(code int) {
	if rec.abandoned || rec.wroteHeader {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// Informational responses (103 Early Hints) go to the live client
		// at once, as net/http would send them; they are never stored.
		if rec.live != nil {
			// Send the handler's current header with it, then put the live
			// header back: what an informational response carries is not
			// part of the final one unless the handler keeps it.
			lh := rec.live.Header()
			saved := make(http.Header, len(rec.header))
			for k, v := range rec.header {
				if !isControlHeader(k) {
					old, had := lh[k]
					if had {
						saved[k] = old
					} else {
						saved[k] = nil
					}
					lh[k] = append([]string(nil), v...)
				}
			}
			rec.live.WriteHeader(code)
			for k, old := range saved {
				if old == nil {
					delete(lh, k)
				} else {
					lh[k] = old
				}
			}
		}
		return
	}
	rec.wroteHeader = true
	rec.status = code
	if _, ok := rec.header["Date"]; !ok {
		// Left to net/http, which would stamp each replay anew: the stored
		// response keeps the Date it was produced with (RFC 9110 section
		// 6.6.1). A nil Date, net/http's way to send none, is kept.
		rec.header["Date"] = []string{httpDate(time.Now())}
	}
	rec.age = parseAge(rec.header["Age"])
	rec.traits = readTraits(rec.header)
	rec.fields = clientFields(rec.header)
	rec.contentLength = rec.header["Content-Length"]
	rec.declared = -1
	if len(rec.contentLength) == 1 {
		if n, err := strconv.ParseInt(rec.contentLength[0], 10, 64); err == nil && n >= 0 {
			rec.declared = n
		}
	}
	rec.trailerNames = rec.header["Trailer"]
}

func (rec *recorder) Write(p []byte) (int, error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.abandoned {
		return 0, http.ErrHandlerTimeout
	}
	if !rec.wroteHeader {
		rec.writeHeaderLocked(http.StatusOK)
	}
	if !rec.streaming {
		if len(rec.body)+len(p) <= rec.limit {
			if rec.body == nil {
				rec.body = make([]byte, 0, rec.sizeHint(len(p)))
			}
			rec.body = append(rec.body, p...)
			return len(p), nil
		}
		rec.startStreamingLocked()
	}
	if rec.live == nil {
		return len(p), nil
	}
	return rec.live.Write(p)
}

// sizeHint is the capacity to give the body on the first write of n
// bytes: the handler's Content-Length when it declared one within the
// limit, else n.
func (rec *recorder) sizeHint(n int) int {
	if len(rec.contentLength) == 1 {
		if cl, err := strconv.Atoi(rec.contentLength[0]); err == nil && cl >= n && cl <= rec.limit {
			return cl
		}
	}
	return n
}

// startStreamingLocked stops buffering and, when there is a live writer,
// sends it the header and what was buffered so far.
func (rec *recorder) startStreamingLocked() {
	rec.streaming = true
	if rec.onStream != nil {
		rec.onStream()
	}
	if rec.live == nil {
		rec.body = nil
		return
	}
	lh := rec.live.Header()
	rec.fields.fill(lh, make([]string, rec.fields.values()))
	if rec.contentLength != nil {
		lh["Content-Length"] = rec.contentLength
	}
	if rec.trailerNames != nil {
		lh["Trailer"] = rec.trailerNames
	}
	if rec.age >= 0 {
		lh["Age"] = []string{strconv.Itoa(rec.age)}
	}
	rec.streamOut.Status, rec.streamOut.BackendStatus = rec.status, rec.status
	rec.m.setOutcomeHeaders(lh, &rec.streamOut)
	rec.live.WriteHeader(rec.status)
	if len(rec.body) > 0 {
		rec.live.Write(rec.body) //nolint:errcheck // later writes report the same error to the handler
	}
	rec.body = nil
}

// FlushError switches the recorder to streaming and flushes the live
// writer. It implements the method http.ResponseController looks for.
func (rec *recorder) FlushError() error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.abandoned {
		return http.ErrHandlerTimeout
	}
	if !rec.wroteHeader {
		rec.writeHeaderLocked(http.StatusOK)
	}
	if !rec.streaming {
		rec.startStreamingLocked()
	}
	if rec.live == nil {
		return nil
	}
	return http.NewResponseController(rec.live).Flush()
}

// Flush implements http.Flusher; see FlushError.
func (rec *recorder) Flush() { rec.FlushError() } //nolint:errcheck // http.Flusher has no error

// SetWriteDeadline and SetReadDeadline let handlers that extend their own
// deadlines through http.ResponseController keep working while buffered.
// After a timeout they fail with http.ErrHandlerTimeout, like writes.
func (rec *recorder) SetWriteDeadline(t time.Time) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.abandoned {
		return http.ErrHandlerTimeout
	}
	if rec.live == nil {
		return nil
	}
	return http.NewResponseController(rec.live).SetWriteDeadline(t)
}

func (rec *recorder) SetReadDeadline(t time.Time) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.abandoned {
		return http.ErrHandlerTimeout
	}
	if rec.live == nil {
		return nil
	}
	return http.NewResponseController(rec.live).SetReadDeadline(t)
}

// abandon discards the response after a timeout. It returns false, and
// abandons nothing, when the response is already streaming to the client
// (it can no longer be replaced by a 503 or a stale object).
func (rec *recorder) abandon() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.streaming && rec.live != nil {
		return false
	}
	rec.abandoned = true
	return true
}

// isAbandoned reports whether abandon succeeded.
func (rec *recorder) isAbandoned() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.abandoned
}

// finish puts what was recorded into res, and returns the response's
// caching traits. It must be called only once the handler has returned (or
// the recorder was abandoned and will not be read again). The header it
// gives is already fit for clients (see clientFields). A response whose
// body does not match its declared Content-Length keeps that declared
// value, so that replaying it fails for the client as it would have
// without the cache.
func (rec *recorder) finish(res *fetchResult) *responseTraits {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !rec.wroteHeader {
		// A handler that writes nothing sends an empty 200, as in net/http.
		rec.writeHeaderLocked(http.StatusOK)
		rec.implicit = true
	}
	res.status, res.header, res.body, res.streamed = rec.status, rec.fields, rec.body, rec.streaming
	res.empty = rec.implicit
	res.age = rec.age
	if !rec.streaming && rec.declared >= 0 && bodyAllowed(rec.status) && rec.declared != int64(len(rec.body)) {
		res.lengthMismatch = true
		res.contentLength = rec.contentLength[0]
	}
	if !rec.abandoned {
		// An abandoned handler may still be writing its header map.
		res.trailer = rec.trailer()
	}
	if res.trailer != nil && rec.declared < 0 {
		res.unsized = true // trailers need a chunked body in HTTP/1.1
	}
	return &rec.traits
}

// trailer returns the trailers the handler set: the values of the names it
// announced in its Trailer header, and the headers it set with
// http.TrailerPrefix; nil when there are none.
func (rec *recorder) trailer() http.Header {
	var t http.Header
	for _, name := range appendNames(nil, rec.trailerNames, nil) {
		if t == nil {
			t = make(http.Header)
		}
		t[name] = append([]string(nil), rec.header[name]...)
	}
	for k, v := range rec.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if t == nil {
				t = make(http.Header)
			}
			t[k] = append([]string(nil), v...)
		}
	}
	return t
}

// parseAge returns the seconds of an Age header (RFC 9111 section 5.1),
// capped at 2^31, or -1 when there is none or it is not delta-seconds.
func parseAge(values []string) int {
	if len(values) == 0 {
		return -1
	}
	v := strings.TrimSpace(values[0])
	if v == "" {
		return -1
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return -1
		}
	}
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return math.MaxInt32 // too large: about the cap of RFC 9111 section 1.2.2 (2^31)
	}
	return int(n)
}

// dates holds the last HTTP date httpDate formatted.
var dates atomic.Pointer[formattedDate]

type formattedDate struct {
	unix int64
	s    string
}

// httpDate returns t as an HTTP date (RFC 9110 section 5.6.7), formatting
// it at most once per second: misses in the same second share the string.
func httpDate(t time.Time) string {
	sec := t.Unix()
	if d := dates.Load(); d != nil && d.unix == sec {
		return d.s
	}
	s := t.UTC().Format(http.TimeFormat)
	dates.Store(&formattedDate{unix: sec, s: s})
	return s
}
