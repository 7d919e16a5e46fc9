package microcache

import (
	"math"
	"time"
)

// lruPolicy decides which records a [DriverLRU] keeps: Window TinyLFU
// (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache
// Admission Policy", 2017). New records enter a small window (about 1%
// of the limits), which lets a burst of accesses to a new key hit. The
// window's oldest record then becomes a candidate for the main part, a segmented LRU (probation, then protected once read again),
// and is admitted only if the sketch estimates it was accessed more often
// than the records it would evict; else it is dropped, and evicts nothing.
// One-off keys therefore pass through the window without displacing the
// records that are read again and again.
//
// Reads do not move records: they set the record's ref bit, without a
// lock, and the policy applies it when it meets the record at the end of a
// list of the main part (a second chance): a probation record is promoted
// to protected, a protected one goes back to protected's front. The window
// is first in, first out: giving its records a second chance there would
// put the records read in a burst ahead of the newest, which the window is
// for; a record read in the window keeps its bit into probation instead.
//
// Purge marks live in a fourth list, a FIFO of bounded length outside the
// main part, so that a flood of records never crowds one out; only newer
// marks do.
//
// An lruPolicy is not safe for concurrent use: its owner serializes the
// calls (DriverLRU's write mutex). Only the records' ref bits are set
// concurrently.
type lruPolicy struct {
	lists  [lruSegments]lruList
	total  lruCounts // limits on window, probation and protected together
	window lruCounts // the window's share of total
	prot   lruCounts // protected's share of what the window leaves
	marks  lruCounts // limits on the marks list
	sketch *lruSketch
	vbuf   []*lruRecord // victims' buffer, reused
}

// Segments of the policy: a record's seg says which list holds it.
const (
	segWindow uint8 = iota
	segProbation
	segProtected
	segMarks
	lruSegments
)

// lruCounts counts records (recs), records holding an object (objs), and
// the bytes they are counted for; as a limit, the largest allowed.
type lruCounts struct {
	recs, objs int
	bytes      int64
}

func (c lruCounts) exceeds(limit lruCounts) bool {
	return c.recs > limit.recs || c.objs > limit.objs || c.bytes > limit.bytes
}

func (c *lruCounts) add(r *lruRecord, sign int) {
	c.recs += sign
	if r.obj != nil {
		c.objs += sign
	}
	c.bytes += int64(sign) * r.size
}

// lruList is a doubly linked list of records around a sentinel, with the
// counts of what it holds. Its zero value is not usable: see init.
type lruList struct {
	root lruRecord
	n    lruCounts
}

func (l *lruList) init()            { l.root.next, l.root.prev = &l.root, &l.root }
func (l *lruList) back() *lruRecord { return l.end(l.root.prev) }
func (l *lruList) end(r *lruRecord) *lruRecord {
	if r == &l.root {
		return nil
	}
	return r
}

func (l *lruList) pushFront(r *lruRecord) {
	r.prev, r.next = &l.root, l.root.next
	r.prev.next, r.next.prev = r, r
	l.n.add(r, 1)
}

func (l *lruList) unlink(r *lruRecord) {
	r.prev.next, r.next.prev = r.next, r.prev
	r.prev, r.next = nil, nil
	l.n.add(r, -1)
}

// newLRUPolicy returns a policy for at most maxObjects objects, maxRecords
// records and maxBytes bytes (records and marks together; 0: no byte
// limit), and at most maxMarks purge marks, using sketch for admission.
func newLRUPolicy(maxObjects, maxRecords, maxMarks int, maxBytes int64, sketch *lruSketch) *lruPolicy {
	p := &lruPolicy{sketch: sketch}
	for i := range p.lists {
		p.lists[i].init()
	}
	if maxBytes <= 0 {
		maxBytes = math.MaxInt64
	}
	p.total = lruCounts{recs: maxRecords, objs: maxObjects, bytes: maxBytes}
	// The window holds 1% of each limit, at least one object once the
	// cache holds two: a cache of one object admits by frequency alone.
	w := lruCounts{recs: maxRecords / 100, objs: maxObjects / 100, bytes: maxBytes / 100}
	if maxObjects >= 2 {
		w.objs, w.recs = max(w.objs, 1), max(w.recs, 2)
	}
	p.window = w
	// Protected holds at most 80% of the main part, so that probation keeps
	// room to judge newcomers by.
	p.prot = lruCounts{
		recs:  (maxRecords - w.recs) / 5 * 4,
		objs:  (maxObjects - w.objs) / 5 * 4,
		bytes: (maxBytes - w.bytes) / 5 * 4,
	}
	if maxBytes == math.MaxInt64 {
		p.window.bytes, p.prot.bytes = maxBytes, maxBytes // no byte limit
	}
	// Marks may take a quarter of the bytes, so that records keep the rest.
	p.marks = lruCounts{recs: maxMarks, objs: 0, bytes: maxBytes / 4}
	return p
}

// counts returns what the window, probation and protected hold together,
// with the bytes of the marks.
func (p *lruPolicy) counts() lruCounts {
	var c lruCounts
	for i := range p.lists {
		c.recs += p.lists[i].n.recs
		c.objs += p.lists[i].n.objs
		c.bytes += p.lists[i].n.bytes
	}
	c.recs -= p.lists[segMarks].n.recs
	return c
}

