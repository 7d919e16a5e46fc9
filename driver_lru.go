package microcache

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDriverBytes is the byte budget of the [DriverLRU] that [New]
// creates when [Config.Driver] is nil: 64 MiB.
const DefaultDriverBytes = 64 << 20

// lruShards is the number of independently locked maps of a DriverLRU. A
// power of two, so a shard is picked with a mask.
const lruShards = 16

// lruRecordOverhead is what one record costs in bytes beyond its key and
// what it holds: the record itself (112 bytes), its slot in a shard's map
// and the rounding of its key's allocation, calibrated with
// runtime.MemStats in memory_test.go (TestMemoryHeapPerObject logs the
// driver's count beside the heap's), so that a byte budget bounds real
// memory.
const lruRecordOverhead = 170

// lruTagOverhead is what a record's membership in a tag costs beyond the
// tag's bytes: its place in the record's list of tags and in the tag's set
// of records (and a share of the set itself), an overestimate.
const lruTagOverhead = 96

// lruOptionsListOverhead is what each name of an Options' Vary or
// VaryQuery list costs beyond its bytes (its string header).
const lruOptionsListOverhead = 16

// DriverLRU is an in-memory [Driver] with limits on the objects and bytes
// it holds. It keeps what is read again and again, and resists scans and
// floods of one-off keys: new records enter a small window, and records
// leaving it are admitted to the main part only if they were requested
// more often lately than the records they would evict (Window TinyLFU; see
// lruPolicy). Every Lookup and Object counts as an access, also for keys
// it does not hold, so a key's frequency is known before it is stored.
//
// A URL's options and the object of its plain variant share one record, so
// a hit costs one map lookup under one shard's read lock, with no other
// lock and no allocation; writes (Store, Purge, PurgeTag) are serialized.
// The byte limit counts keys, header bytes, body capacities, options'
// lists, tags and a fixed per-record overhead; records without objects
// (options of varied or uncacheable URLs) are bounded at twice the object
// limit, and purge marks are kept apart, in a bounded first-in first-out
// list, for at least [MinPurgeMarkRetention] unless newer marks crowd them
// out. Besides, a driver holds a frequency sketch of 18 to 36 bytes per
// object it can hold (by its object limit, or per KiB of its byte limit if
// that is fewer; 9 MiB at most), allocated at creation and not counted by
// Bytes.
//
// DriverLRU is safe for concurrent use. Its methods never return errors.
type DriverLRU struct {
	seed   maphash.Seed
	start  time.Time // the origin of clock
	sketch *lruSketch
	shards [lruShards]lruShard

	// mu serializes writes. A writer holds it while it reads what it
	// checks and while it changes records, maps and the policy; around
	// each change that readers see it also takes the write locks of the
	// shards involved (both of a Store's at once).
	mu       sync.Mutex
	policy   *lruPolicy           // guarded by mu
	tags     map[string]lruTagSet // tag -> URL records stored with it; guarded by mu
	policies [4]*Options          // the policies stored last (see share); guarded by mu
	next     int                  // where share puts the next new policy; guarded by mu
	drop     func(*lruRecord)     // d.evict, bound once
	objects  atomic.Int64         // objects held; written with mu held
	bytes    atomic.Int64         // bytes held; written with mu held
	evicted  atomic.Uint64        // records evicted
}

var (
	_ Driver      = (*DriverLRU)(nil)
	_ DriverUsage = (*DriverLRU)(nil)
)

type lruShard struct {
	mu sync.RWMutex
	m  map[string]*lruRecord // written with DriverLRU.mu held too
	_  [96]byte              // 128 bytes: shards on separate cache lines
}

type lruTagSet = map[*lruRecord]struct{}

