package microcache_test

import (
	"context"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/httpimp/microcache"
)

// plainLRU is a baseline Driver for the hit-ratio benchmarks: one strict
// LRU of records under one mutex, every record counted against the limit,
// no admission. Tags are ignored. It is what DriverLRU's policy is
// measured against, not a driver to use.
type plainLRU struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, *plainRecord]
}

type plainRecord struct {
	epoch uint64
	opts  *microcache.Options
	obj   *microcache.Object
}

var _ microcache.Driver = (*plainLRU)(nil)

func newPlainLRU(size int) *plainLRU {
	l, err := simplelru.NewLRU[string, *plainRecord](size, nil)
	if err != nil {
		panic(err)
	}
	return &plainLRU{lru: l}
}

func (d *plainLRU) Lookup(_ context.Context, urlKey string) (microcache.Record, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var rec microcache.Record
	if r, ok := d.lru.Get(urlKey); ok {
		rec.Epoch, rec.Object = r.epoch, r.obj
		if r.opts != nil {
			rec.Options = r.opts
		}
	}
	return rec, nil
}

func (d *plainLRU) Object(_ context.Context, objKey string) (*microcache.Object, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.lru.Get(objKey); ok {
		return r.obj, nil
	}
	return nil, nil
}

func (d *plainLRU) Store(_ context.Context, s *microcache.Store) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, _ := d.lru.Peek(s.URLKey)
	var epoch uint64
	if u != nil {
		epoch = u.epoch
	}
	if epoch != s.Epoch {
		return false, nil
	}
	var target *plainRecord
	if s.ObjectKey != "" {
		target, _ = d.lru.Peek(s.ObjectKey)
	}
	if !s.IfDate.IsZero() && (target == nil || target.obj == nil || !target.obj.Date.Equal(s.IfDate)) {
		return false, nil
	}
	if s.Options != nil {
		o := *s.Options
		if u == nil {
			u = &plainRecord{}
		}
		u.epoch, u.opts = o.Epoch, &o
		d.lru.Add(s.URLKey, u)
	}
	switch {
	case s.ObjectKey == "":
	case s.Object != nil && s.ObjectKey == s.URLKey && u != nil:
		u.obj = s.Object
		d.lru.Add(s.URLKey, u)
	case s.Object != nil:
		d.lru.Add(s.ObjectKey, &plainRecord{obj: s.Object})
	case s.Delete && target != nil:
		if target == u {
			u.obj = nil
		} else {
			d.lru.Remove(s.ObjectKey)
		}
	}
	return true, nil
}

func (d *plainLRU) Purge(_ context.Context, urlKey string, epoch uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.lru.Peek(urlKey); ok {
		r.epoch, r.obj = epoch, nil
		if r.opts != nil {
			o := *r.opts
			o.Epoch = epoch
			r.opts = &o
		}
		return nil
	}
	d.lru.Add(urlKey, &plainRecord{epoch: epoch})
	return nil
}

func (d *plainLRU) PurgeTag(context.Context, string, uint64) error { return nil }

func (d *plainLRU) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lru.Len()
}
