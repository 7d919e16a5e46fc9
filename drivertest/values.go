package drivertest

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/httpimp/microcache"
)

// testKeysNotRetained checks "A driver must not retain the key strings
// passed to Lookup and Object after the call returns (they may point into
// a buffer the middleware reuses)": keys passed to Lookup and Object, of
// stored and of absent URLs, are backed by buffers that are overwritten
// after each call; the driver must still find every record by its key
// and nothing by the overwritten bytes, and absent keys can be stored
// afterwards.
func testKeysNotRetained(tt *tester) {
	const n = 20
	urls := make([]*url, n)
	for i := range urls {
		urls[i] = tt.create(fmt.Sprintf("retain-%03d", i), nil, "v")
	}
	var scribbled []string
	// call passes key to f as a string backed by a buffer, then
	// overwrites the buffer, as the middleware may.
	call := func(key string, f func(string)) {
		buf := []byte(key)
		f(unsafe.String(unsafe.SliceData(buf), len(buf)))
		for i := range buf {
			buf[i] = 'X' - byte(i%3)
		}
		scribbled = append(scribbled, string(buf))
	}
	for i, u := range urls {
		call(u.key, func(k string) {
			if r := tt.lookup(k); r.Epoch != u.epoch {
				tt.t.Errorf("Lookup(%q).Epoch = %d, want %d", u.key, r.Epoch, u.epoch)
			}
		})
		call(u.key+"|v", func(k string) {
			if o := tt.object(k); o == nil {
				tt.t.Errorf("Object(%q) = nil, want the stored variant", u.key+"|v")
			}
		})
		call(fmt.Sprintf("retain-absent-%03d", i), func(k string) { tt.lookup(k) })
		call(fmt.Sprintf("retain-absent-%03d|v", i), func(k string) { tt.object(k) })
	}
	for _, u := range urls {
		tt.check("after the buffers of keys passed to Lookup and Object were overwritten", u)
	}
	for _, k := range scribbled {
		if r := tt.lookup(k); r.Epoch != 0 || r.Options != nil || r.Object != nil {
			tt.t.Errorf("Lookup(%q) found a record under the bytes a Lookup or Object key was overwritten with", k)
		}
	}
	for i := range n {
		u := tt.create(fmt.Sprintf("retain-absent-%03d", i), nil, "v")
		tt.check("after storing a URL that was looked up while absent", u)
	}
}

// testOpaqueKeys checks "Keys are opaque strings of at most 8 KiB": keys
// with any bytes (NUL, invalid UTF-8, line breaks, glob and separator
// characters), keys that are prefixes of one another, and keys of 8 KiB
// that differ only in their last byte name different records.
func testOpaqueKeys(tt *tester) {
	long := strings.Repeat("k", 8<<10-2) // variant keys add 2 bytes
	keys := []string{
		"\x00", "\x00\x00", "a\x00b", "\xff\xfe\xfd", "ключ", "with space\r\nand newline",
		"glob*?[a-z]{x}", "u", "u|", "u:", "%2F", long, long[:len(long)-1] + "l",
	}
	urls := make([]*url, len(keys))
	for i, k := range keys {
		urls[i] = tt.create(k, nil, "v")
	}
	for _, u := range urls {
		tt.check("after storing URLs with opaque keys", u)
	}
}

