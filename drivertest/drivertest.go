// Package drivertest checks implementations of [microcache.Driver]
// against the contract documented on that interface, in the manner of
// testing/fstest.TestFS: an implementation's own tests call [TestDriver]
// with a function that makes a fresh driver, and get one failing subtest
// for each clause the driver breaks.
//
// The package also provides [EncodingDriver], an in-memory driver that
// stores records as bytes, like a remote store, counts calls and injects
// faults, for tests of code that uses a Driver.
package drivertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// MinRecords and MinObjectSize are what [TestDriver] needs a driver to
// hold: at most MinRecords URLs at a time, each with options and a few
// objects of at most MinObjectSize bytes of body whose
// [microcache.Object.RetainUntil] is an hour or more away. A driver given
// to TestDriver must keep all of that for as long as a subtest runs (a
// few seconds), although the contract lets a driver drop records at any
// time: the subtests check exactly what a driver that drops nothing must
// return. Only for objects stored past their RetainUntil (Expired), and
// in the invariant of PurgeBeatsStore, does the suite accept that records
// were dropped.
const (
	MinRecords    = 100
	MinObjectSize = 4 << 10
)

// TestDriver runs the conformance suite on the drivers newDriver returns,
// each subtest (named after the clause it checks, see below) on a fresh
// one made with that subtest's t. The drivers must hold what they are
// given (see [MinRecords]) and their methods must not fail: any error
// fails the subtest. TestDriver runs its subtests one after the other and
// keeps the concurrent ones short enough for -race.
//
// The subtests are:
//
//   - LookupAbsent: a URL never stored has epoch 0, no options, no object.
//   - FirstStore: a Store with Epoch 0 creates the URL's record.
//   - Variants: objects under variant keys, read with Object.
//   - StoreParts: options alone, an object alone, replacing earlier ones.
//   - StoreWrongEpoch: a Store with an epoch that is not the URL's fails
//     and writes nothing.
//   - StoreEpochZeroExisting: a Store with Epoch 0 fails once the URL has
//     an epoch.
//   - IfDate: the date condition of a Store.
//   - Delete: a Store deleting an object.
//   - PurgeRecord: a Purge of a URL with options.
//   - PurgeMark: a Purge of a URL with no record leaves a purge mark.
//   - PurgeBeatsStore: concurrent stores never undo a purge.
//   - PurgeTag: purging by tag, and by the same tag stored again since.
//   - KeysNotRetained: Lookup and Object do not keep their key strings.
//   - OpaqueKeys: keys are arbitrary bytes up to 8 KiB.
//   - StoredValues: what is read back equals what was stored, and Store
//     does not change what it is given.
//   - Expired: objects past RetainUntil are dropped or returned intact.
//   - Len: the object count.
//   - Concurrent: mixed calls from several goroutines.
func TestDriver(t *testing.T, newDriver func(t *testing.T) microcache.Driver) {
	t.Helper()
	for _, c := range []struct {
		name string
		fn   func(*tester)
	}{
		{"LookupAbsent", testLookupAbsent},
		{"FirstStore", testFirstStore},
		{"Variants", testVariants},
		{"StoreParts", testStoreParts},
		{"StoreWrongEpoch", testStoreWrongEpoch},
		{"StoreEpochZeroExisting", testStoreEpochZeroExisting},
		{"IfDate", testIfDate},
		{"Delete", testDelete},
		{"PurgeRecord", testPurgeRecord},
		{"OptionsUnchanged", testOptionsUnchanged},
		{"PurgeMark", testPurgeMark},
		{"PurgeBeatsStore", testPurgeBeatsStore},
		{"PurgeTag", testPurgeTag},
		{"KeysNotRetained", testKeysNotRetained},
		{"OpaqueKeys", testOpaqueKeys},
		{"StoredValues", testStoredValues},
		{"Expired", testExpired},
		{"Len", testLen},
		{"Concurrent", testConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDriver(t)
			if d == nil {
				t.Fatal("newDriver returned nil")
			}
			c.fn(&tester{t: t, d: d, ctx: t.Context(), now: time.Now()})
		})
	}
}

