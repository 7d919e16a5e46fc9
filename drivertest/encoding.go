package drivertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/httpimp/microcache"
)

// EncodingDriver is an in-memory [microcache.Driver] for tests that
// behaves like a remote store: it keeps every record only as the bytes of
// [microcache.Options.MarshalBinary] and [microcache.Object.MarshalBinary]
// and decodes them on every read, so what a caller gets back is never the
// value it stored but an equal copy. It counts the calls made to each
// method (see [EncodingDriver.Calls]) and can be made to fail (see
// Fail), so that tests can check the middleware's call budget and its
// handling of driver errors.
//
// It never evicts: it holds every record until it is deleted, and drops an
// object only when a read finds its [microcache.Object.RetainUntil] past
// (on time.Now, so on the fake clock inside a testing/synctest bubble).
// Purge keeps the URL's objects, so reads return objects of purged epochs,
// which callers must reject.
//
// Each method holds one mutex for its whole call, so every Store is atomic
// and every Lookup sees the record as one Store or Purge left it.
//
// EncodingDriver also checks the caller's side of the contract, and fails
// a call that breaks it with an error (matching errors.Is(err,
// [ErrMisuse])) without writing anything: a Store whose Options.Epoch is
// 0, or differs from a non-zero Store.Epoch; a Store with Epoch 0 that
// stores an object without creating the URL's options; a stored Object
// whose Epoch is not the URL's epoch after the store; an Object without
// an ObjectKey; an object that [microcache.Object.MarshalBinary] rejects;
// a Purge or PurgeTag with epoch 0.
//
// The zero value is an empty driver ready to use. An EncodingDriver is
// safe for concurrent use, except that Fail must not be changed while a
// method may be running.
type EncodingDriver struct {
	// Fail, when not nil, is called with the method's name ("Lookup",
	// "Object", "Store", "Purge" or "PurgeTag") at the start of every call
	// to that method. When it returns an error, the method returns that
	// error at once and does nothing else (a failed Store writes nothing).
	// Len never calls it. Fail may be called from several goroutines at
	// once.
	Fail func(op string) error

	lookups, objectCalls, stores, purges, purgeTags atomic.Int64

	mu      sync.Mutex
	urls    map[string]*encodedURL     // by URL key; guarded by mu, made on first write
	objects map[string][]byte          // encoded objects by object key; guarded by mu, made on first write
	tags    map[string]map[string]bool // URL keys by tag; guarded by mu, made on first write
}

// encodedURL is what an EncodingDriver holds for one URL: its epoch and
// its encoded options, or nil options for a purge mark.
type encodedURL struct {
	epoch   uint64
	options []byte
}

var _ microcache.Driver = (*EncodingDriver)(nil)

// ErrMisuse is wrapped by the errors an [EncodingDriver] returns for calls
// that break the caller's side of the [microcache.Driver] contract.
var ErrMisuse = errors.New("drivertest: driver contract broken by the caller")

// NewEncodingDriver returns an empty [EncodingDriver], as new does.
func NewEncodingDriver() *EncodingDriver { return new(EncodingDriver) }

// init makes the maps before a write. The caller holds d.mu.
func (d *EncodingDriver) init() {
	if d.urls == nil {
		d.urls = make(map[string]*encodedURL)
		d.objects = make(map[string][]byte)
		d.tags = make(map[string]map[string]bool)
	}
}

// Calls is the number of calls made to each method of an
// [EncodingDriver], failed ones included.
type Calls struct {
	Lookup, Object, Store, Purge, PurgeTag int64
}

// Calls returns the number of calls made to each method since the driver
// was created or [EncodingDriver.ResetCalls] was last called. Calls that
// run concurrently with it may or may not be counted.
func (d *EncodingDriver) Calls() Calls {
	return Calls{
		Lookup:   d.lookups.Load(),
		Object:   d.objectCalls.Load(),
		Store:    d.stores.Load(),
		Purge:    d.purges.Load(),
		PurgeTag: d.purgeTags.Load(),
	}
}

// ResetCalls sets every count that [EncodingDriver.Calls] returns to 0.
func (d *EncodingDriver) ResetCalls() {
	d.lookups.Store(0)
	d.objectCalls.Store(0)
	d.stores.Store(0)
	d.purges.Store(0)
	d.purgeTags.Store(0)
}

func (d *EncodingDriver) fail(op string) error {
	if d.Fail == nil {
		return nil
	}
	return d.Fail(op)
}

func misuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMisuse}, args...)...)
}

