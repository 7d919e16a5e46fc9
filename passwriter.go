package microcache

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// passWriter wraps the client's ResponseWriter on pass-through paths. It
// removes microcache-* headers before the header is sent, records the
// status (including an implicit 200) and, when asked, what the response
// says about caching. It offers Unwrap, Flush and Hijack, so that
// http.ResponseController and type assertions reach the real connection.
type passWriter struct {
	http.ResponseWriter
	m           *Microcache
	out         Outcome // the pass and why; its headers are set with the status
	learn       bool    // read the response's traits before scrubbing
	traits      responseTraits
	status      int
	wroteHeader bool
	hijacked    bool
	implicit    bool  // the handler wrote nothing: finish sent an empty 200
	flushed     bool  // the handler flushed: it streams
	written     int64 // body bytes written

	// With learn: what would keep the buffered path from storing the
	// answer, read when the status is written and when the handler ends.
	declared int64 // the handler's Content-Length; -1 when none or malformed
	trailers bool  // the answer has trailers

	// beforeSend, when not nil, runs once, before the final answer may
	// first reach the client while the handler still runs: before a
	// Flush, a ReadFrom, or a Write that takes the body past sendAfter.
	beforeSend func()
}

// sendAfter is the most body a handler can write before net/http may
// send part of the answer: the smaller of its buffers (2048 bytes before
// HTTP/1.1 chunking; HTTP/2 buffers 4096).
const sendAfter = 2048

// sending runs beforeSend, once.
func (p *passWriter) sending() {
	if f := p.beforeSend; f != nil {
		p.beforeSend = nil
		f()
	}
}

func (p *passWriter) WriteHeader(code int) {
	if p.wroteHeader {
		p.ResponseWriter.WriteHeader(code) // net/http reports the superfluous call
		return
	}
	h := p.ResponseWriter.Header()
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// The interim response must not carry control headers, but the
		// final one is still to be read for them: set them aside.
		var aside http.Header
		for k, v := range h {
			if isControlHeader(k) {
				if aside == nil {
					aside = make(http.Header)
				}
				aside[k] = v
				delete(h, k)
			}
		}
		p.ResponseWriter.WriteHeader(code)
		for k, v := range aside {
			if _, set := h[k]; !set {
				h[k] = v
			}
		}
		return
	}
	p.wroteHeader = true
	p.status = code
	if p.learn {
		p.traits.scan(h, true)
		p.declared = -1
		if cl := h["Content-Length"]; len(cl) == 1 {
			if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
				p.declared = n
			}
		}
		p.trailers = len(h["Trailer"]) > 0
	} else {
		scrubControlHeaders(h)
	}
	p.m.setOutcomeHeaders(h, &p.out)
	p.ResponseWriter.WriteHeader(code)
}

func (p *passWriter) Write(b []byte) (int, error) {
	if !p.wroteHeader {
		p.WriteHeader(http.StatusOK)
	}
	if p.beforeSend != nil && p.written+int64(len(b)) > sendAfter {
		p.sending()
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
	p.sending()
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
	p.sending()
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
		p.implicit = true
		p.WriteHeader(http.StatusOK)
	}
	if p.learn && !p.trailers {
		for k := range p.ResponseWriter.Header() {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				p.trailers = true
				break
			}
		}
	}
}

// storableAnswer reports whether, with learn, the answer is one the
// buffered path would have stored (judge aside): complete, not streamed,
// within limit, without trailers, matching its Content-Length.
func (p *passWriter) storableAnswer(limit int) bool {
	return !p.hijacked && !p.flushed && !p.implicit && !p.trailers && p.written <= int64(limit) &&
		(p.declared < 0 || p.declared == p.written || !bodyAllowed(p.finalStatus()))
}

// finalStatus is the status the client got, counting an implicit 200.
func (p *passWriter) finalStatus() int {
	if p.status == 0 {
		return http.StatusOK
	}
	return p.status
}
