package redisdriver

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/httpimp/microcache"
)

// trust records which of L1's records were read from (or written to) L2
// recently enough to be served without asking L2 again.
//
// A record is trusted when all of these hold: it was confirmed by L2 less
// than maxAge ago; after since (the last time this process may have
// missed purges: a pub/sub reconnect, the breaker closing); no purge of a
// URL in its group has been received since (gens); and the purge
// subscription is in place now. Groups are the URL keys' slot parts (see
// slotPart) hashed into genSlots counters, so a purge of a URL also
// withdraws the trust of its variants, and a read that raced a purge
// cannot be trusted afterwards.
//
// The trust of a key is kept in table, found by the key's hash. A hit
// must not hash its key a second time (L1 hashed it already), so the
// trust of a key whose L1 record holds an object is also found from the
// object's address, through hints: validObject follows the hint of the
// object L1 returned to the key's slot, which names the object it
// trusts. An address is not an identity over time (a dead object's
// address is reused), so the driver keeps two rules: an object is put in
// L1 under one key only, and only after placing cleared its hint (see
// Driver.putL1). Then a hint and a slot naming a live object's address
// were written for that object, under its key.
type trust struct {
	seed       maphash.Seed
	base       time.Time
	maxAge     int64
	coarse     atomic.Int64 // now() as of the last tick of the clock (see tick)
	wall       atomic.Int64 // time.Now().UnixNano() then
	since      atomic.Int64
	subscribed atomic.Bool
	gens       [genSlots]atomic.Uint64
	table      []trustSlot // by key hash; a power of two long
	hints      []objHint   // by object address; as long as table
	shift      uint8       // 64 - log2(len(hints))
}

const genSlots = 4096

// trustSlot is one entry of the trust table: a direct-mapped cache, so a
// key whose slot another key took is simply not trusted (and read from
// L2). Readers take no lock: seq is odd while a writer changes the slot,
// and a reader that sees it change ignores what it read.
type trustSlot struct {
	seq   atomic.Uint64
	key   atomic.Uint64  // the key's hash; 0: empty
	obj   atomic.Uintptr // the address of the L1 object trusted with it, or 0
	stamp atomic.Int64   // when L2 was read, on the trust clock
	gen   atomic.Uint64  // gens[group] then
	group atomic.Uint32
}

// objHint tells in which slot of the table the trust of the L1 record
// holding the object at address obj was written. It is only a hint: the
// slot's own obj decides.
type objHint struct {
	obj atomic.Uintptr
	at  atomic.Uint32
}

func newTrust(maxAge time.Duration, records int) *trust {
	n := 1024
	for n < 2*records && n < 1<<20 {
		n *= 2
	}
	t := &trust{seed: maphash.MakeSeed(), base: time.Now(), maxAge: int64(maxAge),
		table: make([]trustSlot, n), hints: make([]objHint, n), shift: uint8(64 - bits.TrailingZeros(uint(n)))}
	t.tick()
	return t
}

// clockTick is the resolution of the coarse clock that hits read: reading
// the clock costs more than the rest of an L1 hit on some machines.
const clockTick = 10 * time.Millisecond

// tick advances the coarse clock; the driver calls it every clockTick.
func (t *trust) tick() {
	now := time.Now()
	t.coarse.Store(int64(now.Sub(t.base)))
	t.wall.Store(now.UnixNano())
}

// now reads the trust clock (monotonic).
func (t *trust) now() int64 { return int64(time.Since(t.base)) }

// fresh reports whether o is an object that does not expire within two
// ticks of the coarse clock.
func (t *trust) fresh(o *microcache.Object) bool {
	return o != nil && o.Expires.UnixNano() > t.wall.Load()+int64(2*clockTick)
}

// group returns the generation slot of key and its current value. Read
// it, and now, before reading L2; pass both to set afterwards.
func (t *trust) group(key string) (slot uint32, gen uint64) {
	slot = uint32(maphash.String(t.seed, slotPart(key)) % genSlots)
	return slot, t.gens[slot].Load()
}

// bump withdraws the trust of every record in urlKey's group.
func (t *trust) bump(urlKey string) {
	slot, _ := t.group(urlKey)
	t.gens[slot].Add(1)
}

// withdrawAll withdraws the trust of every record.
func (t *trust) withdrawAll() { t.since.Store(t.now()) }

