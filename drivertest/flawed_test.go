package drivertest_test

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/drivertest"
)

// flawedDriver is a pointer-keeping in-memory driver, as simple as a
// correct one can be, that breaks one clause of the contract on request:
// with flaw "" it is correct (TestReferenceDriver), and each flaw of
// flaws must make the subtests named there fail (TestSuiteCatchesFlaws),
// which shows that each subtest checks what it says.
type flawedDriver struct {
	flaw string

	mu      sync.Mutex
	urls    map[string]*flawedURL
	objects map[string]*microcache.Object
	tags    map[string]map[string]bool
}

type flawedURL struct {
	epoch uint64
	opts  *microcache.Options // nil for a purge mark
}

func newFlawedDriver(flaw string) *flawedDriver {
	return &flawedDriver{
		flaw:    flaw,
		urls:    make(map[string]*flawedURL),
		objects: make(map[string]*microcache.Object),
		tags:    make(map[string]map[string]bool),
	}
}

// key returns the key the driver files k under.
func (d *flawedDriver) key(k string) string {
	switch {
	case d.flaw == "keys-truncated" && len(k) > 256:
		return k[:256]
	case d.flaw == "keys-nul-terminated":
		if i := strings.IndexByte(k, 0); i >= 0 {
			return k[:i]
		}
	case d.flaw == "variants-ignored":
		if i := strings.IndexByte(k, '|'); i >= 0 {
			return k[:i]
		}
	}
	return k
}

func (d *flawedDriver) Lookup(_ context.Context, urlKey string) (microcache.Record, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.key(urlKey)
	var r microcache.Record
	u := d.urls[k]
	if u != nil && d.flaw == "lookup-retains-key" {
		// A move to the front that files the record again, under the
		// caller's string.
		delete(d.urls, k)
		d.urls[urlKey] = u
	}
	if u != nil {
		r.Epoch = u.epoch
		if u.opts != nil {
			// A copy per call, without the epoch; with the flaw
			// options-changed-later, the driver's own, set to the epoch
			// of each Lookup.
			r.Options = new(microcache.Options)
			if d.flaw == "options-changed-later" {
				r.Options = u.opts
			}
			*r.Options = *u.opts
			r.Options.Epoch = 0
			switch d.flaw {
			case "options-carry-epoch":
				r.Options.Epoch = u.opts.Epoch
			case "options-changed-later":
				r.Options.Epoch = u.epoch
			}
		}
	}
	r.Object = d.object(k)
	return r, nil
}

func (d *flawedDriver) Object(_ context.Context, objKey string) (*microcache.Object, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.key(objKey)
	if o := d.objects[k]; o != nil && d.flaw == "object-retains-key" {
		delete(d.objects, k)
		d.objects[objKey] = o
	}
	return d.object(k), nil
}

func (d *flawedDriver) object(k string) *microcache.Object {
	o := d.objects[k]
	switch {
	case o == nil && d.flaw == "absent-object":
		return &microcache.Object{}
	case o == nil:
		return nil
	case o.RetainUntil().Before(time.Now()) && d.flaw == "expired-zeroed":
		return &microcache.Object{Status: o.Status, Epoch: o.Epoch}
	case d.flaw == "lossy-dates":
		c := *o
		c.Date = c.Date.Truncate(time.Second)
		return &c
	}
	return o
}

func (d *flawedDriver) Store(_ context.Context, s *microcache.Store) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	uk := d.key(s.URLKey)
	var cur uint64
	if u := d.urls[uk]; u != nil {
		cur = u.epoch
	}
	if d.flaw == "failed-store-tags" {
		d.tag(s.Tags, uk)
	}
	casOK := cur == s.Epoch
	switch d.flaw {
	case "no-cas":
		casOK = true
	case "first-store-overwrites":
		casOK = casOK || s.Epoch == 0
	}
	if !casOK {
		return false, nil
	}
	ok := d.key(s.ObjectKey)
	if !s.IfDate.IsZero() && d.flaw != "ifdate-ignored" {
		o := d.objects[ok]
		if o == nil {
			return false, nil
		}
		if d.flaw == "ifdate-compares-with-==" && o.Date != s.IfDate || d.flaw != "ifdate-compares-with-==" && !o.Date.Equal(s.IfDate) {
			return false, nil
		}
	}
	if d.flaw == "store-nonatomic" {
		// Check, then write later: a purge may land in between.
		d.mu.Unlock()
		runtime.Gosched()
		d.mu.Lock()
	}
	if s.Options != nil {
		opts := *s.Options
		epoch := s.Options.Epoch
		if d.flaw == "first-store-ignores-options-epoch" && s.Epoch == 0 {
			epoch = opts.Epoch + 1
		}
		d.urls[uk] = &flawedURL{epoch: epoch, opts: &opts}
		if d.flaw == "options-store-deletes-object" && s.Object == nil {
			delete(d.objects, uk)
		}
	}
	switch {
	case s.Object != nil:
		if d.flaw == "store-modifies-object" {
			s.Object.Date = s.Object.Date.Add(time.Second)
		}
		d.objects[ok] = s.Object
	case s.Delete && d.flaw != "delete-ignored":
		delete(d.objects, ok)
	}
	if d.flaw != "failed-store-tags" {
		d.tag(s.Tags, uk)
	}
	return true, nil
}