// tester carries one subtest's driver and helpers that fail the test on
// driver errors. Its methods may be called from several goroutines: they
// report with Errorf, never FailNow, except where noted.
type tester struct {
	t   *testing.T
	d   microcache.Driver
	ctx context.Context
	now time.Time // when the subtest started: objects' dates derive from it
}

// newEpoch returns a random non-zero epoch.
func newEpoch() uint64 {
	for {
		if e := rand.Uint64(); e != 0 {
			return e
		}
	}
}

// options returns test options with the given epoch; ttl tells versions
// apart.
func options(epoch uint64, ttl time.Duration) *microcache.Options {
	return &microcache.Options{
		Epoch:                epoch,
		Vary:                 []string{"Accept-Language", "X-Drivertest"},
		VaryQuery:            []string{"lang"},
		TTL:                  ttl,
		StaleIfError:         time.Hour,
		StaleWhileRevalidate: 10 * time.Second,
		StaleRecache:         true,
		CollapsedForwarding:  true,
	}
}

// keyHash returns a short digest of key that test objects carry, so that
// an object can be checked against the key it was read under.
func keyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

// object returns a test object for key in the given epoch: its body, of
// at least size bytes, names the key (by digest), the epoch and serial, so
// that checkContent can tell whether an object read under a key is one
// stored under it. Its Date is date and it stays retainable for an hour
// after date.
func object(key string, epoch uint64, serial int, date time.Time, size int) *microcache.Object {
	body := fmt.Appendf(nil, "%s|%d|%d|", keyHash(key), epoch, serial)
	if len(body) < size {
		body = append(body, bytes.Repeat([]byte{'.'}, size-len(body))...)
	}
	o := &microcache.Object{
		Status:               http.StatusOK,
		Body:                 body,
		Size:                 len(body),
		Epoch:                epoch,
		Date:                 date,
		Expires:              date.Add(time.Hour),
		StaleWhileRevalidate: time.Minute,
		StaleIfError:         2 * time.Minute,
	}
	o.SetHeader(http.Header{
		"Content-Type": {"text/plain; charset=utf-8"},
		"X-Drivertest": {keyHash(key), strconv.Itoa(serial)},
	})
	return o
}

// obj is object with the subtest's start as its date and a small body.
func (tt *tester) obj(key string, epoch uint64, serial int) *microcache.Object {
	return object(key, epoch, serial, tt.now, 64)
}

// checkContent reports whether o is a test object stored under key, as
// object made it, and describes what is wrong if not.
func checkContent(key string, o *microcache.Object) string {
	parts := strings.SplitN(string(o.Body), "|", 4)
	if len(parts) != 4 || o.Compressed || o.Size != len(o.Body) || o.Status != http.StatusOK {
		return fmt.Sprintf("object is not one the test stored (status %d, size %d, body %.40q)", o.Status, o.Size, o.Body)
	}
	if parts[0] != keyHash(key) {
		return fmt.Sprintf("object under key %.40q was stored under another key", key)
	}
	if parts[1] != strconv.FormatUint(o.Epoch, 10) {
		return fmt.Sprintf("object's Epoch %d is not the one it was stored with (%s)", o.Epoch, parts[1])
	}
	if h := o.Header()["X-Drivertest"]; len(h) != 2 || h[0] != parts[0] || h[1] != parts[2] {
		return fmt.Sprintf("object's header %q does not match its body %.40q", h, o.Body)
	}
	return ""
}

// encodeObject returns o's encoding; nil encodes as nil.
func encodeObject(t testing.TB, o *microcache.Object) []byte {
	t.Helper()
	if o == nil {
		return nil
	}
	b, err := o.MarshalBinary()
	if err != nil {
		t.Errorf("object returned by the driver does not encode: %v", err)
	}
	return b
}

// withoutEpoch returns o as a Record carries it: without its epoch.
func withoutEpoch(o microcache.Options) microcache.Options {
	o.Epoch = 0
	return o
}

