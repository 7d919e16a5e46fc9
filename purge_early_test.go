package microcache_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// A POST whose handler flushes its answer before it returns: the URL is
// purged before the client sees any of the answer, and again when the
// handler returns, so that what a GET cached while the handler still ran
// (the old content: the handler changes it last) is not served after.
// Over HTTP/1.1 and HTTP/2, with a real server; the answer reaches the
// client by a Flush, or by a write larger than the server's buffers.
func TestPurgeBeforeAFlushedAnswer(t *testing.T) {
	for _, c := range []struct {
		h2    bool
		flush bool // else one write larger than net/http's buffers
	}{{false, true}, {true, true}, {false, false}, {true, false}} {
		h2 := c.h2
		name := map[bool]string{false: "h1", true: "h2"}[c.h2] + map[bool]string{false: "/large-write", true: "/flush"}[c.flush]
		t.Run(name, func(t *testing.T) {
			var version atomic.Int64
			version.Store(1)
			proceed := make(chan struct{})
			app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					w.WriteHeader(http.StatusAccepted)
					if c.flush {
						io.WriteString(w, "accepted\n")
						http.NewResponseController(w).Flush()
					} else {
						io.WriteString(w, "accepted\n"+strings.Repeat("-", 64<<10))
					}
					<-proceed
					version.Add(1) // the change lands as the handler ends
					io.WriteString(w, "done\n")
					return
				}
				w.Header().Set("Cache-Control", "max-age=60")
				io.WriteString(w, "v"+string(rune('0'+version.Load())))
			})
			_, s := servePair(t, microcache.Config{TTL: time.Minute, Exposed: true}, app, h2)
			get := func() string {
				t.Helper()
				res, err := s.Client().Get(s.URL + "/item")
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return string(b) + " " + res.Header.Get(microcache.HeaderStatus)
			}
			if got := get(); got != "v1 MISS" {
				t.Fatalf("first GET: %q", got)
			}
			if got := get(); got != "v1 HIT" {
				t.Fatalf("second GET: %q", got)
			}

			res, err := s.Client().Post(s.URL+"/item", "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			line, err := bufio.NewReader(res.Body).ReadString('\n')
			if err != nil || line != "accepted\n" {
				t.Fatalf("POST's first line: %q, %v", line, err)
			}
			// The client has seen the answer: the URL must be purged.
			if got := get(); got != "v1 MISS" {
				t.Errorf("GET after the POST's answer began: %q, want a miss (the purge must precede the answer)", got)
			}
			close(proceed)
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			// The GET above cached v1 while the handler ran; it is purged
			// again now that the handler returned.
			if got := get(); got != "v2 MISS" {
				t.Errorf("GET after the POST ended: %q, want v2 MISS", got)
			}
		})
	}
}
