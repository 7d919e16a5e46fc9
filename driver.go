package microcache

import (
	"context"
	"time"
)

// Driver stores what a [Microcache] keeps for each URL: an epoch, the
// URL's [Options] (learned from the backend's most recent response to a
// GET for it) and [Object]s, the stored responses, one per variant.
//
// # Records and keys
//
// A URL is named by its URL key. Its plain variant (the one selected when
// its options vary on nothing) is stored under the URL key itself, beside
// the epoch and the options, so that a hit costs one [Driver.Lookup]. A
// variant selected by request headers or query parameters is stored under
// an object key that is the URL key, a '|', then the variant's values,
// and is read with one more call, [Driver.Object]. The part of a key
// before its first '|' is therefore the same for a URL key and all its
// object keys: a driver may use it to keep a URL's records together (in
// one Redis Cluster slot, say). Keys are opaque strings of at most 8 KiB built by
// the middleware; a driver may hash them (a driver shared by several
// processes must hash them the same way in each). A driver must not retain
// the key strings passed to Lookup and Object after the call returns (they
// may point into a buffer the middleware reuses); it may retain those of
// [Store], Purge and PurgeTag.
//
// # Epochs, compare-and-set, and purges
//
// An epoch is a random non-zero number naming the current generation of a
// URL's objects: an object is served only if its Epoch equals the URL's.
// [Driver.Purge] gives the URL a new epoch in one write, which makes every
// variant unreachable at once. Every write that depends on what was read
// is a [Store], which succeeds only if the URL's epoch is still the one the
// caller read: a purge that lands while the backend runs (or while a
// pass-through relearns the URL's options, or a stale object is recached)
// therefore always wins. A purge of a URL that has no epoch yet must still
// leave one (a purge mark, with no options), so that a concurrent first
// fetch, which read no epoch, fails its Store. A driver keeps a purge mark
// at least as long as a backend call may run ([MinPurgeMarkRetention]).
//
// # Retention
//
// A driver may drop any record at any time (to respect its limits, say):
// a dropped object is a miss; dropped options make the next response for
// the URL create new ones with a new epoch, so the URL's remaining variants
// become unreachable. A driver should keep a URL's options at least as long
// as the objects stored under its epoch, and may drop an object once
// [Object.RetainUntil] has passed.
//
// # Context, errors and concurrency
//
// Implementations must be safe for concurrent use. Every method may return
// an error; the middleware then answers from the backend, stores nothing
// and reports the failure (see [ErrorMonitor]), so a failing driver never
// fails a request. A driver should bound its own calls (a remote one with
// a short deadline of its own) rather than rely on the caller's context:
// the middleware passes the request's context to Lookup and Object, and a
// context detached from the client's cancellation to Store, so that a
// client that leaves never makes a fetched response half-stored. A Store
// is all or nothing: its options, object, deletion and tags are either all
// written or none is, and a concurrent Lookup or Object sees either none
// of it or all of it.
//
// Objects handed to Store and returned by Lookup and Object are shared,
// not copied: neither the driver nor the middleware modifies one after it
// has been stored. The same holds for the slices of the Options a driver
// returns, which it may share between URLs. A driver that keeps bytes
// rather than pointers (Redis, say) encodes records with
// [Object.MarshalBinary] and [Options.MarshalBinary].
//
// Package drivertest checks an implementation against this contract;
// every Driver should pass it.
//
// # Call budget
//
// The middleware makes at most these calls per request: a hit on a plain
// URL, 1 (Lookup); a hit on a varied URL, 2 (Lookup, Object); a miss, 2
// (3 on a varied URL), the Store included; a purge, 1 (plus one for each
// same-origin URL its answer names in Location or Content-Location); a
// pass-through that relearns an uncacheable URL as cacheable (rare), 3
// (Lookup, Purge, Store). A driver that can do each call in one round trip
// (one MGET, one script) keeps a remote store's cost to that many round
// trips.
type Driver interface {
	// Lookup returns the URL's record: its epoch, its options and the
	// object stored under the URL key. It must not retain urlKey.
	Lookup(ctx context.Context, urlKey string) (Record, error)

	// Object returns the object stored under objKey, a variant's key, or
	// nil when there is none. It must not retain objKey.
	Object(ctx context.Context, objKey string) (*Object, error)

	// Store writes s if, and only if, its conditions hold (see [Store]),
	// in one atomic step. stored is false, with a nil error, when a
	// condition failed; then nothing was written.
	Store(ctx context.Context, s *Store) (stored bool, err error)

	// Purge sets the URL's epoch to epoch (non-zero, fresh), whatever it
	// was, keeping its options. If the URL has no record, it creates a
	// purge mark holding only the epoch. It is one write, never a read
	// followed by a write. The driver may drop the URL's objects.
	Purge(ctx context.Context, urlKey string, epoch uint64) error

	// PurgeTag purges, as Purge does with the same epoch, every URL whose
	// successful Store carried tag (see [Store.Tags]) since the tag was
	// last purged, and forgets the tag: a URL tagged before is not purged
	// by a later PurgeTag unless it was tagged again. Purging a tag no URL
	// carries does nothing.
	PurgeTag(ctx context.Context, tag string, epoch uint64) error

	// Len returns the number of objects held, or -1 when the driver
	// cannot tell without blocking (a remote driver counts only what it
	// holds locally, or returns -1). It must not block on I/O.
	Len() int
}