// lruRecord is what one key holds: a URL's epoch and options, an object,
// or both; or a purge mark (an epoch alone).
//
// Options are split in two: the epoch, which is the URL's own, and the
// rest (policy), which most URLs of a service share; records with equal
// policies point to one immutable copy (see DriverLRU.share).
type lruRecord struct {
	// Read with the shard's read lock held; written with DriverLRU.mu and
	// the shard's write lock held.
	epoch  uint64
	policy *Options // the options but for Epoch; nil: none stored
	obj    *Object

	// ref is set by reads, without a lock, and cleared by the policy.
	ref atomic.Bool

	// saturated is the sketch generation in which reads found the key
	// saturated (see lruSketch.add); 0 for none. While it lasts, reads
	// skip the sketch: recording their access would change nothing.
	saturated atomic.Uint32

	// The rest is guarded by DriverLRU.mu.
	seg        uint8  // the policy's list holding the record
	marked     bool   // collected as a victim by the walk under way
	purgedAt   uint32 // when a purge last set its epoch (see DriverLRU.clock); 0: never
	key        string
	hash       uint64 // maphash of key with the driver's seed
	size       int64  // bytes counted for the record
	prev, next *lruRecord
	tags       []string // tags of the objects stored for the URL, for PurgeTag
}

// touch records a read of r for the policy. It writes only when the bit
// is not yet set, so hits on a hot record leave its cache line shared.
func (r *lruRecord) touch() {
	if !r.ref.Load() {
		r.ref.Store(true)
	}
}

// recordSize returns the bytes r counts for: its key, the record's
// overhead, its options' lists, its object and its tags.
func recordSize(r *lruRecord) int64 {
	n := int64(len(r.key)) + lruRecordOverhead
	if r.policy != nil {
		// Counted for every record that shares them: an overcount, which
		// keeps the byte limit a bound.
		for _, v := range r.policy.Vary {
			n += int64(len(v)) + lruOptionsListOverhead
		}
		for _, v := range r.policy.VaryQuery {
			n += int64(len(v)) + lruOptionsListOverhead
		}
	}
	if r.obj != nil {
		n += r.obj.storedSize()
	}
	for _, t := range r.tags {
		n += int64(len(t)) + lruTagOverhead
	}
	return n
}

// NewDriverLRU returns a [DriverLRU] holding at most size objects and no
// byte limit. A size below 1 is treated as 1.
func NewDriverLRU(size int) *DriverLRU {
	return NewDriverLRUBytes(size, 0)
}

// NewDriverLRUBytes returns a [DriverLRU] holding at most maxObjects objects
// and at most maxBytes bytes, as [DriverLRU.Bytes] counts them. maxBytes <= 0
// means no byte limit; a maxObjects below 1 is treated as 1. The limits are
// global: any object whose record fits in maxBytes may be held.
func NewDriverLRUBytes(maxObjects int, maxBytes int64) *DriverLRU {
	maxObjects = max(maxObjects, 1)
	maxRecords := 2 * maxObjects
	if maxRecords < 0 {
		maxRecords = maxObjects // overflow: already out of reach
	}
	// The sketch is sized for the records the driver can hold: by its
	// object limit, or by its byte limit for records of 1 KiB and more.
	capacity := maxObjects
	if maxBytes > 0 {
		capacity = int(min(int64(capacity), max(maxBytes/1024, 1)))
	}
	d := &DriverLRU{
		seed:   maphash.MakeSeed(),
		start:  time.Now(),
		sketch: newLRUSketch(capacity),
		tags:   make(map[string]lruTagSet),
	}
	d.policy = newLRUPolicy(maxObjects, maxRecords, min(max(maxObjects, 64), 1<<16), maxBytes, d.sketch)
	d.drop = d.evict
	for i := range d.shards {
		d.shards[i].m = make(map[string]*lruRecord)
	}
	return d
}

func (d *DriverLRU) shard(h uint64) *lruShard { return &d.shards[h&(lruShards-1)] }

// Lookup implements [Driver]. It takes one shard's read lock, does not
// allocate, and does not retain urlKey.
func (d *DriverLRU) Lookup(_ context.Context, urlKey string) (Record, error) {
	h := maphash.String(d.seed, urlKey)
	s := d.shard(h)
	var rec Record
	s.mu.RLock()
	r := s.m[urlKey]
	if r != nil {
		rec.Epoch, rec.Options, rec.Object = r.epoch, r.policy, r.obj
	}
	s.mu.RUnlock()
	d.access(r, h)
	return rec, nil
}

