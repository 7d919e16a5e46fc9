package microcache

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// lruShards is the number of independently locked parts of a DriverLRU. A
// power of two, so a shard is picked with a mask.
const lruShards = 16

// lruRecordOverhead approximates, in bytes, what one record costs beyond
// its key and what it holds: the record itself, the LRU's list element and
// map slot (measured with runtime.MemStats in memory_test.go), so that a
// byte budget bounds real memory.
const lruRecordOverhead = 160

// DriverLRU is an in-memory [Driver] that evicts the least recently used
// records when it holds more objects, or more bytes, than its limits. It is
// built on github.com/hashicorp/golang-lru/v2 and split into independently
// locked shards; reads take only a shared lock, so hits on one hot key from
// many goroutines do not serialize. Recency is tracked approximately: a read
// moves a record to the front only if records were added to its shard since
// it was last moved there, which keeps eviction least-recently-used in
// practice without a write lock per read.
//
// A URL's options and the object of its plain variant share one record, so
// a hit costs one lookup. The object limit counts objects; the byte limit
// counts keys, headers, bodies and a fixed per-record overhead. DriverLRU
// is safe for concurrent use. Its methods never return errors.
type DriverLRU struct {
	seed      maphash.Seed
	shards    [lruShards]lruShard
	evictions atomic.Uint64
	policies  [4]atomic.Pointer[Options] // policies stored last (see share)
	nextSlot  atomic.Uint32              // where share puts the next new policy
}

var (
	_ Driver      = (*DriverLRU)(nil)
	_ DriverUsage = (*DriverLRU)(nil)
)

type lruShard struct {
	mu       sync.RWMutex
	records  *simplelru.LRU[string, *lruRecord] // guarded by mu
	objects  int                                // records holding an object; guarded by mu
	maxObjs  int                                // object limit of this shard
	maxBytes int64                              // byte limit of this shard; 0: none
	bytes    atomic.Int64                       // written with mu held
	adds     atomic.Uint64                      // records added; written with mu held
	evicting bool                               // guarded by mu: removals now are evictions
	_        [48]byte                           // 128 bytes: shards on separate cache lines
}

// lruRecord is what one key holds: options, an object, or both. Its fields
// other than moved are guarded by the shard's mu. Its size is recomputed
// (see recordSize) rather than stored, which keeps the record small.
//
// Options are split in two: the epoch, which is the URL's own, and the
// rest (policy), which most URLs of a service share; records with equal
// policies point to one immutable copy (see DriverLRU.share), so a record
// costs 32 bytes rather than the 112 of an Options value inline.
type lruRecord struct {
	policy *Options // the options but for Epoch; nil: no options stored
	epoch  uint64
	obj    *Object
	moved  atomic.Uint64 // shard.adds when the record was last moved to the front
}

// options returns the options stored in r; ok is false when there are none.
func (r *lruRecord) options() (o Options, ok bool) {
	if r.policy == nil {
		return Options{}, false
	}
	o = *r.policy
	o.Epoch = r.epoch
	// The lists are shared with every record of this policy: capped, so an
	// append by a caller copies rather than writes into them.
	o.Vary, o.VaryQuery = slices.Clip(o.Vary), slices.Clip(o.VaryQuery)
	return o, true
}

// recordSize returns the bytes a record under key counts against the byte
// limit: the key, the record's overhead, the options' lists and the object.
func recordSize(key string, r *lruRecord) int64 {
	n := int64(len(key)) + lruRecordOverhead
	if r.policy != nil {
		// Counted for every record that shares them: an overcount, which
		// keeps the byte limit a bound.
		for _, v := range r.policy.Vary {
			n += int64(len(v)) + 16
		}
		for _, v := range r.policy.VaryQuery {
			n += int64(len(v)) + 16
		}
	}
	if r.obj != nil {
		n += r.obj.storedSize()
	}
	return n
}

// NewDriverLRU returns a [DriverLRU] holding at most size objects. A size
// below 1 is treated as 1.
func NewDriverLRU(size int) *DriverLRU {
	return NewDriverLRUBytes(size, 0)
}