func (d *flawedDriver) tag(tags []string, urlKey string) {
	for _, t := range tags {
		if d.tags[t] == nil {
			d.tags[t] = make(map[string]bool)
		}
		d.tags[t][urlKey] = true
	}
}

func (d *flawedDriver) Purge(_ context.Context, urlKey string, epoch uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purge(d.key(urlKey), epoch)
	return nil
}

func (d *flawedDriver) purge(k string, epoch uint64) {
	u := d.urls[k]
	switch {
	case u == nil && d.flaw == "purge-leaves-no-mark":
	case u == nil:
		d.urls[k] = &flawedURL{epoch: epoch}
	case d.flaw == "purge-drops-options":
		d.urls[k] = &flawedURL{epoch: epoch}
	default:
		u.epoch = epoch
	}
}

func (d *flawedDriver) PurgeTag(_ context.Context, tag string, epoch uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flaw == "purge-tag-ignored" {
		return nil
	}
	for k := range d.tags[tag] {
		d.purge(k, epoch)
	}
	delete(d.tags, tag)
	return nil
}

func (d *flawedDriver) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.flaw {
	case "len-counts-records":
		return len(d.objects) + len(d.urls)
	case "len-below-minus-one":
		return -2
	}
	return len(d.objects)
}

// flaws lists each flaw of flawedDriver with the subtests that must fail
// for it (others may fail too). PurgeBeatsStore also catches most runs of
// first-store-overwrites and purge-leaves-no-mark, but not every one,
// since it races; PurgeMark catches them every time.
var flaws = []struct {
	flaw  string
	fails []string
}{
	{"absent-object", []string{"LookupAbsent"}},
	{"first-store-ignores-options-epoch", []string{"FirstStore"}},
	{"variants-ignored", []string{"Variants"}},
	{"options-store-deletes-object", []string{"StoreParts"}},
	{"no-cas", []string{"StoreWrongEpoch", "StoreEpochZeroExisting", "PurgeRecord", "PurgeMark", "PurgeBeatsStore", "PurgeTag"}},
	{"failed-store-tags", []string{"StoreWrongEpoch", "StoreEpochZeroExisting"}},
	{"first-store-overwrites", []string{"StoreEpochZeroExisting", "PurgeMark"}},
	{"ifdate-ignored", []string{"IfDate"}},
	{"ifdate-compares-with-==", []string{"IfDate"}},
	{"delete-ignored", []string{"Delete"}},
	{"purge-drops-options", []string{"PurgeRecord", "PurgeTag"}},
	{"options-carry-epoch", []string{"FirstStore", "PurgeRecord", "PurgeTag"}},
	{"purge-leaves-no-mark", []string{"PurgeMark"}},
	{"options-changed-later", []string{"OptionsUnchanged"}},
	{"purge-tag-ignored", []string{"PurgeTag"}},
	{"lookup-retains-key", []string{"KeysNotRetained"}},
	{"object-retains-key", []string{"KeysNotRetained"}},
	{"keys-truncated", []string{"OpaqueKeys"}},
	{"keys-nul-terminated", []string{"OpaqueKeys"}},
	{"store-modifies-object", []string{"StoredValues"}},
	{"lossy-dates", []string{"StoredValues"}},
	{"expired-zeroed", []string{"Expired"}},
	{"store-nonatomic", []string{"PurgeBeatsStore"}},
	{"len-counts-records", []string{"Len"}},
	{"len-below-minus-one", []string{"Len", "Concurrent"}},
}

// TestReferenceDriver runs the suite on flawedDriver without a flaw: a
// driver that shares pointers, unlike EncodingDriver.
func TestReferenceDriver(t *testing.T) {
	drivertest.TestDriver(t, func(*testing.T) microcache.Driver { return newFlawedDriver("") })
}

const flawEnv = "DRIVERTEST_FLAW"

// TestFlawedDriver runs the suite on the flawedDriver named by the
// environment; TestSuiteCatchesFlaws runs it in a subprocess.
func TestFlawedDriver(t *testing.T) {
	flaw := os.Getenv(flawEnv)
	if flaw == "" {
		t.Skip("run by TestSuiteCatchesFlaws")
	}
	drivertest.TestDriver(t, func(*testing.T) microcache.Driver { return newFlawedDriver(flaw) })
}

// TestSuiteCatchesFlaws checks that each flaw of flawedDriver fails the
// subtests that check the clause it breaks. The suite runs in a
// subprocess, since its failures must not fail this test.
func TestSuiteCatchesFlaws(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary once per flaw")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	for _, f := range flaws {
		t.Run(f.flaw, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^TestFlawedDriver$/^("+strings.Join(f.fails, "|")+")$", "-test.count=1")
			cmd.Env = append(os.Environ(), flawEnv+"="+f.flaw)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a driver with flaw %q:\n%s", f.flaw, out)
			}
			for _, name := range f.fails {
				if !strings.Contains(string(out), "--- FAIL: TestFlawedDriver/"+name+" ") {
					t.Errorf("subtest %s did not fail for flaw %q:\n%s", name, f.flaw, out)
				}
			}
		})
	}
}