// access records a read of the key hashed to h, held in r (nil: none),
// for the policy: r's ref bit and the key's frequency. For a hot key it
// only reads: the bit is set already and the key is known to be saturated
// in the sketch's generation.
func (d *DriverLRU) access(r *lruRecord, h uint64) {
	if r == nil {
		d.sketch.add(h)
		return
	}
	r.touch()
	gen := d.sketch.gen.Load()
	if r.saturated.Load() != gen && d.sketch.add(h) {
		r.saturated.Store(gen)
	}
}

// Object implements [Driver]. It takes one shard's read lock, does not
// allocate, and does not retain objKey.
func (d *DriverLRU) Object(_ context.Context, objKey string) (*Object, error) {
	h := maphash.String(d.seed, objKey)
	s := d.shard(h)
	var obj *Object
	s.mu.RLock()
	r := s.m[objKey]
	if r != nil {
		obj = r.obj
	}
	s.mu.RUnlock()
	d.access(r, h)
	return obj, nil
}

// find returns the record under key, or nil. d.mu must be held.
func (d *DriverLRU) find(key string) *lruRecord {
	return d.shard(maphash.String(d.seed, key)).m[key]
}

// Store implements [Driver]. A new record goes through the driver's
// admission: it may be dropped at once, in which case Store still reports
// that it stored (the driver may drop any record at any time) and nothing
// else was evicted for it. An object whose record cannot fit in the byte
// limit at all is dropped at once, with what was under its key.
func (d *DriverLRU) Store(_ context.Context, st *Store) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.find(st.URLKey)
	var epoch uint64
	if u != nil {
		epoch = u.epoch
	}
	if epoch != st.Epoch {
		return false, nil
	}
	plain := st.ObjectKey == st.URLKey
	var target *lruRecord // the record holding the object under ObjectKey
	switch {
	case st.ObjectKey == "":
	case plain:
		target = u
	default:
		target = d.find(st.ObjectKey)
	}
	if !st.IfDate.IsZero() && (target == nil || target.obj == nil || !target.obj.Date.Equal(st.IfDate)) {
		return false, nil
	}

	obj, remove := st.Object, st.Delete && st.Object == nil
	if obj != nil && !d.fits(st.ObjectKey, obj, plain, st.Options, u) {
		obj, remove = nil, true
	}
	// Records the store needs are added first, empty: a reader finds in
	// an empty record what it finds under an absent key.
	if u == nil && (st.Options != nil || (plain && obj != nil)) {
		u = d.insert(st.URLKey, segWindow)
	}
	if obj != nil && !plain && target == nil {
		target = d.insert(st.ObjectKey, segWindow)
	}
	if plain {
		target = u
	}
	var policy *Options
	if u != nil && st.Options != nil {
		policy = d.share(u.policy, st.Options)
	}
	dropTarget := remove && target != nil && (!plain || (u.epoch == 0 && u.policy == nil && policy == nil))
	uHad, tHad := u != nil && u.obj != nil, target != nil && target.obj != nil

	// Every change readers can see is made under the write locks of the
	// shards involved, all held at once, so that a Lookup or Object sees
	// all of the store or none of it.
	locks := d.lock(u, target)
	if policy != nil {
		u.policy, u.epoch = policy, st.Options.Epoch
	}
	switch {
	case obj != nil:
		target.obj = obj
	case dropTarget:
		delete(d.shard(target.hash).m, target.key)
	case remove && target != nil:
		target.obj = nil
	}
	locks.unlock()

	if u != nil {
		d.policy.resize(u, recordSize(u), uHad)
	}
	switch {
	case dropTarget:
		d.forget(target)
	case target != nil && target != u:
		d.policy.resize(target, recordSize(target), tHad)
	}
	if u != nil && u.seg == segMarks && (u.policy != nil || u.obj != nil) {
		// A purge mark the store made a record of: it now counts against
		// the limits like any record.
		d.policy.move(u, segWindow)
	}
	if len(st.Tags) > 0 && u != nil && u.seg != segMarks && !(dropTarget && plain) {
		d.tag(u, st.Tags)
	}
	d.settle()
	return true, nil
}