func encodeOptions(o microcache.Options) []byte {
	b, _ := o.MarshalBinary() // never fails
	return b
}

// sameObject reports whether got and want are equal by value (both nil, or
// equal encodings).
func sameObject(t testing.TB, got, want *microcache.Object) bool {
	t.Helper()
	if (got == nil) != (want == nil) {
		return false
	}
	return bytes.Equal(encodeObject(t, got), encodeObject(t, want))
}

func describe(o *microcache.Object) string {
	if o == nil {
		return "nil"
	}
	return fmt.Sprintf("{Epoch %d, Date %v, body %.40q}", o.Epoch, o.Date, o.Body)
}

// lookup calls Lookup, fails the test on an error, and checks what holds
// for every record (see checkRecord). It must be called from the
// subtest's goroutine.
func (tt *tester) lookup(key string) microcache.Record {
	tt.t.Helper()
	r, err := tt.d.Lookup(tt.ctx, key)
	if err != nil {
		tt.t.Fatalf("Lookup(%.40q): %v", key, err)
	}
	tt.checkRecord(key, r)
	return r
}

// checkRecord checks a record read under key: "Epoch is the URL's
// current epoch; 0 when the URL has none (no options and no purge mark)"
// and "They carry no epoch (Options.Epoch is 0 ...)".
func (tt *tester) checkRecord(key string, r microcache.Record) {
	tt.t.Helper()
	if r.Epoch == 0 && r.Options != nil {
		tt.t.Errorf("Lookup(%.40q): Epoch 0 with options %+v", key, r.Options)
	}
	if r.Options != nil && r.Options.Epoch != 0 {
		tt.t.Errorf("Lookup(%.40q): Options.Epoch %d, want 0 (the URL's epoch is Record.Epoch, %d)", key, r.Options.Epoch, r.Epoch)
	}
}

// object calls Object and fails the test on an error.
func (tt *tester) object(key string) *microcache.Object {
	tt.t.Helper()
	o, err := tt.d.Object(tt.ctx, key)
	if err != nil {
		tt.t.Fatalf("Object(%.40q): %v", key, err)
	}
	return o
}

// store calls Store and fails the test on an error.
func (tt *tester) store(s *microcache.Store) bool {
	tt.t.Helper()
	ok, err := tt.d.Store(tt.ctx, s)
	if err != nil {
		tt.t.Fatalf("Store(URLKey %.40q, Epoch %d, ObjectKey %.40q): %v", s.URLKey, s.Epoch, s.ObjectKey, err)
	}
	return ok
}

// mustStore calls Store and fails the test unless it stored.
func (tt *tester) mustStore(s *microcache.Store) {
	tt.t.Helper()
	if !tt.store(s) {
		tt.t.Fatalf("Store(URLKey %.40q, Epoch %d, ObjectKey %.40q) = false, want true", s.URLKey, s.Epoch, s.ObjectKey)
	}
}

// mustNotStore calls Store and fails the test if it stored.
func (tt *tester) mustNotStore(what string, s *microcache.Store) {
	tt.t.Helper()
	if tt.store(s) {
		tt.t.Errorf("%s: Store(URLKey %.40q, Epoch %d, ObjectKey %.40q) = true, want false", what, s.URLKey, s.Epoch, s.ObjectKey)
	}
}

func (tt *tester) purge(key string, epoch uint64) {
	tt.t.Helper()
	if err := tt.d.Purge(tt.ctx, key, epoch); err != nil {
		tt.t.Fatalf("Purge(%.40q, %d): %v", key, epoch, err)
	}
}

func (tt *tester) purgeTag(tag string, epoch uint64) {
	tt.t.Helper()
	if err := tt.d.PurgeTag(tt.ctx, tag, epoch); err != nil {
		tt.t.Fatalf("PurgeTag(%q, %d): %v", tag, epoch, err)
	}
}

// url is a URL the test has stored, with what the driver must hold for
// it.
type url struct {
	key     string
	epoch   uint64
	opts    *microcache.Options
	plain   *microcache.Object            // under key; nil for none
	objects map[string]*microcache.Object // by variant key
}

