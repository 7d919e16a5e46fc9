package microcache

import (
	"bytes"
	"net/http"
	"strconv"
)

// writeReplay writes status, header and body to w as the response. out
// is the outcome, for the Microcache and Cache-Status headers; age the Age
// value in seconds (negative: no Age header). Header values are copied, never
// aliased, so that code downstream may change them. Requests with Range or
// conditional headers are answered through http.ServeContent, which
// implements both for 200 responses.
func (m *Microcache) writeReplay(w http.ResponseWriter, r *http.Request, status int, fields headerFields, contentLength string, body []byte, out *Outcome, age int) {
	h := w.Header()
	bodyOK := bodyAllowed(status)
	extra := 0
	if m.cfg.Exposed {
		extra++
	}
	if m.cfg.CacheStatus != "" {
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
		vals[i] = out.statusValue()
		h[HeaderStatus] = vals[i : i+1 : i+1]
		i++
	}
	if m.cfg.CacheStatus != "" {
		vals[i] = out.cacheStatus(m.cfg.CacheStatus)
		h["Cache-Status"] = vals[i : i+1 : i+1]
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
	if bodyOK && contentLength != "" {
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
