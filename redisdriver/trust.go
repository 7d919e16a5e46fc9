package redisdriver

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	since      atomic.Int64
	subscribed atomic.Bool
	gens       [genSlots]atomic.Uint64
	shards     [trustShards]trustShard
}

const (
	genSlots        = 4096
	trustShards     = 16
	trustShardLimit = 1 << 14 // entries per shard; a full shard is emptied
)

type trustShard struct {
	mu sync.RWMutex
	m  map[string]trustEntry // guarded by mu
	_  [32]byte
}

type trustEntry struct {
	stamp int64  // when L2 was read, on the trust clock
	gen   uint64 // gens[slot] then
	slot  uint32
}

func newTrust(maxAge time.Duration) *trust {
	t := &trust{seed: maphash.MakeSeed(), base: time.Now(), maxAge: int64(maxAge)}
	for i := range t.shards {
		t.shards[i].m = make(map[string]trustEntry)
	}
	return t
}

// now reads the trust clock (monotonic).
func (t *trust) now() int64 { return int64(time.Since(t.base)) }

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

func (t *trust) shard(key string) *trustShard {
	return &t.shards[maphash.String(t.seed, key)%trustShards]
}

// valid reports whether the L1 record under key is trusted.
func (t *trust) valid(key string) bool {
	if !t.subscribed.Load() {
		return false
	}
	s := t.shard(key)
	s.mu.RLock()
	e, ok := s.m[key]
	s.mu.RUnlock()
	if !ok {
		return false
	}
	now := t.now()
	return e.stamp > t.since.Load() && now-e.stamp < t.maxAge && t.gens[e.slot].Load() == e.gen
}

// set trusts the L1 record under key as read from L2 at stamp, in the
// group state (slot, gen) read before. It does not retain key.
func (t *trust) set(key string, slot uint32, gen uint64, stamp int64) {
	s := t.shard(key)
	s.mu.Lock()
	if len(s.m) >= trustShardLimit {
		clear(s.m) // forgetting is safe: untrusted records are read from L2
	}
	s.m[strings.Clone(key)] = trustEntry{stamp: stamp, gen: gen, slot: slot}
	s.mu.Unlock()
}

// forget withdraws the trust of the record under key.
func (t *trust) forget(key string) {
	s := t.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}
