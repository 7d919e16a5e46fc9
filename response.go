package microcache

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// isDroppedHeader reports whether a header is never replayed: hop-by-hop
// headers, and Age and Content-Length, which are set on replay. Names are
// compared case-insensitively, after a cheap length check.
func isDroppedHeader(name string) bool {
	switch len(name) {
	case 2:
		return strings.EqualFold(name, "Te")
	case 3:
		return strings.EqualFold(name, "Age")
	case 7:
		return strings.EqualFold(name, "Trailer") || strings.EqualFold(name, "Upgrade")
	case 10:
		return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive")
	case 14:
		return strings.EqualFold(name, "Content-Length")
	case 16:
		return strings.EqualFold(name, "Proxy-Connection")
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	case 18:
		return strings.EqualFold(name, "Proxy-Authenticate")
	case 19:
		return strings.EqualFold(name, "Proxy-Authorization")
	}
	return false
}

// scrubControlHeaders deletes every microcache-* header from h.
func scrubControlHeaders(h http.Header) {
	for k := range h {
		if isControlHeader(k) {
			delete(h, k)
		}
	}
}

// bodyAllowed reports whether a response with this status may carry a body
// (RFC 9110 sections 15.2, 15.3.5 and 15.4.5).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// prepare precomputes what replaying the object needs: its Content-Length
// value, kept with its header. It must run before the object is shared.
func (o *Object) prepare() { o.header = o.header.withContentLength(o.Size) }

// contentLength returns the object's Content-Length value, formatting it
// for objects that were not prepared (a hand-built one, say).
func (o *Object) contentLength() string {
	if cl := o.header.contentLength(); cl != "" {
		return cl
	}
	return strconv.Itoa(o.Size)
}

// writeReplay writes status, header and body to w as the response. state is
// the value of the microcache header when exposed, age the Age value in
// seconds (negative: no Age header). Header values are copied, never
// aliased, so that code downstream may change them. Requests with Range or
// conditional headers are answered through http.ServeContent, which
// implements both for 200 responses.
func (m *Microcache) writeReplay(w http.ResponseWriter, r *http.Request, status int, fields headerFields, contentLength string, body []byte, state string, age int) {
	h := w.Header()
	bodyOK := bodyAllowed(status)
	extra := 0
	if m.cfg.Exposed {
		extra++
	}
	if age >= 0 {
		extra++
	}
	if bodyOK {
		extra++
	}
	vals := make([]string, fields.values()+extra)
	i := fields.fill(h, vals)
	if m.cfg.Exposed {
		vals[i] = state
		h[HeaderStatus] = vals[i : i+1 : i+1]
		i++
	}
	if age >= 0 {
		vals[i] = strconv.Itoa(age)
		h["Age"] = vals[i : i+1 : i+1]
		i++
	}
	if status == http.StatusOK && needsServeContent(r) {
		modtime, _ := http.ParseTime(h.Get("Last-Modified"))
		http.ServeContent(w, r, "", modtime, bytes.NewReader(body))
		return
	}
	if bodyOK {
		vals[i] = contentLength
		h["Content-Length"] = vals[i : i+1 : i+1]
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead && bodyOK && len(body) > 0 {
		w.Write(body) //nolint:errcheck // a client write error has no one to report to
	}
}

// needsServeContent reports whether r carries headers that ask for part of
// the body or for a conditional answer.
func needsServeContent(r *http.Request) bool {
	h := r.Header
	return len(h["Range"]) > 0 || len(h["If-None-Match"]) > 0 || len(h["If-Modified-Since"]) > 0 ||
		len(h["If-Match"]) > 0 || len(h["If-Unmodified-Since"]) > 0
}

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
	exposed     bool                // set the microcache header when streaming to live
	wroteHeader bool
	streaming   bool // past the limit or flushed: not buffering any more
	abandoned   bool // timed out: everything is discarded

	// Read from the header when the status is written.
	traits        responseTraits
	contentLength []string // the handler's own Content-Length, for streaming
}

