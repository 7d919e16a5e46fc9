package redisdriver

import (
	"hash/maphash"
	"sync/atomic"
	"time"

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
}

const genSlots = 4096

// trustSlot is one entry of the trust table: a direct-mapped cache, so a
// key whose slot another key took is simply not trusted (and read from
// L2). Readers take no lock: seq is odd while a writer changes the slot,
// and a reader that sees it change ignores what it read.
type trustSlot struct {
	seq   atomic.Uint64
	key   atomic.Uint64 // the key's hash; 0: empty
	stamp atomic.Int64  // when L2 was read, on the trust clock
	gen   atomic.Uint64 // gens[group] then
	group atomic.Uint32
}

func newTrust(maxAge time.Duration, records int) *trust {
	n := 1024
	for n < 2*records && n < 1<<20 {
		n *= 2
	}
	t := &trust{seed: maphash.MakeSeed(), base: time.Now(), maxAge: int64(maxAge), table: make([]trustSlot, n)}
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
	// The coarse clock lags by a tick (more when its goroutine is late):
	// the record is trusted only if it is younger than maxAge by that.
	now := t.coarse.Load()
	return stamp > t.since.Load() && now-stamp < t.maxAge-int64(clockTick) && t.gens[group%genSlots].Load() == gen
}

// write sets key's slot to (h, stamp, gen, group) as one step.
func (e *trustSlot) write(h uint64, stamp int64, gen uint64, group uint32) {
	for {
		seq := e.seq.Load()
		if seq&1 == 0 && e.seq.CompareAndSwap(seq, seq+1) {
			e.key.Store(h)
			e.stamp.Store(stamp)
			e.gen.Store(gen)
			e.group.Store(group)
			e.seq.Store(seq + 2)
			return
		}
	}
}

// set trusts the L1 record under key as read from L2 at stamp, in the
// group state (slot, gen) read before. It does not retain key.
func (t *trust) set(key string, slot uint32, gen uint64, stamp int64) {
	h, e := t.slot(key)
	e.write(h, stamp, gen, slot)
}

// forget withdraws the trust of the record under key.
func (t *trust) forget(key string) {
	h, e := t.slot(key)
	if e.key.Load() == h {
		e.write(0, 0, 0, 0)
	}
}