// fits reports whether an object stored under objKey could be held: with
// the record it would share (the URL's, u, when plain) and the options
// stored with it, its record must fit in the byte limit.
func (d *DriverLRU) fits(objKey string, obj *Object, plain bool, opts *Options, u *lruRecord) bool {
	r := lruRecord{key: objKey, obj: obj}
	if plain {
		r.policy = opts
		if u != nil {
			if r.policy == nil {
				r.policy = u.policy
			}
			r.tags = u.tags
		}
	}
	return d.policy.fits(recordSize(&r))
}

// Purge implements [Driver]. It drops the object stored under the URL key;
// those of the URL's other variants stay until evicted, unreachable.
func (d *DriverLRU) Purge(_ context.Context, urlKey string, epoch uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.find(urlKey); r != nil {
		d.purge(r, epoch)
	} else {
		r = d.insert(urlKey, segMarks)
		d.change(r, func(r *lruRecord) { r.epoch = epoch })
	}
	d.settle()
	return nil
}

// purge sets r's epoch to epoch and drops its object. A mark goes back to
// the front of the marks. d.mu must be held.
func (d *DriverLRU) purge(r *lruRecord, epoch uint64) {
	d.change(r, func(r *lruRecord) { r.epoch, r.obj = epoch, nil })
	r.purgedAt = d.clock()
	if r.seg == segMarks {
		d.policy.move(r, segMarks)
	}
}

// clock returns the seconds since the driver was created, plus one (0
// means never). Seconds in 32 bits fit in the record's padding.
func (d *DriverLRU) clock() uint32 { return uint32(time.Since(d.start)/time.Second) + 1 }

// PurgeTag implements [Driver].
func (d *DriverLRU) PurgeTag(_ context.Context, tag string, epoch uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for r := range d.tags[tag] {
		d.untag(r, tag)
		d.purge(r, epoch)
	}
	d.settle()
	return nil
}

// Len implements [Driver]: the number of objects held. It does not block.
func (d *DriverLRU) Len() int { return int(d.objects.Load()) }

// Bytes implements [DriverUsage]: the bytes held, as counted against the
// byte limit. It does not block.
func (d *DriverLRU) Bytes() int64 { return d.bytes.Load() }

// Evictions implements [DriverUsage]: how many records have been dropped
// to respect the limits since the driver was created, new records refused
// admission and purge marks crowded out included.
func (d *DriverLRU) Evictions() uint64 { return d.evicted.Load() }

// insert adds an empty record under key to the map and to the policy's
// list seg, and returns it. d.mu must be held.
func (d *DriverLRU) insert(key string, seg uint8) *lruRecord {
	r := &lruRecord{key: key, hash: maphash.String(d.seed, key)}
	r.size = recordSize(r)
	s := d.shard(r.hash)
	s.mu.Lock()
	s.m[key] = r
	s.mu.Unlock()
	d.policy.insert(r, seg)
	return r
}

// change applies fn to r under its shard's write lock, so that readers see
// all of the change or none, and accounts for it. d.mu must be held.
func (d *DriverLRU) change(r *lruRecord, fn func(*lruRecord)) {
	hadObj := r.obj != nil
	s := d.shard(r.hash)
	s.mu.Lock()
	fn(r)
	s.mu.Unlock()
	d.policy.resize(r, recordSize(r), hadObj)
}

// remove deletes r from the map, the policy and the tags. d.mu must be
// held.
func (d *DriverLRU) remove(r *lruRecord) {
	s := d.shard(r.hash)
	s.mu.Lock()
	delete(s.m, r.key)
	s.mu.Unlock()
	d.forget(r)
}

// forget takes r, deleted from the map, out of the policy and the tags.
// d.mu must be held.
func (d *DriverLRU) forget(r *lruRecord) {
	d.policy.remove(r)
	for _, t := range r.tags {
		d.untagSet(r, t)
	}
	r.tags = nil
}