// init readies a zero recorder to record a response of at most limit
// body bytes.
func (rec *recorder) init(live http.ResponseWriter, limit int, exposed bool) {
	rec.header, rec.limit, rec.live, rec.exposed = make(http.Header), limit, live, exposed
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
	rec.traits = readTraits(rec.header)
	rec.fields = clientFields(rec.header)
	rec.contentLength = rec.header["Content-Length"]
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
	if rec.live == nil {
		rec.body = nil
		return
	}
	lh := rec.live.Header()
	rec.fields.fill(lh, make([]string, rec.fields.values()))
	if rec.contentLength != nil {
		lh["Content-Length"] = rec.contentLength
	}
	if rec.exposed {
		lh.Set(HeaderStatus, StatusMiss)
	}
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

// result returns what was recorded. It must be called only once the handler
// has returned (or the recorder was abandoned and will not be read again).
// The header it returns is already fit for clients (see clientFields).
func (rec *recorder) result() (status int, header headerFields, body []byte, streamed bool, traits *responseTraits) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !rec.wroteHeader {
		// A handler that writes nothing sends an empty 200, as in net/http.
		rec.writeHeaderLocked(http.StatusOK)
	}
	return rec.status, rec.fields, rec.body, rec.streaming, &rec.traits
}

// passWriter wraps the client's ResponseWriter on pass-through paths. It
// removes microcache-* headers before the header is sent, records the
// status (including an implicit 200) and, when asked, what the response
// says about caching. It offers Unwrap, Flush and Hijack, so that
// http.ResponseController and type assertions reach the real connection.
type passWriter struct {
	http.ResponseWriter
	exposed     bool
	learn       bool // read the response's traits before scrubbing
	traits      responseTraits
	status      int
	wroteHeader bool
	hijacked    bool
	flushed     bool  // the handler flushed: it streams
	written     int64 // body bytes written
}

func (p *passWriter) WriteHeader(code int) {
	if p.wroteHeader {
		p.ResponseWriter.WriteHeader(code) // net/http reports the superfluous call
		return
	}
	h := p.ResponseWriter.Header()
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		scrubControlHeaders(h)
		p.ResponseWriter.WriteHeader(code)
		return
	}
	p.wroteHeader = true
	p.status = code
	if p.learn {
		p.traits.scan(h, true)
	} else {
		scrubControlHeaders(h)
	}
	if p.exposed {
		h[HeaderStatus] = []string{StatusMiss}
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *passWriter) Write(b []byte) (int, error) {
	if !p.wroteHeader {
		p.WriteHeader(http.StatusOK)
	}
	n, err := p.ResponseWriter.Write(b)
	p.written += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's sendfile path available.
func (p *passWriter) ReadFrom(src io.Reader) (int64, error) {
	if !p.wroteHeader {
		p.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := p.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{p.ResponseWriter}, src)
	}
	p.written += n
	return n, err
}

// writerOnly hides every method but Write, so io.Copy cannot loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }

func (p *passWriter) FlushError() error {
	if !p.wroteHeader {
		p.WriteHeader(http.StatusOK)
	}
	p.flushed = true
	return http.NewResponseController(p.ResponseWriter).Flush()
}

func (p *passWriter) Flush() { p.FlushError() } //nolint:errcheck // http.Flusher has no error

func (p *passWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(p.ResponseWriter).Hijack()
	if err == nil {
		p.hijacked = true
	}
	return conn, rw, err
}

func (p *passWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// finish sends the header if the handler never did, so that control
// headers it set are removed from the implicit 200 too.
func (p *passWriter) finish() {
	if !p.wroteHeader && !p.hijacked {
		p.WriteHeader(http.StatusOK)
	}
}

// finalStatus is the status the client got, counting an implicit 200.
func (p *passWriter) finalStatus() int {
	if p.status == 0 {
		return http.StatusOK
	}
	return p.status
}
