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

	writeMu sync.Mutex          // serializes Store, Purge and PurgeTag, so each is one atomic step
	tags    map[string][]string // tag -> URL keys stored with it; guarded by writeMu
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
	d := &DriverLRU{seed: maphash.MakeSeed(), tags: make(map[string][]string)}
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

// get returns what the record under key holds. It does not retain key.
func (d *DriverLRU) get(key string) (policy *Options, epoch uint64, obj *Object, ok bool) {
	s := d.shard(key)
	s.mu.RLock()
	r, ok := s.records.Peek(key)
	if ok {
		policy, epoch, obj = r.policy, r.epoch, r.obj
	}
	s.mu.RUnlock()
	if ok {
		s.touch(key, r)
	}
	return policy, epoch, obj, ok
}

// Lookup implements [Driver]. It does not retain urlKey.
func (d *DriverLRU) Lookup(_ context.Context, urlKey string) (Record, error) {
	policy, epoch, obj, _ := d.get(urlKey)
	rec := Record{Epoch: epoch, Object: obj}
	if policy != nil {
		rec.Options, rec.HasOptions = *policy, true
		rec.Options.Epoch = epoch
		// The lists are shared with every record of this policy: capped,
		// so an append by a caller copies rather than writes into them.
		rec.Options.Vary, rec.Options.VaryQuery = slices.Clip(policy.Vary), slices.Clip(policy.VaryQuery)
	}
	return rec, nil
}

// Object implements [Driver]. It does not retain objKey.
func (d *DriverLRU) Object(_ context.Context, objKey string) (*Object, error) {
	_, _, obj, _ := d.get(objKey)
	return obj, nil
}

// Store implements [Driver].
func (d *DriverLRU) Store(_ context.Context, st *Store) (bool, error) {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	_, epoch, obj, _ := d.get(st.URLKey)
	if epoch != st.Epoch {
		return false, nil
	}
	if !st.IfDate.IsZero() {
		if st.ObjectKey != st.URLKey {
			_, _, obj, _ = d.get(st.ObjectKey)
		}
		if obj == nil || !obj.Date.Equal(st.IfDate) {
			return false, nil
		}
	}
	if st.Options != nil {
		o := st.Options
		d.shard(st.URLKey).update(st.URLKey, func(r *lruRecord) {
			r.policy, r.epoch = d.share(r.policy, o), o.Epoch
		})
	}
	if st.ObjectKey != "" && (st.Object != nil || st.Delete) {
		s := d.shard(st.ObjectKey)
		if st.Object != nil {
			s.update(st.ObjectKey, func(r *lruRecord) {
				if r.obj == nil {
					s.objects++
				}
				r.obj = st.Object
			})
		} else {
			s.deleteObject(st.ObjectKey)
		}
	}
	for _, tag := range st.Tags {
		if !slices.Contains(d.tags[tag], st.URLKey) {
			d.tags[tag] = append(d.tags[tag], st.URLKey)
		}
	}
	return true, nil
}

// Purge implements [Driver].
func (d *DriverLRU) Purge(_ context.Context, urlKey string, epoch uint64) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	d.purgeLocked(urlKey, epoch)
	return nil
}

func (d *DriverLRU) purgeLocked(urlKey string, epoch uint64) {
	s := d.shard(urlKey)
	s.update(urlKey, func(r *lruRecord) {
		r.epoch = epoch
		if r.obj != nil {
			s.objects--
			r.obj = nil
		}
	})
}

// PurgeTag implements [Driver].
func (d *DriverLRU) PurgeTag(_ context.Context, tag string, epoch uint64) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	for _, k := range d.tags[tag] {
		d.purgeLocked(k, epoch)
	}
	delete(d.tags, tag)
	return nil
}

// deleteObject removes the object under key, keeping the record's options.
func (s *lruShard) deleteObject(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records.Peek(key)
	if !ok || r.obj == nil {
		return
	}
	if r.policy == nil {
		s.records.Remove(key) // the callback adjusts the counts
		return
	}
	s.objects--
	s.bytes.Add(-r.obj.storedSize())
	r.obj = nil
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
		a.Uncacheable == b.Uncacheable && a.Strikes == b.Strikes && a.StaleRecache == b.StaleRecache &&
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
