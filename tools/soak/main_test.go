package main

import (
	"testing"
	"time"
)

// The soak core, for a short run with small settings: memory and
// goroutines stay bounded and every body belongs to its request.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak run skipped in -short mode")
	}
	cfg := defaultConfig()
	cfg.Duration = 1500 * time.Millisecond
	cfg.Workers = 8
	cfg.Keys = 400
	cfg.MaxBody = 16 << 10
	cfg.DriverBytes = 4 << 20
	cfg.MonitorEvery = 500 * time.Millisecond
	cfg.Out = t.Output()
	rep, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Failures {
		t.Error(f)
	}
	if rep.Statuses[200] == 0 || rep.BackendCalls == 0 {
		t.Errorf("no successful traffic: %+v", rep)
	}
	if rep.ClientErrors > 0 {
		t.Errorf("%d client errors", rep.ClientErrors)
	}
}

// Bodies are recognised exactly: any other request's body, or a
// truncated or altered one, is not.
func TestBelongsTo(t *testing.T) {
	b := makeBody("/item/3?v=1", 2000, 7)
	if len(b) != 2000 || !belongsTo(b, "/item/3?v=1") {
		t.Fatalf("own body rejected: %q", b[:60])
	}
	if belongsTo(b, "/item/3?v=2") || belongsTo(b[:1999], "/item/3?v=1") {
		t.Error("foreign or truncated body accepted")
	}
	c := append([]byte(nil), b...)
	c[1500] ^= 1
	if belongsTo(c, "/item/3?v=1") {
		t.Error("altered body accepted")
	}
}