// lock takes the write locks of the shards of a and b (either may be nil,
// or both the same record) and returns what releases them, as a value (a
// closure would be allocated on every store). d.mu must be held: writers
// take shard locks only under it, so two are taken without a lock order.
func (d *DriverLRU) lock(a, b *lruRecord) shardLocks {
	var l shardLocks
	if a != nil {
		l.a = d.shard(a.hash)
		l.a.mu.Lock()
	}
	if b != nil {
		if l.b = d.shard(b.hash); l.b == l.a {
			l.b = nil
		} else {
			l.b.mu.Lock()
		}
	}
	return l
}

// shardLocks are up to two shards write-locked by lock.
type shardLocks struct{ a, b *lruShard }

// unlock releases them.
func (l shardLocks) unlock() {
	if l.a != nil {
		l.a.mu.Unlock()
	}
	if l.b != nil {
		l.b.mu.Unlock()
	}
}

// evict drops r for the policy's limits. A record purged less than
// MinPurgeMarkRetention ago turns into a purge mark rather than vanish, so
// that a backend call that started before the purge (and read no epoch)
// still fails its Store. d.mu must be held.
func (d *DriverLRU) evict(r *lruRecord) {
	d.evicted.Add(1)
	if r.seg == segMarks || r.purgedAt == 0 || d.clock()-r.purgedAt > uint32(MinPurgeMarkRetention/time.Second) {
		d.remove(r)
		return
	}
	for _, t := range r.tags {
		d.untagSet(r, t)
	}
	d.change(r, func(r *lruRecord) { r.policy, r.obj, r.tags = nil, nil, nil })
	d.policy.move(r, segMarks)
}

// settle brings the driver within its limits after a write and publishes
// its counts. d.mu must be held.
func (d *DriverLRU) settle() {
	d.policy.trimMarks(d.drop)
	d.policy.balance(time.Now(), d.drop)
	d.policy.trimMarks(d.drop)
	c := d.policy.counts()
	d.objects.Store(int64(c.objs))
	d.bytes.Store(c.bytes)
}

// tag adds tags to the URL record u. d.mu must be held.
func (d *DriverLRU) tag(u *lruRecord, tags []string) {
	var added []string
	for _, t := range tags {
		if !slices.Contains(u.tags, t) && !slices.Contains(added, t) {
			added = append(added, t)
		}
	}
	if len(added) == 0 {
		return
	}
	for _, t := range added {
		set := d.tags[t]
		if set == nil {
			set = make(lruTagSet)
			d.tags[t] = set
		}
		set[u] = struct{}{}
	}
	hadObj := u.obj != nil
	u.tags = append(u.tags, added...)
	d.policy.resize(u, recordSize(u), hadObj)
}

// untag removes tag from r. d.mu must be held.
func (d *DriverLRU) untag(r *lruRecord, tag string) {
	d.untagSet(r, tag)
	if i := slices.Index(r.tags, tag); i >= 0 {
		hadObj := r.obj != nil
		r.tags = slices.Delete(r.tags, i, i+1)
		d.policy.resize(r, recordSize(r), hadObj)
	}
}

// untagSet removes r from tag's set, and the set once empty.
func (d *DriverLRU) untagSet(r *lruRecord, tag string) {
	if set := d.tags[tag]; set != nil {
		delete(set, r)
		if len(set) == 0 {
			delete(d.tags, tag)
		}
	}
}

// share returns a pointer to an immutable copy of o's policy (o but for
// its Epoch): cur, or one of the four policies stored last, when equal;
// else a new copy, which replaces the oldest of the four. A service with
// a few distinct policies so keeps one copy of each. d.mu must be held.
func (d *DriverLRU) share(cur, o *Options) *Options {
	if cur != nil && samePolicy(cur, o) {
		return cur
	}
	for _, p := range d.policies {
		if p != nil && samePolicy(p, o) {
			return p
		}
	}
	p := *o
	p.Epoch = 0
	// The caller's slices may change; the copies are capped, so that an
	// append by a reader of the policy copies rather than writes into
	// them.
	p.Vary = slices.Clip(slices.Clone(o.Vary))
	p.VaryQuery = slices.Clip(slices.Clone(o.VaryQuery))
	d.policies[d.next] = &p
	d.next = (d.next + 1) % len(d.policies)
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
