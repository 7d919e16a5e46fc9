package drivertest

import (
	"bytes"
	"strconv"
	"time"

	"github.com/httpimp/microcache"
)

// testLookupAbsent checks a URL that was never stored. Record.Epoch:
// "0 when the URL has none (no options and no purge mark)"; Object:
// "returns the object stored under objKey ... or nil when there is none".
func testLookupAbsent(tt *tester) {
	r := tt.lookup("absent")
	if r.Epoch != 0 || r.Options != nil || r.Object != nil {
		tt.t.Errorf("Lookup of a URL never stored = {Epoch %d, Options %+v, Object %s}, want {0, nil, nil}",
			r.Epoch, r.Options, describe(r.Object))
	}
	if o := tt.object("absent|variant"); o != nil {
		tt.t.Errorf("Object of a key never stored = %s, want nil", describe(o))
	}
}

// testFirstStore checks "Epoch is the URL's epoch as the caller read it;
// 0 when it had none, in which case the store succeeds only if the URL
// still has none" and "Options.Epoch is the URL's epoch after the store:
// ... a new non-zero epoch when Epoch is 0 (the store then creates the
// URL's record)": Lookup then returns that epoch, those options (without
// their epoch), and the plain object, "stored under the URL key itself,
// beside the epoch and the options".
func testFirstStore(tt *tester) {
	u := tt.create("first", nil)
	tt.check("after the first store", u)
	if r := tt.lookup("firs"); r.Epoch != 0 || r.Options != nil || r.Object != nil {
		tt.t.Errorf("Lookup of a prefix of a stored key found a record (Epoch %d)", r.Epoch)
	}
}

// testVariants checks "A variant selected by request headers or query
// parameters is stored under an object key that starts with the URL key,
// and is read with one more call, [Driver.Object]": variants are stored
// and read independently of each other and of the plain object.
func testVariants(tt *tester) {
	u := tt.create("varied", nil, "en", "fr")
	tt.check("after storing two variants", u)

	// Replacing one variant leaves the other and the plain object alone.
	vk := u.key + "|en"
	u.objects[vk] = tt.obj(vk, u.epoch, 10)
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, ObjectKey: vk, Object: u.objects[vk]})
	tt.check("after replacing one variant", u)

	// A variant of a URL whose plain object is absent.
	v := &url{key: "varied-only", epoch: newEpoch(), objects: make(map[string]*microcache.Object)}
	v.opts = options(v.epoch, time.Minute)
	vk = v.key + "|de"
	v.objects[vk] = tt.obj(vk, v.epoch, 1)
	tt.mustStore(&microcache.Store{URLKey: v.key, Epoch: 0, Options: v.opts, ObjectKey: vk, Object: v.objects[vk]})
	tt.check("after a first store of a variant", v)
}

// testStoreParts checks "Options, when not nil, replace the URL's
// options" and "Object, when not nil, is stored under ObjectKey,
// replacing what was there", each without the other, and a store that
// concerns no object ("ObjectKey ... Empty when the store concerns no
// object").
func testStoreParts(tt *tester) {
	u := tt.create("parts", nil, "a")

	u.opts = options(u.epoch, 2*time.Minute)
	u.opts.Uncacheable = true
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, Options: u.opts})
	tt.check("after storing options alone", u)

	u.plain = tt.obj(u.key, u.epoch, 7)
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, ObjectKey: u.key, Object: u.plain})
	tt.check("after storing the plain object alone", u)

	u.opts = options(u.epoch, 3*time.Minute)
	vk := u.key + "|a"
	u.objects[vk] = tt.obj(vk, u.epoch, 8)
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, Options: u.opts, ObjectKey: vk, Object: u.objects[vk]})
	tt.check("after storing options and a variant", u)
}