// NewDriverLRUBytes returns a [DriverLRU] holding at most maxObjects objects
// and at most maxBytes bytes (keys, headers and bodies as stored, plus a
// fixed per-record overhead). maxBytes <= 0 means no byte limit; a
// maxObjects below 1 is treated as 1. The limits are split evenly over the
// driver's 16 shards, so an object larger than maxBytes/16 is never
// retained; set [Config.MaxObjectSize] below that.
func NewDriverLRUBytes(maxObjects int, maxBytes int64) *DriverLRU {
	d := &DriverLRU{seed: maphash.MakeSeed()}
	perShard := max(1, (maxObjects+lruShards-1)/lruShards)
	for i := range d.shards {
		s := &d.shards[i]
		s.maxObjs = perShard
		if maxBytes > 0 {
			s.maxBytes = max(1, maxBytes/lruShards)
		}
		// The record count is bounded by hand (objects and bytes), so the
		// LRU's own size limit is set out of reach; NewLRU fails only for a
		// size below 1.
		s.records, _ = simplelru.NewLRU(int(^uint(0)>>2), func(key string, r *lruRecord) {
			s.bytes.Add(-recordSize(key, r))
			if r.obj != nil {
				s.objects--
			}
			if s.evicting {
				d.evictions.Add(1)
			}
		})
	}
	return d
}

func (d *DriverLRU) shard(key string) *lruShard {
	return &d.shards[maphash.String(d.seed, key)&(lruShards-1)]
}

// lookup returns the options stored under key and the object stored under
// the same key, in one step. It does not retain key. It backs the hit path.
func (d *DriverLRU) lookup(key string) (opts Options, obj *Object, found bool) {
	s := d.shard(key)
	s.mu.RLock()
	r, ok := s.records.Peek(key)
	if ok {
		opts, found = r.options()
		obj = r.obj
	}
	s.mu.RUnlock()
	if ok {
		s.touch(key, r)
	}
	return opts, obj, found
}

// GetOptions implements [Driver].
func (d *DriverLRU) GetOptions(_ context.Context, key string) (Options, bool, error) {
	o, _, found := d.lookup(key)
	return o, found, nil
}

// GetObject implements [Driver].
func (d *DriverLRU) GetObject(_ context.Context, key string) (*Object, error) {
	_, obj, _ := d.lookup(key)
	return obj, nil
}

// SetOptions implements [Driver].
func (d *DriverLRU) SetOptions(_ context.Context, key string, o Options) error {
	d.shard(key).update(key, func(r *lruRecord) {
		r.policy, r.epoch = d.share(r.policy, &o), o.Epoch
	})
	return nil
}

// SetObject implements [Driver].
func (d *DriverLRU) SetObject(_ context.Context, key string, obj *Object) error {
	s := d.shard(key)
	s.update(key, func(r *lruRecord) {
		if r.obj == nil {
			s.objects++
		}
		r.obj = obj
	})
	return nil
}

// storeFetched stores, in one locked step, what a backend call for the URL
// key taught: its options o, and obj as the object of its plain variant
// (nil: the object stays as it is; drop: the object is removed). With
// hadPrev, o.Epoch is the epoch the call started from, and nothing is
// stored if the URL's epoch has changed since: a purge came while the
// backend ran. Without it, options already stored (a concurrent first
// call's) lend their epoch, so that neither call orphans the other's
// objects. obj's Epoch is set to the epoch stored, which is returned; ok
// is false when nothing was stored. obj must not be shared yet.
func (d *DriverLRU) storeFetched(key string, o Options, hadPrev bool, obj *Object, drop bool) (epoch uint64, ok bool) {
	s := d.shard(key)
	epoch, ok = o.Epoch, true
	s.update(key, func(r *lruRecord) {
		if r.policy != nil {
			if hadPrev && r.epoch != o.Epoch {
				epoch, ok = r.epoch, false
				return
			}
			epoch = r.epoch
		}
		r.policy, r.epoch = d.share(r.policy, &o), epoch
		switch {
		case obj != nil:
			obj.Epoch = epoch
			if r.obj == nil {
				s.objects++
			}
			r.obj = obj
		case drop && r.obj != nil:
			s.objects--
			r.obj = nil
		}
	})
	return epoch, ok
}

