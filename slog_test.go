package microcache_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// The slog adapter logs failures as they happen, the Stats of each
// interval, and, through Observe, every request's outcome at Debug.
func TestLogMonitor(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lm := microcache.NewLogMonitor(logger, time.Hour)
	be := &backend{serve: func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Write([]byte("ok"))
	}}
	c := microcache.New(microcache.Config{TTL: time.Minute, Monitor: lm, Observe: lm.Observe})
	h := c.Middleware(be)
	get(t, h, "/")
	get(t, h, "/")
	get(t, h, "/fail")
	c.Stop() // the last Stats report
	out := buf.String()
	for _, want := range []string{
		`level=DEBUG msg="microcache request" method=GET url=/ outcome=miss status=200 miss=uri-miss stored=true`,
		`level=DEBUG msg="microcache request" method=GET url=/ outcome=hit status=200`,
		`level=WARN msg="microcache failure" kind=backend background=false method=GET url=/fail status=502`,
		`level=INFO msg="microcache stats" hits=1 stales=0 misses=2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