// testStoreWrongEpoch checks "Store writes s if, and only if, its
// conditions hold ... stored is false, with a nil error, when a condition
// failed; then nothing was written" for the epoch condition ("It is
// written only if the URL's epoch is still Epoch"): options, objects,
// deletions and tags of a failed store are all left unwritten.
func testStoreWrongEpoch(tt *tester) {
	u := tt.create("cas", []string{"cas-tag"}, "v")
	wrong := newEpoch()
	vk := u.key + "|v"

	tt.mustNotStore("options and plain object with a wrong epoch", &microcache.Store{
		URLKey: u.key, Epoch: wrong, Options: options(wrong, time.Hour),
		ObjectKey: u.key, Object: tt.obj(u.key, wrong, 1), Tags: []string{"cas-new-tag"},
	})
	tt.mustNotStore("options alone with a wrong epoch", &microcache.Store{
		URLKey: u.key, Epoch: wrong, Options: options(wrong, time.Hour),
	})
	tt.mustNotStore("deletion with a wrong epoch", &microcache.Store{
		URLKey: u.key, Epoch: wrong, ObjectKey: vk, Delete: true,
	})
	tt.mustNotStore("deletion of the plain object with a wrong epoch", &microcache.Store{
		URLKey: u.key, Epoch: wrong, ObjectKey: u.key, Delete: true,
	})
	nk := u.key + "|new"
	tt.mustNotStore("new variant with a wrong epoch", &microcache.Store{
		URLKey: u.key, Epoch: wrong, ObjectKey: nk, Object: tt.obj(nk, wrong, 2), Tags: []string{"cas-new-tag"},
	})
	if o := tt.object(nk); o != nil {
		tt.t.Errorf("Object(%q) = %s after a failed store, want nil", nk, describe(o))
	}
	tt.check("after stores with a wrong epoch", u)

	// The failed stores' tag was not recorded: purging it leaves the URL.
	tt.purgeTag("cas-new-tag", newEpoch())
	tt.check("after purging a tag only failed stores carried", u)
}

// testStoreEpochZeroExisting checks "0 when it had none, in which case the
// store succeeds only if the URL still has none": a first store that lost
// the race to another one fails and writes nothing.
func testStoreEpochZeroExisting(tt *tester) {
	u := tt.create("zero", nil, "v")
	other := newEpoch()
	vk := u.key + "|v"
	tt.mustNotStore("first store to a URL that has a record", &microcache.Store{
		URLKey: u.key, Epoch: 0, Options: options(other, time.Hour),
		ObjectKey: u.key, Object: tt.obj(u.key, other, 1), Tags: []string{"zero-tag"},
	})
	tt.mustNotStore("first store of a variant to a URL that has a record", &microcache.Store{
		URLKey: u.key, Epoch: 0, Options: options(other, time.Hour),
		ObjectKey: vk, Object: tt.obj(vk, other, 2), Tags: []string{"zero-tag"},
	})
	tt.check("after first stores to a URL that has a record", u)
	tt.purgeTag("zero-tag", newEpoch())
	tt.check("after purging a tag only failed stores carried", u)
}

// testIfDate checks "with a non-zero IfDate, only if moreover the object
// under ObjectKey has that Date" and "IfDate, when not zero, is a further
// condition: the object now under ObjectKey exists and its Date equals
// IfDate ... so that it never replaces a newer response". Dates are
// compared as instants (time.Time.Equal): a Date read back from a driver
// may have lost its location and monotonic reading.
func testIfDate(tt *tester) {
	u := tt.create("ifdate", nil, "v")
	d1 := tt.now
	vk := u.key + "|v"

	for _, key := range []string{u.key, vk} {
		older, newer := d1.Add(-time.Second), d1.Add(time.Second)
		tt.mustNotStore("IfDate older than the object's Date", &microcache.Store{
			URLKey: u.key, Epoch: u.epoch, ObjectKey: key,
			Object: object(key, u.epoch, 20, older, 64), IfDate: older,
		})
		tt.mustNotStore("IfDate newer than the object's Date", &microcache.Store{
			URLKey: u.key, Epoch: u.epoch, ObjectKey: key,
			Object: object(key, u.epoch, 21, newer, 64), IfDate: newer,
		})
		wrong := newEpoch()
		tt.mustNotStore("IfDate right, epoch wrong", &microcache.Store{
			URLKey: u.key, Epoch: wrong, ObjectKey: key,
			Object: object(key, wrong, 22, d1, 64), IfDate: d1,
		})
		tt.check("after stores whose IfDate failed", u)

		// The same instant in another location, without a monotonic
		// reading.
		same := d1.Round(0).In(time.FixedZone("drivertest", 5*3600))
		replacement := object(key, u.epoch, 23, newer, 64)
		tt.mustStore(&microcache.Store{
			URLKey: u.key, Epoch: u.epoch, ObjectKey: key, Object: replacement, IfDate: same,
		})
		if key == u.key {
			u.plain = replacement
		} else {
			u.objects[key] = replacement
		}
		tt.check("after a store whose IfDate held", u)

		// The object now is newer: a stale recache of the old one fails.
		tt.mustNotStore("IfDate of a replaced object", &microcache.Store{
			URLKey: u.key, Epoch: u.epoch, ObjectKey: key,
			Object: object(key, u.epoch, 24, d1, 64), IfDate: d1,
		})
		tt.check("after a stale recache over a newer object", u)
	}

	// No object under ObjectKey: the condition fails, and the options of
	// the same store are not written.
	nk := u.key + "|none"
	tt.mustNotStore("IfDate with no object", &microcache.Store{
		URLKey: u.key, Epoch: u.epoch, Options: options(u.epoch, time.Hour),
		ObjectKey: nk, Object: object(nk, u.epoch, 25, d1, 64), IfDate: d1,
	})
	if o := tt.object(nk); o != nil {
		tt.t.Errorf("Object(%q) = %s after a store whose IfDate failed, want nil", nk, describe(o))
	}
	tt.check("after a store with IfDate and no object", u)
}

