package redisdriver

import (
	"testing"
	"time"

	"github.com/httpimp/microcache"
)

// newTestTrust returns a subscribed trust with a long maxAge.
func newTestTrust(t *testing.T) *trust {
	t.Helper()
	tr := newTrust(time.Hour, 100)
	tr.subscribed.Store(true)
	return tr
}

// trustNow returns a stamp the trust accepts, and the group state of key.
func trustNow(tr *trust, key string) (slot uint32, gen uint64, stamp int64) {
	slot, gen = tr.group(key)
	return slot, gen, tr.now()
}

func TestTrustObjectFollowsItsKey(t *testing.T) {
	tr := newTestTrust(t)
	o := &microcache.Object{}
	if tr.validObject(o) {
		t.Fatal("an object never trusted is trusted")
	}
	slot, gen, stamp := trustNow(tr, "k1")
	tr.set("k1", o, slot, gen, stamp)
	if !tr.validObject(o) || !tr.valid("k1") {
		t.Fatal("trust set for k1 and its object does not hold")
	}
	tr.forget("k1")
	if tr.validObject(o) {
		t.Error("the object is still trusted after its key's trust was withdrawn")
	}
}

func TestTrustObjectWithdrawnByPurgeOfItsGroup(t *testing.T) {
	tr := newTestTrust(t)
	o := &microcache.Object{}
	slot, gen, stamp := trustNow(tr, "k1")
	tr.set("k1", o, slot, gen, stamp)
	tr.bump("k1")
	if tr.validObject(o) {
		t.Error("the object is still trusted after a purge of its URL")
	}
}

func TestTrustObjectWithdrawnWhenSince(t *testing.T) {
	tr := newTestTrust(t)
	o := &microcache.Object{}
	slot, gen, stamp := trustNow(tr, "k1")
	tr.set("k1", o, slot, gen, stamp)
	tr.withdrawAll()
	if tr.validObject(o) {
		t.Error("the object is still trusted after withdrawAll")
	}
	tr.set("k1", o, slot, gen, stamp)
	if tr.validObject(o) {
		t.Error("trust read before withdrawAll was accepted after it")
	}
}

// TestTrustObjectNotTrustedForAnotherKeysObject: trust set for k1 with
// object a names a, not whatever object k1's slot later holds.
func TestTrustObjectNotTrustedForAnotherKeysObject(t *testing.T) {
	tr := newTestTrust(t)
	a, b := &microcache.Object{}, &microcache.Object{}
	slot, gen, stamp := trustNow(tr, "k1")
	tr.set("k1", a, slot, gen, stamp)
	if tr.validObject(b) {
		t.Fatal("an object never trusted is trusted")
	}
	tr.set("k1", b, slot, gen, stamp)
	if tr.validObject(a) {
		t.Error("k1's old object is still trusted after k1 was trusted with another")
	}
	if !tr.validObject(b) {
		t.Error("k1's new object is not trusted")
	}
	// Another key taking the slot (a collision of the direct-mapped
	// table) withdraws the trust of b.
	h1, e1 := tr.slot("k1")
	var other string
	for i := 0; ; i++ {
		other = "k" + time.Duration(i).String()
		if h, e := tr.slot(other); e == e1 && h != h1 {
			break
		}
	}
	c := &microcache.Object{}
	tr.set(other, c, slot, gen, stamp)
	if tr.validObject(b) {
		t.Error("k1's object is trusted after another key took its slot")
	}
}

// TestTrustPlacingClearsAReusedAddress: an object placed in L1 is not
// trusted by a hint written for an earlier object at its address (the
// address of a dead object is reused by the allocator). The test places
// the same object, as a stand-in for a new one at the same address.
func TestTrustPlacingClearsAReusedAddress(t *testing.T) {
	tr := newTestTrust(t)
	o := &microcache.Object{}
	slot, gen, stamp := trustNow(tr, "k1")
	tr.set("k1", o, slot, gen, stamp)
	tr.placing(o)
	if tr.validObject(o) {
		t.Error("an object placed in L1 is trusted through the hint of the object before it at its address")
	}
	// Placing another object leaves o's hint alone.
	tr.set("k1", o, slot, gen, stamp)
	tr.placing(&microcache.Object{})
	if !tr.validObject(o) {
		t.Error("placing one object withdrew the trust of another")
	}
}

func TestTrustObjectNeedsSubscription(t *testing.T) {
	tr := newTestTrust(t)
	o := &microcache.Object{}
	slot, gen, stamp := trustNow(tr, "k1")
	tr.set("k1", o, slot, gen, stamp)
	tr.subscribed.Store(false)
	if tr.validObject(o) {
		t.Error("an object is trusted while the purge subscription is down")
	}
}
