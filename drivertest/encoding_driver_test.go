package drivertest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/drivertest"
)

func TestEncodingDriver(t *testing.T) {
	drivertest.TestDriver(t, func(*testing.T) microcache.Driver { return drivertest.NewEncodingDriver() })
}

func testObject(epoch uint64) *microcache.Object {
	now := time.Now()
	return &microcache.Object{Status: 200, Body: []byte("body"), Size: 4, Epoch: epoch, Date: now, Expires: now.Add(time.Hour)}
}

// TestEncodingDriverCalls checks that every call is counted, failed ones
// included, and that ResetCalls starts the counts again.
func TestEncodingDriverCalls(t *testing.T) {
	d := drivertest.NewEncodingDriver()
	ctx := t.Context()
	d.Lookup(ctx, "u")
	d.Lookup(ctx, "u")
	d.Object(ctx, "u|v")
	d.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: 1}})
	d.Purge(ctx, "u", 2)
	d.PurgeTag(ctx, "t", 3)
	d.PurgeTag(ctx, "t", 0) // misuse: counted all the same
	d.Len()
	want := drivertest.Calls{Lookup: 2, Object: 1, Store: 1, Purge: 1, PurgeTag: 2}
	if got := d.Calls(); got != want {
		t.Errorf("Calls() = %+v, want %+v", got, want)
	}
	d.ResetCalls()
	if got := d.Calls(); got != (drivertest.Calls{}) {
		t.Errorf("Calls() after ResetCalls = %+v, want zeros", got)
	}
}

// TestEncodingDriverFail checks that Fail is consulted with each method's
// name, that its error is returned, and that a failed Store writes nothing.
func TestEncodingDriverFail(t *testing.T) {
	d := drivertest.NewEncodingDriver()
	ctx := t.Context()
	injected := errors.New("injected")
	var ops []string
	d.Fail = func(op string) error {
		ops = append(ops, op)
		return injected
	}
	if _, err := d.Lookup(ctx, "u"); err != injected {
		t.Errorf("Lookup error = %v, want the injected one", err)
	}
	if _, err := d.Object(ctx, "u"); err != injected {
		t.Errorf("Object error = %v, want the injected one", err)
	}
	ok, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: 1}, ObjectKey: "u", Object: testObject(1)})
	if ok || err != injected {
		t.Errorf("Store = %v, %v; want false and the injected error", ok, err)
	}
	if err := d.Purge(ctx, "u", 2); err != injected {
		t.Errorf("Purge error = %v, want the injected one", err)
	}
	if err := d.PurgeTag(ctx, "t", 2); err != injected {
		t.Errorf("PurgeTag error = %v, want the injected one", err)
	}
	want := []string{"Lookup", "Object", "Store", "Purge", "PurgeTag"}
	if len(ops) != len(want) {
		t.Fatalf("Fail called with %q, want %q", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Fatalf("Fail called with %q, want %q", ops, want)
		}
	}
	d.Fail = nil
	if r, err := d.Lookup(ctx, "u"); err != nil || r.Epoch != 0 || r.Options != nil || r.Object != nil || d.Len() != 0 {
		t.Errorf("after a failed Store and Purge: Lookup = %+v, %v; Len = %d; want nothing written", r, err, d.Len())
	}
}

// TestEncodingDriverCopies checks that reads return fresh decoded copies,
// as a remote store's would be, never the stored pointers.
func TestEncodingDriverCopies(t *testing.T) {
	d := drivertest.NewEncodingDriver()
	ctx := t.Context()
	o := testObject(1)
	opts := &microcache.Options{Epoch: 1, Vary: []string{"Accept"}}
	if ok, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: opts, ObjectKey: "u", Object: o}); !ok || err != nil {
		t.Fatalf("Store = %v, %v", ok, err)
	}
	r1, _ := d.Lookup(ctx, "u")
	r2, _ := d.Lookup(ctx, "u")
	if r1.Object == nil || r1.Object == o || r1.Object == r2.Object || &r1.Object.Body[0] == &o.Body[0] {
		t.Errorf("Lookup returned a stored or shared object, not a decoded copy")
	}
	if &r1.Options.Vary[0] == &opts.Vary[0] || &r1.Options.Vary[0] == &r2.Options.Vary[0] {
		t.Errorf("Lookup returned shared options lists, not decoded copies")
	}
}

// TestEncodingDriverMisuse checks that calls breaking the caller's side of
// the contract fail with ErrMisuse and write nothing.
func TestEncodingDriverMisuse(t *testing.T) {
	ctx := t.Context()
	for _, c := range []struct {
		name string
		call func(d *drivertest.EncodingDriver) error
	}{
		{"options epoch 0", func(d *drivertest.EncodingDriver) error {
			_, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{}})
			return err
		}},
		{"options epoch differs", func(d *drivertest.EncodingDriver) error {
			_, err := d.Store(ctx, &microcache.Store{URLKey: "u", Epoch: 1, Options: &microcache.Options{Epoch: 2}})
			return err
		}},
		{"object without options on epoch 0", func(d *drivertest.EncodingDriver) error {
			_, err := d.Store(ctx, &microcache.Store{URLKey: "u", ObjectKey: "u", Object: testObject(1)})
			return err
		}},
		{"object epoch differs", func(d *drivertest.EncodingDriver) error {
			_, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: 1}, ObjectKey: "u", Object: testObject(2)})
			return err
		}},
		{"object without key", func(d *drivertest.EncodingDriver) error {
			_, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: 1}, Object: testObject(1)})
			return err
		}},
		{"object unencodable", func(d *drivertest.EncodingDriver) error {
			o := testObject(1)
			o.Size = 5
			_, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: 1}, ObjectKey: "u", Object: o})
			return err
		}},
		{"purge epoch 0", func(d *drivertest.EncodingDriver) error { return d.Purge(ctx, "u", 0) }},
		{"purge tag epoch 0", func(d *drivertest.EncodingDriver) error { return d.PurgeTag(ctx, "t", 0) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := drivertest.NewEncodingDriver()
			if err := c.call(d); !errors.Is(err, drivertest.ErrMisuse) {
				t.Errorf("error = %v, want one wrapping ErrMisuse", err)
			}
			if r, err := d.Lookup(ctx, "u"); err != nil || r.Epoch != 0 || d.Len() != 0 {
				t.Errorf("after a misuse: Lookup = %+v, %v; Len = %d; want nothing written", r, err, d.Len())
			}
		})
	}
}

// TestEncodingDriverZero checks that the zero value is a usable empty
// driver.
func TestEncodingDriverZero(t *testing.T) {
	var d drivertest.EncodingDriver
	ctx := t.Context()
	if r, err := d.Lookup(ctx, "u"); err != nil || r.Epoch != 0 || d.Len() != 0 {
		t.Errorf("zero driver: Lookup = %+v, %v; Len = %d", r, err, d.Len())
	}
	if err := d.PurgeTag(ctx, "t", 1); err != nil {
		t.Errorf("zero driver: PurgeTag: %v", err)
	}
	if ok, err := d.Store(ctx, &microcache.Store{URLKey: "u", Options: &microcache.Options{Epoch: 1}}); !ok || err != nil {
		t.Errorf("zero driver: Store = %v, %v", ok, err)
	}
}