// testDelete checks "Delete, when Object is nil, removes the object under
// ObjectKey", for the plain object and a variant, alone or with options,
// and of an absent object.
func testDelete(tt *tester) {
	u := tt.create("delete", nil, "a", "b")
	ak, bk := u.key+"|a", u.key+"|b"

	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, ObjectKey: ak, Delete: true})
	delete(u.objects, ak)
	if o := tt.object(ak); o != nil {
		tt.t.Errorf("Object(%q) = %s after its deletion, want nil", ak, describe(o))
	}
	tt.check("after deleting a variant", u)

	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, ObjectKey: u.key, Delete: true})
	u.plain = nil
	tt.check("after deleting the plain object", u)

	u.opts = options(u.epoch, 5*time.Minute)
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, Options: u.opts, ObjectKey: bk, Delete: true})
	delete(u.objects, bk)
	if o := tt.object(bk); o != nil {
		tt.t.Errorf("Object(%q) = %s after its deletion, want nil", bk, describe(o))
	}
	tt.check("after deleting a variant and storing options", u)

	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: u.epoch, ObjectKey: u.key + "|never", Delete: true})
	tt.check("after deleting an object that was never stored", u)
}

// testPurgeRecord checks Purge of a URL with options: "Purge sets the
// URL's epoch to epoch ..., whatever it was, keeping its options ... The
// driver may drop the URL's objects", and that "a purge that lands while
// the backend runs ... therefore always wins": a Store with the epoch
// read before the purge fails, one with the new epoch succeeds.
func testPurgeRecord(tt *tester) {
	u := tt.create("purge", nil, "v")
	old := u.epoch
	p := newEpoch()
	tt.purge(u.key, p)
	tt.checkPurged("after Purge", u, p)

	vk := u.key + "|v"
	tt.mustNotStore("object with the epoch read before a purge", &microcache.Store{
		URLKey: u.key, Epoch: old, ObjectKey: u.key, Object: tt.obj(u.key, old, 5),
	})
	tt.mustNotStore("variant with the epoch read before a purge", &microcache.Store{
		URLKey: u.key, Epoch: old, ObjectKey: vk, Object: tt.obj(vk, old, 6),
	})
	tt.mustNotStore("options with the epoch read before a purge", &microcache.Store{
		URLKey: u.key, Epoch: old, Options: options(old, time.Hour),
	})
	tt.checkPurged("after stores with the epoch read before the purge", u, p)

	// Storing in the new epoch works, and a second purge wins again.
	u.epoch = p
	u.opts = options(p, 7*time.Minute)
	u.plain = tt.obj(u.key, p, 7)
	u.objects[vk] = tt.obj(vk, p, 8)
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: p, Options: u.opts, ObjectKey: u.key, Object: u.plain})
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: p, ObjectKey: vk, Object: u.objects[vk]})
	tt.check("after storing in the purge's epoch", u)
	p2 := newEpoch()
	tt.purge(u.key, p2)
	tt.checkPurged("after a second Purge", u, p2)
}

// testOptionsUnchanged checks that Options a Lookup returned are "shared
// with the driver ...: the caller must not modify them, nor the driver
// once it returned them": they read the same after a purge, after the URL's
// options are stored again, and after more Lookups.
func testOptionsUnchanged(tt *tester) {
	u := tt.create("unchanged", nil)
	first := tt.lookup(u.key).Options
	if first == nil {
		tt.t.Fatalf("Lookup(%q) has no options after a Store of options", u.key)
	}
	want, wantEpoch := encodeOptions(*first), first.Epoch
	p := newEpoch()
	tt.purge(u.key, p)
	tt.lookup(u.key)
	tt.mustStore(&microcache.Store{URLKey: u.key, Epoch: p, Options: options(p, 3*time.Minute)})
	tt.lookup(u.key)
	if got := encodeOptions(*first); !bytes.Equal(got, want) || first.Epoch != wantEpoch {
		var was microcache.Options
		was.UnmarshalBinary(want)
		was.Epoch = wantEpoch
		tt.t.Errorf("Options returned by a Lookup changed after a Purge, a Store and Lookups: %+v, then %+v", was, *first)
	}
}