// create stores a new URL under key with options, a plain object and the
// variants named (keys key+"|"+v), tagged with tags.
func (tt *tester) create(key string, tags []string, variants ...string) *url {
	tt.t.Helper()
	u := &url{key: key, epoch: newEpoch(), objects: make(map[string]*microcache.Object)}
	u.opts = options(u.epoch, time.Minute)
	u.plain = tt.obj(key, u.epoch, 0)
	tt.mustStore(&microcache.Store{
		URLKey: key, Epoch: 0, Options: u.opts,
		ObjectKey: key, Object: u.plain, Tags: tags,
	})
	for i, v := range variants {
		vk := key + "|" + v
		u.objects[vk] = tt.obj(vk, u.epoch, i+1)
		tt.mustStore(&microcache.Store{
			URLKey: key, Epoch: u.epoch,
			ObjectKey: vk, Object: u.objects[vk], Tags: tags,
		})
	}
	return u
}

// check fails the test unless the driver holds exactly what u says.
func (tt *tester) check(what string, u *url) {
	tt.t.Helper()
	r := tt.lookup(u.key)
	if r.Epoch != u.epoch {
		tt.t.Errorf("%s: Lookup(%.40q).Epoch = %d, want %d", what, u.key, r.Epoch, u.epoch)
	}
	switch {
	case u.opts == nil && r.Options != nil:
		tt.t.Errorf("%s: Lookup(%.40q) has options %+v, want none", what, u.key, *r.Options)
	case u.opts != nil && r.Options == nil:
		tt.t.Errorf("%s: Lookup(%.40q) has no options, want %+v", what, u.key, *u.opts)
	case u.opts != nil && !bytes.Equal(encodeOptions(*r.Options), encodeOptions(withoutEpoch(*u.opts))):
		tt.t.Errorf("%s: Lookup(%.40q).Options = %+v, want %+v", what, u.key, *r.Options, withoutEpoch(*u.opts))
	}
	if !sameObject(tt.t, r.Object, u.plain) {
		tt.t.Errorf("%s: Lookup(%.40q).Object = %s, want %s", what, u.key, describe(r.Object), describe(u.plain))
	}
	for k, want := range u.objects {
		if got := tt.object(k); !sameObject(tt.t, got, want) {
			tt.t.Errorf("%s: Object(%.40q) = %s, want %s", what, k, describe(got), describe(want))
		}
	}
}

// checkPurged fails the test unless u was purged to epoch: the URL has
// that epoch, its options (with that epoch) if it had any, and each of
// its objects is gone or unchanged, so that its Epoch is not the URL's.
func (tt *tester) checkPurged(what string, u *url, epoch uint64) {
	tt.t.Helper()
	r := tt.lookup(u.key)
	if r.Epoch != epoch {
		tt.t.Errorf("%s: Lookup(%.40q).Epoch = %d, want the purge's %d", what, u.key, r.Epoch, epoch)
	}
	if u.opts != nil {
		want := withoutEpoch(*u.opts)
		if r.Options == nil {
			tt.t.Errorf("%s: Lookup(%.40q) has no options; a purge keeps them", what, u.key)
		} else if !bytes.Equal(encodeOptions(*r.Options), encodeOptions(want)) {
			tt.t.Errorf("%s: Lookup(%.40q).Options = %+v, want %+v (the same: a purge keeps them)", what, u.key, *r.Options, want)
		}
	}
	if r.Object != nil && !sameObject(tt.t, r.Object, u.plain) {
		tt.t.Errorf("%s: Lookup(%.40q).Object = %s, want nil or the purged %s", what, u.key, describe(r.Object), describe(u.plain))
	}
	for k, old := range u.objects {
		if got := tt.object(k); got != nil && !sameObject(tt.t, got, old) {
			tt.t.Errorf("%s: Object(%.40q) = %s, want nil or the purged %s", what, k, describe(got), describe(old))
		}
	}
}