// Lookup implements [microcache.Driver].
func (d *EncodingDriver) Lookup(_ context.Context, urlKey string) (microcache.Record, error) {
	d.lookups.Add(1)
	if err := d.fail("Lookup"); err != nil {
		return microcache.Record{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var r microcache.Record
	if u := d.urls[urlKey]; u != nil {
		r.Epoch = u.epoch
		if u.options != nil {
			r.Options = new(microcache.Options)
			if err := r.Options.UnmarshalBinary(u.options); err != nil {
				return microcache.Record{}, err
			}
			r.Options.Epoch = 0 // the options' epoch when stored; the URL's is r.Epoch
		}
	}
	obj, err := d.object(urlKey)
	if err != nil {
		return microcache.Record{}, err
	}
	r.Object = obj
	return r, nil
}

// Object implements [microcache.Driver].
func (d *EncodingDriver) Object(_ context.Context, objKey string) (*microcache.Object, error) {
	d.objectCalls.Add(1)
	if err := d.fail("Object"); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.object(objKey)
}

// object decodes the object under key, dropping it if it has expired. The
// caller holds d.mu.
func (d *EncodingDriver) object(key string) (*microcache.Object, error) {
	b, ok := d.objects[key]
	if !ok {
		return nil, nil
	}
	o := new(microcache.Object)
	if err := o.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	if o.RetainUntil().Before(time.Now()) {
		delete(d.objects, key)
		return nil, nil
	}
	return o, nil
}

// Store implements [microcache.Driver].
func (d *EncodingDriver) Store(_ context.Context, s *microcache.Store) (bool, error) {
	d.stores.Add(1)
	if err := d.fail("Store"); err != nil {
		return false, err
	}
	// Check and encode everything first, so that nothing is written unless
	// everything can be.
	after := s.Epoch // the URL's epoch after the store
	var opts []byte
	if s.Options != nil {
		switch {
		case s.Options.Epoch == 0:
			return false, misuse("Store of %q with Options.Epoch 0", s.URLKey)
		case s.Epoch != 0 && s.Options.Epoch != s.Epoch:
			return false, misuse("Store of %q with Epoch %d but Options.Epoch %d", s.URLKey, s.Epoch, s.Options.Epoch)
		}
		after = s.Options.Epoch
		opts, _ = s.Options.MarshalBinary() // never fails
	}
	var obj []byte
	if s.Object != nil {
		switch {
		case s.ObjectKey == "":
			return false, misuse("Store of %q with an Object but no ObjectKey", s.URLKey)
		case after == 0:
			return false, misuse("Store of an object under %q with Epoch 0 and no Options", s.ObjectKey)
		case s.Object.Epoch != after:
			return false, misuse("Store of an object under %q with Epoch %d in URL epoch %d", s.ObjectKey, s.Object.Epoch, after)
		}
		var err error
		if obj, err = s.Object.MarshalBinary(); err != nil {
			return false, misuse("Store of an object under %q: %v", s.ObjectKey, err)
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	var cur uint64
	if u := d.urls[s.URLKey]; u != nil {
		cur = u.epoch
	}
	if cur != s.Epoch {
		return false, nil
	}
	if !s.IfDate.IsZero() {
		o, err := d.object(s.ObjectKey)
		if err != nil {
			return false, err
		}
		if o == nil || !o.Date.Equal(s.IfDate) {
			return false, nil
		}
	}
	if opts != nil {
		d.urls[s.URLKey] = &encodedURL{epoch: after, options: opts}
	}
	switch {
	case obj != nil:
		d.objects[s.ObjectKey] = obj
	case s.Delete && s.ObjectKey != "":
		delete(d.objects, s.ObjectKey)
	}
	for _, tag := range s.Tags {
		urls := d.tags[tag]
		if urls == nil {
			urls = make(map[string]bool)
			d.tags[tag] = urls
		}
		urls[s.URLKey] = true
	}
	return true, nil
}

// Purge implements [microcache.Driver]. It keeps the URL's objects.
func (d *EncodingDriver) Purge(_ context.Context, urlKey string, epoch uint64) error {
	d.purges.Add(1)
	if err := d.fail("Purge"); err != nil {
		return err
	}
	if epoch == 0 {
		return misuse("Purge of %q with epoch 0", urlKey)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purge(urlKey, epoch)
	return nil
}

// purge sets the epoch of urlKey. The caller holds d.mu.
func (d *EncodingDriver) purge(urlKey string, epoch uint64) {
	d.init()
	if u := d.urls[urlKey]; u != nil {
		u.epoch = epoch
		return
	}
	d.urls[urlKey] = &encodedURL{epoch: epoch}
}

// PurgeTag implements [microcache.Driver].
func (d *EncodingDriver) PurgeTag(_ context.Context, tag string, epoch uint64) error {
	d.purgeTags.Add(1)
	if err := d.fail("PurgeTag"); err != nil {
		return err
	}
	if epoch == 0 {
		return misuse("PurgeTag of %q with epoch 0", tag)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for urlKey := range d.tags[tag] {
		d.purge(urlKey, epoch)
	}
	delete(d.tags, tag)
	return nil
}

// Len implements [microcache.Driver]: it returns the number of objects
// held, expired ones included until a read drops them.
func (d *EncodingDriver) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.objects)
}