// testPurgeMark checks "If the URL has no record, it creates a purge mark
// holding only the epoch" and "A purge of a URL that has no epoch yet must
// still leave one (a purge mark, with no options), so that a concurrent
// first fetch, which read no epoch, fails its Store", and that the mark is
// kept while the driver holds fewer records than it can ("A driver keeps
// a purge mark at least as long as a backend call may run").
func testPurgeMark(tt *tester) {
	key := "mark"
	m := newEpoch()
	tt.purge(key, m)
	mark := &url{key: key, epoch: m, objects: map[string]*microcache.Object{}}
	tt.check("after purging a URL with no record", mark)

	tt.mustNotStore("first store after a purge mark", &microcache.Store{
		URLKey: key, Epoch: 0, Options: options(newEpoch(), time.Hour),
	})
	n := newEpoch()
	tt.mustNotStore("first store of an object after a purge mark", &microcache.Store{
		URLKey: key, Epoch: 0, Options: options(n, time.Hour), ObjectKey: key, Object: tt.obj(key, n, 1),
	})
	tt.check("after first stores to a purge-marked URL", mark)

	// Other URLs, fewer than MinRecords, do not crowd the mark out.
	for i := range MinRecords / 2 {
		k := "mark-neighbour-" + strconv.Itoa(i)
		e := newEpoch()
		tt.mustStore(&microcache.Store{
			URLKey: k, Epoch: 0, Options: options(e, time.Minute),
			ObjectKey: k, Object: object(k, e, i, tt.now, MinObjectSize),
		})
	}
	tt.check("after storing other URLs", mark)

	// A store that read the mark succeeds, in the mark's epoch.
	u := &url{key: key, epoch: m, opts: options(m, time.Minute), plain: tt.obj(key, m, 2)}
	tt.mustStore(&microcache.Store{URLKey: key, Epoch: m, Options: u.opts, ObjectKey: key, Object: u.plain})
	tt.check("after a store with the mark's epoch", u)
}

// testPurgeTag checks "PurgeTag purges, as Purge does with the same
// epoch, every URL that has stored an object carrying tag (see
// [Store.Tags]) since the tag was last purged, and forgets the tag":
// plain and variant objects of those URLs become unreachable, a URL
// without the tag is left alone, a tag stored again after the purge purges
// again, and an unknown tag purges nothing.
func testPurgeTag(tt *tester) {
	a := tt.create("tag-a", []string{"t", "other"}, "v")
	b := tt.create("tag-b", nil)
	bk := b.key + "|v"
	b.objects[bk] = tt.obj(bk, b.epoch, 3)
	tt.mustStore(&microcache.Store{URLKey: b.key, Epoch: b.epoch, ObjectKey: bk, Object: b.objects[bk], Tags: []string{"t"}})
	c := tt.create("tag-c", []string{"not-t"}, "v")
	d := tt.create("tag-d", nil, "v")

	tt.purgeTag("unknown", newEpoch())
	for _, u := range []*url{a, b, c, d} {
		tt.check("after purging an unknown tag", u)
	}

	p := newEpoch()
	tt.purgeTag("t", p)
	tt.checkPurged("after PurgeTag", a, p)
	tt.checkPurged("after PurgeTag", b, p)
	tt.check("after purging a tag the URL does not carry", c)
	tt.check("after purging a tag the URL does not carry", d)

	tt.mustNotStore("store with the epoch read before PurgeTag", &microcache.Store{
		URLKey: a.key, Epoch: a.epoch, ObjectKey: a.key, Object: tt.obj(a.key, a.epoch, 9),
	})

	// The tag stored again purges again.
	a.epoch = p
	a.opts = options(p, time.Minute)
	a.plain = tt.obj(a.key, p, 10)
	clear(a.objects)
	tt.mustStore(&microcache.Store{URLKey: a.key, Epoch: p, Options: a.opts, ObjectKey: a.key, Object: a.plain, Tags: []string{"t"}})
	tt.check("after storing in the tag purge's epoch", a)
	p2 := newEpoch()
	tt.purgeTag("t", p2)
	tt.checkPurged("after a second PurgeTag", a, p2)
	tt.check("after a second PurgeTag", c)
}