// slot returns key's hash (never 0) and its slot. Two keys of equal
// hashes (one chance in 2^64 for a pair) would share their trust: each
// record is still trusted no longer than maxAge after some L2 read.
func (t *trust) slot(key string) (uint64, *trustSlot) {
	h := maphash.String(t.seed, key) | 1
	return h, &t.table[(h>>1)&uint64(len(t.table)-1)]
}

// valid reports whether the L1 record under key is trusted.
func (t *trust) valid(key string) bool {
	if !t.subscribed.Load() || t.maxAge <= int64(clockTick) {
		return false
	}
	h, e := t.slot(key)
	seq := e.seq.Load()
	k, stamp, gen, group := e.key.Load(), e.stamp.Load(), e.gen.Load(), e.group.Load()
	if seq&1 != 0 || e.seq.Load() != seq || k != h {
		return false
	}
	return t.current(stamp, gen, group)
}

// validObject reports whether the L1 record that holds o (as its plain
// object, or as a variant) is trusted. o must be a live object L1
// returned; it costs no hashing of the key.
func (t *trust) validObject(o *microcache.Object) bool {
	if !t.subscribed.Load() || t.maxAge <= int64(clockTick) {
		return false
	}
	p := addr(o)
	hint := &t.hints[t.hintIndex(p)]
	if hint.obj.Load() != p {
		return false
	}
	e := &t.table[hint.at.Load()&uint32(len(t.table)-1)]
	seq := e.seq.Load()
	obj, stamp, gen, group := e.obj.Load(), e.stamp.Load(), e.gen.Load(), e.group.Load()
	if seq&1 != 0 || e.seq.Load() != seq || obj != p {
		return false
	}
	return t.current(stamp, gen, group)
}

// current reports whether trust written at stamp, in the state gen of
// group, still holds.
func (t *trust) current(stamp int64, gen uint64, group uint32) bool {
	// The coarse clock lags by a tick (more when its goroutine is late):
	// the record is trusted only if it is younger than maxAge by that.
	now := t.coarse.Load()
	return stamp > t.since.Load() && now-stamp < t.maxAge-int64(clockTick) && t.gens[group%genSlots].Load() == gen
}

// addr returns o's address (0 for nil). The Go heap does not move
// objects, so it is stable while o lives.
func addr(o *microcache.Object) uintptr { return uintptr(unsafe.Pointer(o)) }

// hintIndex returns the hint of the object at address p (Fibonacci
// hashing of the address: objects are at least 16 bytes apart).
func (t *trust) hintIndex(p uintptr) uint64 {
	return (uint64(p) * 0x9E3779B97F4A7C15) >> t.shift
}

// placing clears o's hint; the driver calls it before it puts o in L1,
// so that no hint written for a dead object at o's address leads to a
// slot that trusts that object.
func (t *trust) placing(o *microcache.Object) {
	p := addr(o)
	if hint := &t.hints[t.hintIndex(p)]; hint.obj.Load() == p {
		hint.obj.Store(0)
	}
}

// write sets key's slot to (h, obj, stamp, gen, group) as one step.
func (e *trustSlot) write(h uint64, obj uintptr, stamp int64, gen uint64, group uint32) {
	for {
		seq := e.seq.Load()
		if seq&1 == 0 && e.seq.CompareAndSwap(seq, seq+1) {
			e.key.Store(h)
			e.obj.Store(obj)
			e.stamp.Store(stamp)
			e.gen.Store(gen)
			e.group.Store(group)
			e.seq.Store(seq + 2)
			return
		}
	}
}

// set trusts the L1 record under key, which holds o (nil: no object), as
// read from L2 at stamp, in the group state (slot, gen) read before. It
// does not retain key.
func (t *trust) set(key string, o *microcache.Object, slot uint32, gen uint64, stamp int64) {
	h, e := t.slot(key)
	e.write(h, addr(o), stamp, gen, slot)
	if o != nil {
		// The slot first: a reader that sees the hint finds the slot
		// that names o, or one written since that does not.
		hint := &t.hints[t.hintIndex(addr(o))]
		hint.at.Store(uint32((h >> 1) & uint64(len(t.table)-1)))
		hint.obj.Store(addr(o))
	}
}

// forget withdraws the trust of the record under key.
func (t *trust) forget(key string) {
	h, e := t.slot(key)
	if e.key.Load() == h {
		e.write(0, 0, 0, 0, 0)
	}
}