// testStoredValues checks "Objects handed to Store and returned by Lookup
// and Object are shared, not copied: neither the driver nor the
// middleware modifies one after it has been stored", for objects and
// options with every field set: a Store changes nothing it is given, and
// what Lookup and Object return equals (by value: a driver that keeps
// bytes returns decoded copies) what was stored.
func testStoredValues(tt *tester) {
	key := "values"
	epoch := newEpoch()
	loc := time.FixedZone("drivertest", -7*3600)
	date := time.Date(2030, 1, 2, 3, 4, 5, 123456789, loc)
	full := &microcache.Object{
		Status:               http.StatusMovedPermanently,
		Body:                 []byte("\x1f\x8b compressed bytes"),
		Compressed:           true,
		Size:                 100000,
		Epoch:                epoch,
		Date:                 date,
		Expires:              tt.now.Add(24 * time.Hour).In(loc),
		StaleWhileRevalidate: 3 * time.Second,
		StaleIfError:         4 * time.Hour,
	}
	full.SetHeader(http.Header{
		"Location":         {"/elsewhere"},
		"Set-Cookie2":      {"a", "b", "c"},
		"Content-Type":     {"application/octet-stream"},
		"Content-Encoding": {"gzip"},
		"X-Empty-Value":    {""},
	})
	empty := &microcache.Object{
		Status:  http.StatusNoContent,
		Epoch:   epoch,
		Date:    tt.now,
		Expires: tt.now.Add(time.Hour),
	}
	opts := &microcache.Options{
		Epoch:                epoch,
		Vary:                 []string{"Accept-Encoding", "Cookie"},
		VaryQuery:            []string{"q", "page", ""},
		TTL:                  time.Nanosecond,
		StaleIfError:         -time.Second,
		StaleWhileRevalidate: time.Duration(1<<63 - 1),
		Uncacheable:          true,
	}
	tags := []string{"values-a", "values-b"}

	before := [][]byte{encodeObject(tt.t, full), encodeObject(tt.t, empty), encodeOptions(*opts)}
	tagsBefore := slices.Clone(tags)
	vk := key + "|empty"
	tt.mustStore(&microcache.Store{URLKey: key, Epoch: 0, Options: opts, ObjectKey: key, Object: full, Tags: tags})
	tt.mustStore(&microcache.Store{URLKey: key, Epoch: epoch, ObjectKey: vk, Object: empty, Tags: tags})
	after := [][]byte{encodeObject(tt.t, full), encodeObject(tt.t, empty), encodeOptions(*opts)}
	for i, what := range []string{"plain object", "variant", "options"} {
		if !bytes.Equal(before[i], after[i]) {
			tt.t.Errorf("Store changed the %s it was given", what)
		}
	}
	if !slices.Equal(tags, tagsBefore) {
		tt.t.Errorf("Store changed the tags it was given: %q, were %q", tags, tagsBefore)
	}

	u := &url{key: key, epoch: epoch, opts: opts, plain: full, objects: map[string]*microcache.Object{vk: empty}}
	for range 2 {
		tt.check("reading back objects and options with every field set", u)
	}
	r := tt.lookup(key)
	if r.Object != nil && !r.Object.Date.Equal(date) {
		tt.t.Errorf("Lookup(%q).Object.Date = %v, want the instant %v", key, r.Object.Date, date)
	}
}

// testExpired checks "[a driver] may drop an object once
// [Object.RetainUntil] has passed" and nothing more: an object stored
// past its RetainUntil is either gone or returned unchanged, and objects
// not yet past it are kept.
func testExpired(tt *tester) {
	u := tt.create("expired", nil, "live")
	old := tt.now.Add(-3 * time.Hour) // RetainUntil is two hours ago
	expired := object(u.key, u.epoch, 1, old, 64)
	vk := u.key + "|gone"
	expiredVariant := object(vk, u.epoch, 2, old, 64)
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, ObjectKey: u.key, Object: expired})
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, ObjectKey: vk, Object: expiredVariant})

	for range 2 {
		if r := tt.lookup(u.key); r.Object != nil && !sameObject(tt.t, r.Object, expired) {
			tt.t.Errorf("Lookup(%q).Object = %s, want nil or the expired object %s", u.key, describe(r.Object), describe(expired))
		}
		if o := tt.object(vk); o != nil && !sameObject(tt.t, o, expiredVariant) {
			tt.t.Errorf("Object(%q) = %s, want nil or the expired object %s", vk, describe(o), describe(expiredVariant))
		}
		lk := u.key + "|live"
		if o := tt.object(lk); !sameObject(tt.t, o, u.objects[lk]) {
			tt.t.Errorf("Object(%q) = %s, want the live %s beside an expired one", lk, describe(o), describe(u.objects[lk]))
		}
	}
}

// testLen checks "Len returns the number of objects held, or -1 when the
// driver cannot tell without blocking (a remote driver counts only what
// it holds locally, or returns -1)": it is -1 or between 0 and the
// number of objects stored, and options and purge marks are not objects.
func testLen(tt *tester) {
	check := func(what string, most int) {
		tt.t.Helper()
		if n := tt.d.Len(); n < -1 || n > most {
			tt.t.Errorf("%s: Len() = %d, want -1 or 0..%d", what, n, most)
		}
	}
	check("empty", 0)
	tt.purge("len-mark", newEpoch())
	e := newEpoch()
	tt.mustStore(&microcache.Store{URLKey: "len-options", Epoch: 0, Options: options(e, time.Minute)})
	check("with a purge mark and options only", 0)

	a := tt.create("len-a", nil, "v")
	b := tt.create("len-b", nil, "v")
	check("with four objects", 4)
	for _, u := range []*url{a, b} {
		for _, k := range []string{u.key, u.key + "|v"} {
			tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, ObjectKey: k, Delete: true})
		}
	}
	check("with the four objects deleted", 0)
}