// MinPurgeMarkRetention is how long a [Driver] keeps a purge mark (the
// epoch [Driver.Purge] leaves on a URL that had no record) at least,
// unless more recent purge marks crowd it out of a bounded store.
const MinPurgeMarkRetention = time.Minute

// Record is what a [Driver] holds for one URL, as returned by
// [Driver.Lookup].
type Record struct {
	// Epoch is the URL's current epoch; 0 when the URL has none (no
	// options and no purge mark).
	Epoch uint64

	// Options are the URL's options, or nil when it has none. They carry
	// no epoch (Options.Epoch is 0: the URL's epoch is Epoch), so that a
	// driver may return one copy for every URL whose options are alike.
	// They are shared with the driver: the caller must not modify them,
	// nor the driver once it returned them.
	Options *Options

	// Object is the object stored under the URL key (the plain variant),
	// or nil. Its Epoch may differ from the URL's: then it was purged and
	// must not be served.
	Object *Object
}

// Store is one conditional write to the records of one URL: what the
// middleware learned from a backend response (options and an object), a
// relearning of options from a pass-through response, or a stale object
// stored again (stale recache).
//
// It is written only if the URL's epoch is still Epoch; with a non-zero
// IfDate, only if moreover the object under ObjectKey has a Date that is
// the same instant ([time.Time.Equal]). A driver does each Store in one
// atomic step (under one lock, in one script), so no purge can land
// between the check and the write. Deleting an absent object, or storing
// an object already past its RetainUntil, is a successful Store.
type Store struct {
	// URLKey names the URL.
	URLKey string

	// Epoch is the URL's epoch as the caller read it ([Record.Epoch]); 0
	// when it had none, in which case the store succeeds only if the URL
	// still has none, and Options must be set (they create its epoch).
	Epoch uint64

	// Options, when not nil, replace the URL's options. Options.Epoch is
	// the URL's epoch after the store: Epoch, or a new non-zero epoch when
	// Epoch is 0 (the store then creates the URL's record).
	Options *Options

	// ObjectKey is the key Object is stored under, or Delete deletes:
	// URLKey for the plain variant, else a variant's key. Empty when the
	// store concerns no object.
	ObjectKey string

	// Object, when not nil, is stored under ObjectKey, replacing what was
	// there. Its Epoch is the URL's epoch after the store.
	Object *Object

	// Delete, when Object is nil, removes the object under ObjectKey.
	Delete bool

	// IfDate, when not zero, is a further condition: the object now under
	// ObjectKey exists and its Date equals IfDate. A stale object stored
	// again sets it, so that it never replaces a newer response.
	IfDate time.Time

	// Tags name the object for [Driver.PurgeTag]: purging any of them
	// purges the URL (every variant: tags are kept per URL). They count
	// against the driver's limits.
	Tags []string
}

// DriverUsage is implemented by a [Driver] that can tell how much it holds;
// [DriverLRU] does. A [Monitor] then receives the figures in [Stats].
type DriverUsage interface {
	// Bytes returns the bytes currently held.
	Bytes() int64
	// Evictions returns the number of records evicted since the driver was
	// created.
	Evictions() uint64
}

// DriverLeaser is implemented by a [Driver] shared by several processes
// that can elect one of them to fetch an object while the others wait, so
// that concurrent misses across a fleet make one backend call (collapsed
// forwarding beyond one process). The middleware uses it, when present, on
// misses that collapse (the others wait, bounded by the lease's time to
// live, then look the object up again once, and fetch it themselves if it
// is still missing) and on background refreshes (only the holder
// refreshes). The lease's time to live is [Config.Timeout], or
// [DefaultLeaseTTL] without one.
type DriverLeaser interface {
	Driver

	// Lease tries to take the fetch lease on objKey for at most ttl. When
	// held is true the caller fetches and must call release once its
	// Store is done or has failed; release is safe to call more than once.
	// When held is false another process holds the lease: the caller may
	// [DriverLeaser.Wait] and look the object up again.
	Lease(ctx context.Context, objKey string, ttl time.Duration) (release func(), held bool, err error)

	// Wait blocks until the lease on objKey is released or has expired,
	// or ctx is done, whichever comes first. It returns ctx's error in the
	// last case.
	Wait(ctx context.Context, objKey string) error
}

// PurgeEvent is a purge made by another process sharing a [Driver]: of
// one URL (URLKey set) or of one tag (Tag set), with the epoch it set.
type PurgeEvent struct {
	URLKey string
	Tag    string
	Epoch  uint64
}

// DriverPurgeWatcher is implemented by a [Driver] shared by several
// processes that can tell one process of the purges made by the others, so
// that a process's local copies (a two-tier driver's in-process tier in
// front of the shared store) are dropped at once rather than when they
// expire.
type DriverPurgeWatcher interface {
	Driver

	// WatchPurges calls fn for each purge made elsewhere, from one
	// goroutine, until stop is called. Events lost (to a reconnect, say)
	// are not replayed: a watcher bounds how long it trusts a local copy.
	WatchPurges(fn func(PurgeEvent)) (stop func())
}