// DeleteObject implements [Driver]. The options stored under the same key,
// if any, stay.
func (d *DriverLRU) DeleteObject(_ context.Context, key string) error {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records.Peek(key)
	if !ok || r.obj == nil {
		return nil
	}
	if r.policy == nil {
		s.records.Remove(key) // the callback adjusts the counts
		return nil
	}
	s.objects--
	s.bytes.Add(-r.obj.storedSize())
	r.obj = nil
	return nil
}

// Len implements [Driver]: the number of stored objects.
func (d *DriverLRU) Len() int {
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.RLock()
		n += s.objects
		s.mu.RUnlock()
	}
	return n
}

// Bytes returns the bytes currently held, as counted against the byte limit.
func (d *DriverLRU) Bytes() int64 {
	var n int64
	for i := range d.shards {
		n += d.shards[i].bytes.Load()
	}
	return n
}

// Evictions returns how many records have been evicted to respect the
// limits since the driver was created.
func (d *DriverLRU) Evictions() uint64 { return d.evictions.Load() }

// touch moves r to the front if records were added since it was last
// moved there.
func (s *lruShard) touch(key string, r *lruRecord) {
	adds := s.adds.Load()
	if r.moved.Load() == adds {
		return
	}
	s.mu.Lock()
	s.records.Get(key) // moves it to the front, if still present
	s.mu.Unlock()
	r.moved.Store(adds)
}

// share returns a pointer to an immutable copy of o's policy (o but for
// its Epoch): cur, or one of the four policies stored last, when equal;
// else a new copy, which replaces the oldest of the four. A service with
// a few distinct policies so keeps one copy of each. Safe for concurrent
// use: a race at worst stores an extra copy.
func (d *DriverLRU) share(cur, o *Options) *Options {
	if cur != nil && samePolicy(cur, o) {
		return cur
	}
	for i := range d.policies {
		if p := d.policies[i].Load(); p != nil && samePolicy(p, o) {
			return p
		}
	}
	p := *o
	p.Epoch = 0
	p.Vary = slices.Clone(o.Vary) // the caller's slices may change
	p.VaryQuery = slices.Clone(o.VaryQuery)
	d.policies[d.nextSlot.Add(1)%uint32(len(d.policies))].Store(&p)
	return &p
}

// samePolicy reports whether a and b are equal but for their Epochs.
func samePolicy(a, b *Options) bool {
	return a.TTL == b.TTL && a.StaleIfError == b.StaleIfError &&
		a.StaleWhileRevalidate == b.StaleWhileRevalidate &&
		a.Uncacheable == b.Uncacheable && a.StaleRecache == b.StaleRecache &&
		a.CollapsedForwarding == b.CollapsedForwarding &&
		slices.Equal(a.Vary, b.Vary) && slices.Equal(a.VaryQuery, b.VaryQuery)
}

// update applies change to the record under key (creating it), moves it to
// the front, and evicts least recently used records until the shard is
// within its limits.
func (s *lruShard) update(key string, change func(*lruRecord)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records.Get(key)
	var before int64
	if ok {
		before = recordSize(key, r)
	} else {
		r = new(lruRecord)
		s.records.Add(key, r)
	}
	change(r)
	s.bytes.Add(recordSize(key, r) - before)
	r.moved.Store(s.adds.Add(1))
	s.evicting = true
	// Records without objects (options of uncacheable or varying URLs) are
	// bounded too, at twice the object limit.
	for s.objects > s.maxObjs || s.records.Len() > 2*s.maxObjs || (s.maxBytes > 0 && s.bytes.Load() > s.maxBytes) {
		if _, _, ok := s.records.RemoveOldest(); !ok {
			break
		}
	}
	s.evicting = false
}