// fits reports whether a record of size bytes could be held at all, given
// the marks held now.
func (p *lruPolicy) fits(size int64) bool {
	return size <= p.total.bytes-p.lists[segMarks].n.bytes
}

// insert adds a new record to the front of list seg.
func (p *lruPolicy) insert(r *lruRecord, seg uint8) {
	r.seg = seg
	p.lists[seg].pushFront(r)
}

// remove takes r out of the policy.
func (p *lruPolicy) remove(r *lruRecord) { p.lists[r.seg].unlink(r) }

// move takes r to the front of list seg.
func (p *lruPolicy) move(r *lruRecord, seg uint8) {
	p.lists[r.seg].unlink(r)
	p.insert(r, seg)
}

// resize accounts for a change of r's size or of whether it holds an
// object: size is its new size, hadObj whether it held one before.
func (p *lruPolicy) resize(r *lruRecord, size int64, hadObj bool) {
	n := &p.lists[r.seg].n
	n.bytes += size - r.size
	r.size = size
	if has := r.obj != nil; has != hadObj {
		if has {
			n.objs++
		} else {
			n.objs--
		}
	}
}

// trimMarks drops the oldest marks while there are more than the marks'
// limits allow.
func (p *lruPolicy) trimMarks(drop func(*lruRecord)) {
	for p.lists[segMarks].n.exceeds(p.marks) {
		drop(p.lists[segMarks].back())
	}
}

// balance brings the policy back within its limits after a write: the
// window's overflow moves to probation while there is room, else faces
// admission; records of the main part are evicted while the whole is
// over its limits. drop must take the record out of the policy (remove)
// and of the driver; balance calls it for each record evicted. now is
// compared with objects' RetainUntil.
func (p *lruPolicy) balance(now time.Time, drop func(*lruRecord)) {
	win := &p.lists[segWindow]
	for {
		over := p.counts().exceeds(p.total)
		if c := win.back(); c != nil && win.n.exceeds(p.window) {
			if !over {
				p.move(c, segProbation)
				continue
			}
			victims, ok := p.victims(c)
			for _, v := range victims {
				v.marked = false
			}
			if ok && p.admit(c, victims, now) {
				for _, v := range victims {
					drop(v)
				}
				p.move(c, segProbation)
			} else {
				drop(c)
			}
			clear(victims) // the buffer is reused: keep no evicted record alive
			continue
		}
		if !over {
			return
		}
		v := p.victim()
		if v == nil {
			return
		}
		drop(v)
	}
}

// victims returns the records of the main part, in eviction order, that
// would make room for candidate c, which is in the window; ok is false
// when evicting all of them would not. Records read since the policy last
// met them are given their second chance on the way; as that moves them
// to the front of protected (or of probation, when demoted), each list is
// walked twice, so that they are met again with their bit cleared. The
// records returned are marked while the walk lasts, to be met once only;
// the caller unmarks them.
func (p *lruPolicy) victims(c *lruRecord) (vs []*lruRecord, ok bool) {
	vs = p.vbuf[:0]
	defer func() { p.vbuf = vs[:0] }()
	need := p.counts()
	need.recs -= p.total.recs
	need.objs -= p.total.objs
	need.bytes -= p.total.bytes
	for _, seg := range [4]uint8{segProbation, segProtected, segProbation, segProtected} {
		l := &p.lists[seg]
		for r := l.back(); r != nil; {
			prev := l.end(r.prev)
			switch {
			case r.marked:
			case r.ref.Load():
				p.secondChance(r)
			case need.recs <= 0 && need.bytes <= 0 && r.obj == nil:
				// Only objects are over their limit, and r holds none:
				// evicting it would not help.
			default:
				r.marked = true
				vs = append(vs, r)
				need.recs--
				if r.obj != nil {
					need.objs--
				}
				need.bytes -= r.size
				if need.recs <= 0 && need.objs <= 0 && need.bytes <= 0 {
					return vs, true
				}
			}
			r = prev
		}
	}
	return vs, false
}

// victim returns the record to evict next when the window is within its
// share: the main part's least recently used, or the window's when the
// main part is empty.
func (p *lruPolicy) victim() *lruRecord {
	for _, seg := range [2]uint8{segProbation, segProtected} {
		l := &p.lists[seg]
		for r := l.back(); r != nil; r = l.back() {
			if !r.ref.Load() {
				return r
			}
			p.secondChance(r) // clears the bit: the loop ends
		}
	}
	return p.lists[segWindow].back()
}

// secondChance clears r's ref bit and moves it to the front of protected
// (a probation record read again is promoted), demoting protected's least
// recently used records to probation while protected is over its share.
func (p *lruPolicy) secondChance(r *lruRecord) {
	r.ref.Store(false)
	p.move(r, segProtected)
	prot := &p.lists[segProtected]
	for prot.n.exceeds(p.prot) && prot.back() != r {
		p.move(prot.back(), segProbation)
	}
}

// admit reports whether candidate c should replace victims: whether the
// sketch estimates c was accessed more often than each victim that can
// still be served. Victims past their RetainUntil lose without a contest.
func (p *lruPolicy) admit(c *lruRecord, victims []*lruRecord, now time.Time) bool {
	freq := p.sketch.estimate(c.hash)
	for _, v := range victims {
		if v.obj != nil && now.After(v.obj.RetainUntil()) {
			continue
		}
		if p.sketch.estimate(v.hash) >= freq {
			return false
		}
	}
	return true
}
