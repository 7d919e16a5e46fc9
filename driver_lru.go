package microcache

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// lruShards is the number of independently locked parts of a DriverLRU. A
// power of two, so a shard is picked with a mask.
const lruShards = 16

// lruRecordOverhead approximates, in bytes, what one stored record costs
// beyond its key, header and body bytes (list element, map slot, Object
// struct, slice headers), so that a byte budget bounds real memory.
const lruRecordOverhead = 256

// DriverLRU is an in-memory [Driver] that evicts the least recently used
// records when it holds more objects, or more bytes, than its limits. It is
// built on github.com/hashicorp/golang-lru/v2 and split into independently
// locked shards; reads take only a shared lock, so hits on one hot key from
// many goroutines do not serialize. Recency is tracked approximately: a read
// moves a record to the front only once other records have been added since
// it was last moved, which keeps eviction least-recently-used in practice.
//
// Objects and options are counted separately against the object limit;
// both count against the byte limit. DriverLRU is safe for concurrent use.
// Its methods never return errors.
type DriverLRU struct {
	seed      maphash.Seed
	shards    [lruShards]lruShard
	evictions atomic.Uint64
}

var _ Driver = (*DriverLRU)(nil)

type lruShard struct {
	mu       sync.RWMutex
	objects  *simplelru.LRU[string, *lruRecord] // guarded by mu
	options  *simplelru.LRU[string, *lruRecord] // guarded by mu
	bytes    atomic.Int64                       // written with mu held
	maxBytes int64                              // 0: no byte limit
	adds     atomic.Uint64                      // records added, written with mu held
	deleting bool                               // guarded by mu: a removal in progress is not an eviction
	_        [40]byte                           // keep shards on separate cache lines
}

// lruRecord is one stored object or options value.
type lruRecord struct {
	obj   *Object
	opts  Options
	size  int64
	moved atomic.Uint64 // shard.adds when the record was last moved to the front
}

// NewDriverLRU returns a [DriverLRU] holding at most size objects (and at
// most size option records). A size below 1 is treated as 1.
func NewDriverLRU(size int) *DriverLRU {
	return NewDriverLRUBytes(size, 0)
}

// NewDriverLRUBytes returns a [DriverLRU] holding at most maxObjects objects
// and at most maxBytes bytes of records (keys, headers and bodies as stored,
// plus a fixed per-record overhead). maxBytes <= 0 means no byte limit; a
// maxObjects below 1 is treated as 1. The limits are split evenly over the
// driver's shards, so an object larger than maxBytes/16 is never retained.
func NewDriverLRUBytes(maxObjects int, maxBytes int64) *DriverLRU {
	d := &DriverLRU{seed: maphash.MakeSeed()}
	perShard := max(1, (maxObjects+lruShards-1)/lruShards)
	for i := range d.shards {
		s := &d.shards[i]
		if maxBytes > 0 {
			s.maxBytes = max(1, maxBytes/lruShards)
		}
		onEvict := func(_ string, r *lruRecord) {
			s.bytes.Add(-r.size)
			if !s.deleting {
				d.evictions.Add(1)
			}
		}
		// NewLRU fails only for a size below 1, which perShard never is.
		s.objects, _ = simplelru.NewLRU(perShard, onEvict)
		s.options, _ = simplelru.NewLRU(perShard, onEvict)
	}
	return d
}

func (d *DriverLRU) shard(key string) *lruShard {
	return &d.shards[maphash.String(d.seed, key)&(lruShards-1)]
}

// GetOptions implements [Driver].
func (d *DriverLRU) GetOptions(_ context.Context, key string) (Options, bool, error) {
	s := d.shard(key)
	r := s.get(s.options, key)
	if r == nil {
		return Options{}, false, nil
	}
	return r.opts, true, nil
}

// SetOptions implements [Driver].
func (d *DriverLRU) SetOptions(_ context.Context, key string, o Options) error {
	size := int64(len(key) + lruRecordOverhead)
	for _, v := range o.Vary {
		size += int64(len(v))
	}
	for _, v := range o.VaryQuery {
		size += int64(len(v))
	}
	s := d.shard(key)
	s.add(s.options, key, &lruRecord{opts: o, size: size})
	return nil
}

// GetObject implements [Driver].
func (d *DriverLRU) GetObject(_ context.Context, key string) (*Object, error) {
	s := d.shard(key)
	if r := s.get(s.objects, key); r != nil {
		return r.obj, nil
	}
	return nil, nil
}

// SetObject implements [Driver].
func (d *DriverLRU) SetObject(_ context.Context, key string, obj *Object) error {
	s := d.shard(key)
	s.add(s.objects, key, &lruRecord{obj: obj, size: int64(len(key)) + obj.storedSize()})
	return nil
}

// DeleteObject implements [Driver].
func (d *DriverLRU) DeleteObject(_ context.Context, key string) error {
	s := d.shard(key)
	s.mu.Lock()
	s.deleting = true // the eviction callback must not count this removal
	s.objects.Remove(key)
	s.deleting = false
	s.mu.Unlock()
	return nil
}

// Len implements [Driver]: the number of stored objects.
func (d *DriverLRU) Len() int {
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.RLock()
		n += s.objects.Len()
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

// get looks key up under the shared lock and moves the record to the front
// only when records were added since it was last moved there.
func (s *lruShard) get(l *simplelru.LRU[string, *lruRecord], key string) *lruRecord {
	s.mu.RLock()
	r, ok := l.Peek(key)
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	if adds := s.adds.Load(); r.moved.Load() != adds {
		s.mu.Lock()
		l.Get(key) // moves it to the front, if still present
		s.mu.Unlock()
		r.moved.Store(adds)
	}
	return r
}

// add stores r under key, then evicts least recently used records until the
// shard is within its byte limit.
func (s *lruShard) add(l *simplelru.LRU[string, *lruRecord], key string, r *lruRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := l.Peek(key); ok {
		s.bytes.Add(-old.size)
	}
	s.bytes.Add(r.size)
	l.Add(key, r)
	r.moved.Store(s.adds.Add(1))
	for s.maxBytes > 0 && s.bytes.Load() > s.maxBytes {
		// Objects go first: they are the large records, and an options
		// record without its objects costs only a miss.
		if _, _, ok := s.objects.RemoveOldest(); ok {
			continue
		}
		if _, _, ok := s.options.RemoveOldest(); !ok {
			break
		}
	}
}
