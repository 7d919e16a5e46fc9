// Package redisdriver is a shared tier for microcache: a
// [microcache.Driver] that keeps an in-process [microcache.DriverLRU]
// (L1) in front of a Redis or Valkey server (L2) shared by every replica
// of a service, so that the replicas share stored responses, purges and
// backend calls.
//
// # Tiers
//
// L1 holds decoded objects: a hit on it costs no network. L2 holds every
// record as bytes ([microcache.Options.MarshalBinary],
// [microcache.Object.MarshalBinary]) under hashed keys, each with a
// millisecond time to live ([microcache.Object.RetainUntil] for objects;
// a URL's epoch and options live at least as long as its objects, and at
// least [Options.RecordTTL]). A lookup that L1 cannot answer is one round
// trip to L2 (one MGET of the URL's epoch, options and plain object; for
// an object of 32 KiB or more that L1 already holds, one script that
// answers "unchanged" rather than the bytes), a Store is one (a script
// that compares the URL's epoch and writes everything), a Purge is one (a
// script that sets the epoch and publishes the purge). Objects whose
// encoding is larger than [Options.MaxObjectBytes] are kept in the L1 of
// the replica that fetched them only.
//
// L2 decides: a Store succeeds only if L2's epoch is the caller's, and L1
// then mirrors what L2 holds. L1 answers a lookup alone only when it
// holds a fresh object (or options that need none: uncacheable, or
// varied), and only for [Options.MaxOptionsAge] after L2 last confirmed
// the record, and only while the purge subscription is in place; anything
// that would be a miss or a stale answer is read from L2 first, where
// another replica may have stored a fresh object. A purge made by any
// replica reaches every other replica's L1 by pub/sub, in milliseconds; a
// purge message lost without the subscription noticing is bounded by
// MaxOptionsAge (after a reconnect, every L1 record is read from L2
// again). A GET sent to another replica in the first milliseconds after a
// purge's answer may still get the old object from that replica's L1.
//
// # Fleet-wide collapsed forwarding
//
// Driver implements [microcache.DriverLeaser]: a lease is a key set with
// SET NX PX holding a random token (by a script that refuses the lease
// when the object changed since this process read it: another process
// fetched it meanwhile), released by a script that deletes it
// only if it still holds that token and publishes the release, which
// wakes the waiting replicas at once (they also poll every
// [Options.LeasePoll]). A dead leaseholder's lease expires with its time
// to live.
//
// # Faults
//
// Every Redis call is bounded by [Options.OpTimeout], whatever the
// client's own timeouts (with a client that does not end calls at their
// context's deadline, each call runs on a goroutine of its own that the
// driver stops waiting for). [Options.BreakerFailures] failures in a row
// (timeouts or connection errors; error replies such as OOM do not count)
// open a circuit breaker: the driver then works from L1 alone, with no
// network call on the request path, and probes the server in the
// background every [Options.BreakerCooldown]; when it answers, purges
// made meanwhile are written to it, L1's records are read from L2 again,
// and the breaker closes. Errors are returned to the middleware, which
// counts them (Stats.CacheErrors, ErrorDriver events):
//
//   - Lookup and Object return L2's error when it fails, so that the
//     request is answered from the backend; a record that does not decode
//     is reported as an error wrapping [microcache.ErrCorrupt], and
//     deleted from L2 so that the next request stores a good one.
//   - Store returns L2's error and writes nothing, not even to L1 (L2
//     must decide the compare-and-set while it may be up).
//   - Purge and PurgeTag always purge L1; they return an error when L2
//     could not be purged, including while the breaker is open (the purge
//     is then written to L2 in the background, once it answers, if not
//     more than [Options.MaxPendingPurges] are pending).
//   - While the breaker is open, Lookup, Object and Store use L1 alone and
//     return no errors, and Lease always grants the lease (each replica
//     then fetches for itself).
//   - A lease release that fails is not reported: the lease expires.
//
// Configure the client with short timeouts and no retries too (for
// go-redis: ReadTimeout, WriteTimeout, DialTimeout and PoolTimeout of a
// few hundred milliseconds, ContextTimeoutEnabled, MaxRetries -1): calls
// the driver stopped waiting for hold a connection until the client's own
// timeout ends them.
//
// # Redis Cluster
//
// All of a URL's records share a slot (see the key layout in keys.go), so
// lookups, stores and purges are each one atomic step on a Cluster too.
// Tags cannot be: a tag's key is in another slot than its URLs. With a
// *redis.ClusterClient, a Store adds its tags after the store, each with a
// call of its own (a failure is counted in [Stats].TagErrors, not
// returned), and PurgeTag reads the tag, purges its URLs one by one, then
// deletes it: a URL tagged while a PurgeTag runs may be missed by it.
package redisdriver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/httpimp/microcache"
	"github.com/redis/go-redis/v9"
)

// Options configure a [Driver]. The zero value of each field selects its
// default.
type Options struct {
	// Prefix starts every key and channel name, so that several caches can
	// share one server. Default "microcache:". It must not contain '{' or
	// '}', which would change the keys' Cluster hash tags.
	Prefix string

	// L1Objects and L1Bytes bound L1 (see [microcache.NewDriverLRUBytes]).
	// Defaults 10000 objects and 64 MiB.
	L1Objects int
	L1Bytes   int64

	// MaxObjectBytes is the largest encoded object stored in L2; larger
	// ones are kept in L1 only (a large value stalls every other request
	// on its connection). Default 1 MiB; negative: no object is stored
	// in L2 (replicas then share epochs, options, purges and leases only).
	MaxObjectBytes int

	// OpTimeout bounds every Redis call. Default 100ms.
	OpTimeout time.Duration

	// MaxOptionsAge is how long L1's copy of a URL's record (its epoch and
	// options, and its objects) is served without reading L2 again: the
	// bound on a purge whose message was lost. Default 1s.
	MaxOptionsAge time.Duration

	// RecordTTL is the least time to live of a URL's epoch and options in
	// L2 (they live at least as long as its objects). Default 10 minutes;
	// never less than [microcache.MinPurgeMarkRetention].
	RecordTTL time.Duration

	// BreakerFailures is how many failed calls in a row open the circuit
	// breaker. Default 3.
	BreakerFailures int

	// BreakerCooldown is how often the server is probed while the breaker
	// is open, and how long the purge subscription waits before
	// reconnecting. Default 500ms.
	BreakerCooldown time.Duration

	// LeasePoll is how often a process waiting for another's fetch lease
	// checks whether it was released, in case the release message was
	// lost. Default 50ms.
	LeasePoll time.Duration

	// MaxPendingPurges bounds the purges kept, while the breaker is open,
	// to be written to L2 when it comes back. Default 10000.
	MaxPendingPurges int
}

func (o Options) normalized() Options {
	if o.Prefix == "" {
		o.Prefix = "microcache:"
	}
	if o.L1Objects <= 0 {
		o.L1Objects = 10000
	}
	if o.L1Bytes <= 0 {
		o.L1Bytes = 64 << 20
	}
	if o.MaxObjectBytes == 0 {
		o.MaxObjectBytes = 1 << 20
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 100 * time.Millisecond
	}
	if o.MaxOptionsAge <= 0 {
		o.MaxOptionsAge = time.Second
	}
	if o.RecordTTL <= 0 {
		o.RecordTTL = 10 * time.Minute
	}
	o.RecordTTL = max(o.RecordTTL, microcache.MinPurgeMarkRetention)
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = 3
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = 500 * time.Millisecond
	}
	if o.LeasePoll <= 0 {
		o.LeasePoll = 50 * time.Millisecond
	}
	if o.MaxPendingPurges <= 0 {
		o.MaxPendingPurges = 10000
	}
	return o
}

// ErrUnavailable is returned, wrapped, by Purge and PurgeTag while the
// circuit breaker is open: the purge reached L1 only.
var ErrUnavailable = errors.New("redisdriver: Redis unavailable (circuit open)")

// errTimeout is returned when a call overran Options.OpTimeout.
var errTimeout = errors.New("redisdriver: Redis call timed out")

func errCorrupt(msg string) error {
	return fmt.Errorf("%w: redisdriver: %s", microcache.ErrCorrupt, msg)
}

// Driver is the two-tier [microcache.Driver]. Make one with [New]; it is
// safe for concurrent use. Close it when done.
type Driver struct {
	opts    Options
	conn    conn
	inline  bool // conn ends calls at their deadline: call them on the caller's goroutine
	cluster bool // conn is a Redis Cluster: tags are written and purged outside the scripts
	l1      *microcache.DriverLRU
	trust   *trust
	id      string // this driver's id in purge messages
	channel string

	open     atomic.Bool  // the circuit breaker is open
	failures atomic.Int32 // failed calls in a row

	pendingMu sync.Mutex
	pending   map[string]uint64 // purges to write to L2: URL key or "\x00"+tag -> epoch

	waitMu  sync.Mutex
	waiters map[string][]chan struct{} // lease id -> processes waiting for its release

	stripes [256]sync.Mutex // see stripe

	readsMu sync.Mutex
	reads   map[uint64]lastValue // hash of an object key -> what was last read from L2 under it; see read

	metaMu sync.Mutex
	meta   map[weak.Pointer[microcache.Object]]objMeta // what L2 holds of L1's objects; guarded by metaMu

	watchMu  sync.Mutex
	watchers map[int]func(microcache.PurgeEvent)
	nextW    int

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	stats struct {
		corrupt, releaseErrors, trips, subscriptions, tagErrors, lateLeases atomic.Uint64
	}
}

// Stats are counts since a Driver was made, and its state now.
type Stats struct {
	Available     bool   // the breaker is closed: Redis is used
	Subscribed    bool   // the purge subscription is in place
	Trips         uint64 // times the breaker opened
	Subscriptions uint64 // times the purge subscription was made (1 + reconnects)
	Corrupt       uint64 // records that failed to decode (each also an error returned)
	ReleaseErrors uint64 // lease releases that failed (the leases expired)
	TagErrors     uint64 // tags not recorded after a store, on a Cluster
	LateLeases    uint64 // leases refused because another process stored the object after this one looked it up
	PendingPurges int    // purges waiting to be written to Redis
}

// Stats returns the driver's counts and state.
func (d *Driver) Stats() Stats {
	d.pendingMu.Lock()
	pending := len(d.pending)
	d.pendingMu.Unlock()
	return Stats{
		Available:     d.Available(),
		Subscribed:    d.Subscribed(),
		Trips:         d.stats.trips.Load(),
		Subscriptions: d.stats.subscriptions.Load(),
		Corrupt:       d.stats.corrupt.Load(),
		ReleaseErrors: d.stats.releaseErrors.Load(),
		TagErrors:     d.stats.tagErrors.Load(),
		LateLeases:    d.stats.lateLeases.Load(),
		PendingPurges: pending,
	}
}

var (
	_ microcache.Driver             = (*Driver)(nil)
	_ microcache.DriverLeaser       = (*Driver)(nil)
	_ microcache.DriverPurgeWatcher = (*Driver)(nil)
	_ microcache.DriverUsage        = (*Driver)(nil)
)

// New returns a Driver using client, configured by opts. It makes no call
// on the request path and never blocks: the purge subscription connects in
// the background, and until it is in place every lookup reads L2.
func New(client redis.UniversalClient, opts Options) *Driver {
	return newDriver(goRedis{client}, opts)
}

func newDriver(c conn, opts Options) *Driver {
	opts = opts.normalized()
	var idb [8]byte
	rand.Read(idb[:])
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{
		opts:     opts,
		conn:     c,
		inline:   c.boundsCalls(),
		cluster:  c.cluster(),
		l1:       microcache.NewDriverLRUBytes(opts.L1Objects, opts.L1Bytes),
		trust:    newTrust(opts.MaxOptionsAge, opts.L1Objects),
		id:       hex.EncodeToString(idb[:]),
		channel:  opts.Prefix + "events",
		pending:  make(map[string]uint64),
		waiters:  make(map[string][]chan struct{}),
		watchers: make(map[int]func(microcache.PurgeEvent)),
		meta:     make(map[weak.Pointer[microcache.Object]]objMeta),
		reads:    make(map[uint64]lastValue),
		ctx:      ctx,
		cancel:   cancel,
	}
	d.wg.Add(3)
	go d.subscribe()
	go d.maintain()
	go d.clock()
	return d
}

// Close ends the driver's subscription and background work, and waits for
// them. It does not close the client. The driver must not be used after.
func (d *Driver) Close() error {
	d.cancel()
	d.wg.Wait()
	return nil
}

// L1 returns the in-process tier, for tests and figures.
func (d *Driver) L1() *microcache.DriverLRU { return d.l1 }

// Available reports whether the driver uses L2 (the breaker is closed).
func (d *Driver) Available() bool { return !d.open.Load() }

// Len implements [microcache.Driver]: the objects held in L1.
func (d *Driver) Len() int { return d.l1.Len() }

// Bytes implements [microcache.DriverUsage]: the bytes held in L1.
func (d *Driver) Bytes() int64 { return d.l1.Bytes() }

// Evictions implements [microcache.DriverUsage]: L1's evictions.
func (d *Driver) Evictions() uint64 { return d.l1.Evictions() }

// call runs fn with a deadline of Options.OpTimeout, and returns when it
// has, or when the deadline has passed (fn then runs on, and its result is
// dropped). It feeds the circuit breaker.
func (d *Driver) call(ctx context.Context, fn func(ctx context.Context) (any, error)) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.OpTimeout)
	type result struct {
		v   any
		err error
	}
	var r result
	if d.inline {
		r.v, r.err = fn(ctx)
	} else {
		ch := make(chan result, 1)
		go func() {
			v, err := fn(ctx)
			ch <- result{v, err}
		}()
		select {
		case r = <-ch:
		case <-ctx.Done():
			r.err = errTimeout
		}
	}
	expired := ctx.Err() == context.DeadlineExceeded
	cancel()
	switch {
	case r.err == nil || isServerReply(r.err):
		d.failures.Store(0)
	case expired || !errors.Is(r.err, context.Canceled):
		// A failure of the server or the connection, not the caller's
		// cancellation.
		if r.err != errTimeout && expired {
			r.err = fmt.Errorf("%w: %v", errTimeout, r.err)
		}
		if d.failures.Add(1) >= int32(d.opts.BreakerFailures) {
			d.trip()
		}
	}
	return r.v, r.err
}

// clock advances the trust's coarse clock until Close.
func (d *Driver) clock() {
	defer d.wg.Done()
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			d.trust.tick()
		}
	}
}

// trip opens the breaker.
func (d *Driver) trip() {
	if d.open.CompareAndSwap(false, true) {
		d.stats.trips.Add(1)
	}
}

// maintain runs every BreakerCooldown until Close. While the breaker is
// open it pings the server; when it answers, it writes the pending purges,
// withdraws the trust of every L1 record (purges made meanwhile by others
// were not seen) and closes the breaker. While the breaker is closed it
// writes the purges that failed.
func (d *Driver) maintain() {
	defer d.wg.Done()
	t := time.NewTicker(d.opts.BreakerCooldown)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		if !d.open.Load() {
			d.pendingMu.Lock()
			n := len(d.pending)
			d.pendingMu.Unlock()
			if n > 0 {
				d.flushPending()
			}
			continue
		}
		ctx, cancel := context.WithTimeout(d.ctx, d.opts.OpTimeout)
		err := d.conn.ping(ctx)
		cancel()
		if err != nil || !d.flushPending() {
			continue
		}
		d.trust.withdrawAll()
		d.failures.Store(0)
		d.open.Store(false)
	}
}

// flushPending writes the purges made while the breaker was open, and
// reports whether all were written.
func (d *Driver) flushPending() bool {
	d.pendingMu.Lock()
	pending := d.pending
	d.pending = make(map[string]uint64)
	d.pendingMu.Unlock()
	ok := true
	for k, epoch := range pending {
		if !ok {
			d.addPending(k, epoch)
			continue
		}
		var err error
		if tag, isTag := strings.CutPrefix(k, "\x00"); isTag {
			_, err = d.purgeTagL2(d.ctx, tag, epoch)
		} else {
			err = d.purgeL2(d.ctx, k, epoch)
		}
		if err != nil {
			ok = false
			d.addPending(k, epoch)
		}
	}
	return ok
}

func (d *Driver) addPending(k string, epoch uint64) {
	d.pendingMu.Lock()
	if _, ok := d.pending[k]; ok || len(d.pending) < d.opts.MaxPendingPurges {
		d.pending[k] = epoch
	}
	d.pendingMu.Unlock()
}

// Lookup implements [microcache.Driver]. It does not retain urlKey.
func (d *Driver) Lookup(ctx context.Context, urlKey string) (rec microcache.Record, err error) {
	rec, _ = d.l1.Lookup(ctx, urlKey)
	if d.open.Load() {
		return rec, nil
	}
	// L1 answers what would be a hit; L2 is asked before what would be a
	// miss or a stale answer, since another replica may have stored a
	// fresh object since. The trust is checked after L1 is read, so a
	// purge received meanwhile withdraws it.
	if rec.Options != nil {
		if o := rec.Object; o != nil && d.trust.fresh(o) {
			if d.trust.validObject(o) {
				return rec, nil
			}
		} else if (rec.Options.Uncacheable || len(rec.Options.Vary) > 0 || len(rec.Options.VaryQuery) > 0) &&
			d.trust.valid(urlKey) {
			return rec, nil
		}
	}
	return d.lookupL2(ctx, urlKey, rec)
}

// lookupL2 is Lookup's L2 read, given what L1 holds (l1); it installs the
// record it reads in L1.
func (d *Driver) lookupL2(ctx context.Context, urlKey string, l1 microcache.Record) (rec microcache.Record, err error) {
	names := d.urlNames(urlKey)
	slot, gen := d.trust.group(urlKey)
	stamp := d.trust.now()
	l1meta := d.metaOf(l1.Object)
	script := l1meta.header != "" && len(l1.Object.Body) >= scriptMinBody
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		if script {
			return d.conn.eval(ctx, lookupScript, []string{names.epoch, names.opts, names.plain}, l1meta.header)
		}
		return d.conn.mget(ctx, names.epoch, names.opts, names.plain)
	})
	if err != nil {
		return microcache.Record{}, err
	}
	reply, ok := v.([]any)
	if !ok || len(reply) != 3 {
		return microcache.Record{}, fmt.Errorf("redisdriver: unexpected lookup reply %T", v)
	}
	rec = microcache.Record{} // not what L1 held
	if s, ok := reply[0].(string); ok {
		rec.Epoch, err = strconv.ParseUint(s, 10, 64)
		if err != nil || rec.Epoch == 0 {
			return microcache.Record{}, d.corrupt(names.epoch, errCorrupt("epoch "+strconv.Quote(s)))
		}
	}
	if s, ok := reply[1].(string); ok && rec.Epoch != 0 {
		rec.Options = new(microcache.Options)
		if err := rec.Options.UnmarshalBinary([]byte(s)); err != nil {
			return microcache.Record{}, d.corrupt(names.opts, err)
		}
		rec.Options.Epoch = 0 // a Record's options carry no epoch
	}
	switch s, _ := reply[2].(string); {
	case script && s == "=":
		rec.Object = l1.Object
		d.read(urlKey, l1meta.header)
	case reply[2] == nil:
		if l1meta.l1Only && l1.Object.Epoch == rec.Epoch && rec.Epoch != 0 {
			rec.Object = l1.Object // too large for L2
		}
		d.read(urlKey, "")
	default:
		if rec.Object, err = decodeValue(s); err != nil {
			return microcache.Record{}, d.corrupt(names.plain, err)
		}
		d.remember(rec.Object, objMeta{header: s[:valueHeaderLen]})
		d.read(urlKey, s[:valueHeaderLen])
	}
	d.install(ctx, urlKey, rec, slot, gen, stamp)
	return rec, nil
}

// scriptMinBody is the body size from which a read of an object L1
// already holds is a script that answers "=" rather than the object's
// bytes when they are unchanged; below it, a plain MGET is faster.
const scriptMinBody = 32 << 10

// stripe returns the lock that orders the writes to L1 and to the trust
// of key's URL and its variants: each writer of L1 writes L1 and sets (or
// withdraws) the trust as one step, so that the trust set last is that of
// the content written last.
func (d *Driver) stripe(key string) *sync.Mutex {
	return &d.stripes[maphash.String(d.trust.seed, slotPart(key))%uint64(len(d.stripes))]
}

// putL1 is the only way objects enter L1: it clears the trust's hint of
// st.Object's address first (see trust). Objects are stored under one key
// each (the middleware makes a new one for every store; the driver decodes
// a new one for every read).
func (d *Driver) putL1(ctx context.Context, st *microcache.Store) (bool, error) {
	if st.Object != nil {
		d.trust.placing(st.Object)
	}
	return d.l1.Store(ctx, st)
}

// install makes L1's record of urlKey what L2 returned, and trusts it.
func (d *Driver) install(ctx context.Context, urlKey string, rec microcache.Record, slot uint32, gen uint64, stamp int64) {
	mu := d.stripe(urlKey)
	mu.Lock()
	defer mu.Unlock()
	if rec.Epoch == 0 {
		d.trust.forget(urlKey) // L2 has no record: L1's is not L2's
		return
	}
	l1, _ := d.l1.Lookup(ctx, urlKey)
	same := l1.Epoch == rec.Epoch && l1.Object == rec.Object && (l1.Options == nil) == (rec.Options == nil)
	if same && rec.Options != nil {
		ea, _ := rec.Options.MarshalBinary()
		eb, _ := l1.Options.MarshalBinary()
		same = string(ea) == string(eb)
	}
	if !same {
		key := strings.Clone(urlKey)
		d.l1.Purge(ctx, key, rec.Epoch)
		st := &microcache.Store{URLKey: key, Epoch: rec.Epoch}
		if rec.Options != nil {
			o := *rec.Options
			o.Epoch = rec.Epoch
			st.Options = &o
		}
		if rec.Object != nil {
			st.ObjectKey, st.Object = key, rec.Object
		}
		d.putL1(ctx, st)
	}
	if rec.Options == nil && l1.Options != nil {
		d.trust.forget(urlKey) // L1 keeps options L2 no longer has
		return
	}
	d.trust.set(urlKey, rec.Object, slot, gen, stamp)
}

// corrupt counts a record that did not decode and deletes it from L2, in
// the background, so that the next request stores a good one. It returns
// err.
func (d *Driver) corrupt(name string, err error) error {
	d.stats.corrupt.Add(1)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.call(d.ctx, func(ctx context.Context) (any, error) { return nil, d.conn.del(ctx, name) })
	}()
	return err
}

// Object implements [microcache.Driver]. It does not retain objKey.
func (d *Driver) Object(ctx context.Context, objKey string) (*microcache.Object, error) {
	l1, _ := d.l1.Object(ctx, objKey)
	if d.open.Load() || (d.trust.fresh(l1) && d.trust.validObject(l1)) {
		return l1, nil
	}
	return d.objectL2(ctx, objKey, l1)
}

// objectL2 is Object's L2 read, given what L1 holds (l1); it puts the
// object it reads in L1.
func (d *Driver) objectL2(ctx context.Context, objKey string, l1 *microcache.Object) (*microcache.Object, error) {
	name := d.objectName(objKey)
	slot, gen := d.trust.group(objKey)
	stamp := d.trust.now()
	l1meta := d.metaOf(l1)
	script := l1meta.header != "" && len(l1.Body) >= scriptMinBody
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		if script {
			return d.conn.eval(ctx, objectScript, []string{name}, l1meta.header)
		}
		r, err := d.conn.mget(ctx, name)
		if err != nil || len(r) != 1 {
			return nil, err
		}
		return r[0], nil
	})
	if err != nil {
		return nil, err
	}
	var o *microcache.Object
	switch s, _ := v.(string); {
	case script && s == "=":
		o = l1
		d.read(objKey, l1meta.header)
	case v == nil:
		if l1meta.l1Only {
			o = l1 // too large for L2; the middleware checks its epoch
		}
		d.read(objKey, "")
	default:
		if o, err = decodeValue(s); err != nil {
			return nil, d.corrupt(name, err)
		}
		d.remember(o, objMeta{header: s[:valueHeaderLen]})
		d.read(objKey, s[:valueHeaderLen])
	}
	if o != nil {
		mu := d.stripe(objKey)
		mu.Lock()
		if cur, _ := d.l1.Object(ctx, objKey); cur != o {
			key := strings.Clone(objKey)
			r, _ := d.l1.Lookup(ctx, key)
			d.putL1(ctx, &microcache.Store{URLKey: key, Epoch: r.Epoch, ObjectKey: key, Object: o})
		}
		d.trust.set(objKey, o, slot, gen, stamp)
		mu.Unlock()
	}
	return o, nil
}

// lastValue is the header of the value last read from (or written to) L2
// under an object key, or none.
type lastValue struct {
	header [valueHeaderLen]byte
	none   bool
}

// read records the header of the object this process read from (or wrote
// to) L2 under objKey ("": none), for Lease: L1 may not keep the object
// (its limits, its admission), and what was read must still be known when
// the miss that follows asks for the lease. Keys are kept as 64-bit
// hashes, so the map costs a few dozen bytes an entry whatever the keys'
// lengths (two keys of one hash, one chance in 2^64 a pair, only cost a
// lease refused or taken in vain); it is emptied when it grows past twice
// L1's object limit, and a key it forgot leases whatever L2 holds.
func (d *Driver) read(objKey, header string) {
	v := lastValue{none: header == ""}
	copy(v.header[:], header)
	h := maphash.String(d.trust.seed, objKey)
	d.readsMu.Lock()
	defer d.readsMu.Unlock()
	if len(d.reads) >= 2*d.opts.L1Objects {
		clear(d.reads)
	}
	d.reads[h] = v
}

// lastRead returns what read recorded for objKey ("": none); ok is false
// when it recorded nothing (or forgot it).
func (d *Driver) lastRead(objKey string) (header string, ok bool) {
	h := maphash.String(d.trust.seed, objKey)
	d.readsMu.Lock()
	v, ok := d.reads[h]
	d.readsMu.Unlock()
	if !ok || v.none {
		return "", ok
	}
	return string(v.header[:]), true
}

// objMeta is what L2 holds of one of L1's objects.
type objMeta struct {
	header string // the header of its value in L2, or ""
	l1Only bool   // too large for L2: kept in L1 only
}

// metaOf returns what is known of o (nil: nothing).
func (d *Driver) metaOf(o *microcache.Object) objMeta {
	if o == nil {
		return objMeta{}
	}
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	return d.meta[weak.Make(o)]
}

// remember records what L2 holds of o. The map is emptied when it grows
// past twice L1's object limit: forgetting costs a full read of an object
// L1 already had.
func (d *Driver) remember(o *microcache.Object, m objMeta) {
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	if len(d.meta) >= 2*d.opts.L1Objects {
		clear(d.meta)
	}
	d.meta[weak.Make(o)] = m
}

// Store implements [microcache.Driver]: the compare-and-set is decided by
// L2, and L1 then mirrors the result. While the breaker is open it is
// decided by L1 alone.
func (d *Driver) Store(ctx context.Context, st *microcache.Store) (bool, error) {
	if d.open.Load() {
		return d.putL1(ctx, st)
	}
	names := d.urlNames(st.URLKey)
	after := st.Epoch
	rawOpts := ""
	if st.Options != nil {
		after = st.Options.Epoch
		b, _ := st.Options.MarshalBinary()
		rawOpts = string(b)
	}
	objName, op, value, objPX := names.plain, "n", "", int64(0)
	if st.ObjectKey != "" {
		objName = d.objectName(st.ObjectKey)
		switch {
		case st.Object != nil:
			ttl := time.Until(st.Object.RetainUntil())
			op = "d" // past its RetainUntil, or too large for L2: not in L2
			if ttl >= time.Millisecond {
				b, err := encodeValue(st.Object)
				if err != nil {
					return false, err
				}
				if len(b) <= d.opts.MaxObjectBytes {
					op, value, objPX = "s", string(b), (ttl.Milliseconds() + 1)
					d.remember(st.Object, objMeta{header: value[:valueHeaderLen]})
				} else {
					d.remember(st.Object, objMeta{l1Only: true})
				}
			}
		case st.Delete:
			op = "d"
		}
	}
	ifDate := ""
	if !st.IfDate.IsZero() {
		ifDate = string(dateBytes(nil, st.IfDate))
	}
	keys := []string{names.epoch, names.opts, objName}
	member := ""
	if len(st.Tags) > 0 {
		member = names.epoch + st.URLKey
		if !d.cluster {
			for _, tag := range st.Tags {
				keys = append(keys, d.tagName(tag))
			}
		}
	}
	slot, gen := d.trust.group(st.URLKey)
	stamp := d.trust.now()
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		return d.conn.eval(ctx, storeScript, keys,
			strconv.FormatUint(st.Epoch, 10), strconv.FormatUint(after, 10), rawOpts,
			op, value, objPX, d.opts.RecordTTL.Milliseconds(), ifDate, member)
	})
	if err != nil {
		d.trust.forget(st.URLKey)
		return false, err
	}
	if n, _ := v.(int64); n != 1 {
		d.trust.forget(st.URLKey) // L1 did not know L2's epoch
		return false, nil
	}
	switch op {
	case "s":
		d.read(st.ObjectKey, value[:valueHeaderLen])
	case "d":
		d.read(st.ObjectKey, "")
	}
	if d.cluster && len(st.Tags) > 0 {
		// The tags' keys are in other slots: added after the store, each
		// in a call of its own. A tag that fails is counted, not
		// reported: the store is done, and only a later PurgeTag misses
		// the URL.
		px := max(d.opts.RecordTTL.Milliseconds(), objPX)
		for _, tag := range st.Tags {
			name := d.tagName(tag)
			if _, err := d.call(ctx, func(ctx context.Context) (any, error) {
				return d.conn.eval(ctx, tagScript, []string{name}, member, px)
			}); err != nil {
				d.stats.tagErrors.Add(1)
			}
		}
	}

	// Mirror the store in L1, unless a purge was received meanwhile.
	mu := d.stripe(st.URLKey)
	mu.Lock()
	defer mu.Unlock()
	stored, _ := d.putL1(ctx, st)
	if _, now := d.trust.group(st.URLKey); now != gen {
		d.trust.forget(st.URLKey)
		d.trust.forget(st.ObjectKey)
		return true, nil
	}
	if !stored {
		// L1 had another epoch (it was not trusted): L2's is the truth.
		d.l1.Purge(ctx, st.URLKey, st.Epoch)
		st2 := *st
		st2.IfDate = time.Time{}
		stored, _ = d.putL1(ctx, &st2)
	}
	if rec, _ := d.l1.Lookup(ctx, st.URLKey); stored && rec.Epoch == after && rec.Options != nil {
		d.trust.set(st.URLKey, rec.Object, slot, gen, stamp)
	} else {
		d.trust.forget(st.URLKey)
	}
	if st.ObjectKey != "" && st.ObjectKey != st.URLKey {
		if stored && st.Object != nil {
			d.trust.set(st.ObjectKey, st.Object, slot, gen, stamp)
		} else {
			d.trust.forget(st.ObjectKey)
		}
	}
	return true, nil
}

// Purge implements [microcache.Driver]: L1 at once, then L2, which
// announces the purge to the other processes.
func (d *Driver) Purge(ctx context.Context, urlKey string, epoch uint64) error {
	d.purgeL1(urlKey, epoch)
	if d.open.Load() {
		d.addPending(urlKey, epoch)
		return ErrUnavailable
	}
	if err := d.purgeL2(ctx, urlKey, epoch); err != nil {
		d.addPending(urlKey, epoch)
		return err
	}
	// A lookup that read L2 before the purge may have installed the old
	// epoch since: purge L1 again, and withdraw its trust.
	d.purgeL1(urlKey, epoch)
	return nil
}

func (d *Driver) purgeL1(urlKey string, epoch uint64) {
	mu := d.stripe(urlKey)
	mu.Lock()
	defer mu.Unlock()
	d.trust.bump(urlKey)
	d.l1.Purge(context.Background(), urlKey, epoch)
}

func (d *Driver) purgeL2(ctx context.Context, urlKey string, epoch uint64) error {
	names := d.urlNames(urlKey)
	e := strconv.FormatUint(epoch, 10)
	msg := "u" + d.id + " " + e + " " + urlKey
	_, err := d.call(ctx, func(ctx context.Context) (any, error) {
		return d.conn.eval(ctx, purgeScript, []string{names.epoch, names.plain},
			e, microcache.MinPurgeMarkRetention.Milliseconds()+1000, d.channel, msg)
	})
	return err
}

// PurgeTag implements [microcache.Driver].
func (d *Driver) PurgeTag(ctx context.Context, tag string, epoch uint64) error {
	d.l1.PurgeTag(ctx, tag, epoch)
	if d.open.Load() {
		d.addPending("\x00"+tag, epoch)
		return ErrUnavailable
	}
	urls, err := d.purgeTagL2(ctx, tag, epoch)
	if err != nil {
		d.addPending("\x00"+tag, epoch)
		return err
	}
	for _, u := range urls {
		d.purgeL1(u, epoch)
	}
	return nil
}

func (d *Driver) purgeTagL2(ctx context.Context, tag string, epoch uint64) ([]string, error) {
	if d.cluster {
		return d.purgeTagCluster(ctx, tag, epoch)
	}
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		return d.conn.eval(ctx, purgeTagScript, []string{d.tagName(tag)},
			strconv.FormatUint(epoch, 10), microcache.MinPurgeMarkRetention.Milliseconds()+1000,
			d.channel, d.id, d.epochNameLen(), tag)
	})
	if err != nil {
		return nil, err
	}
	list, _ := v.([]any)
	urls := make([]string, 0, len(list))
	for _, u := range list {
		if s, ok := u.(string); ok {
			urls = append(urls, s)
		}
	}
	return urls, nil
}

// purgeTagCluster purges a tag on a Redis Cluster: the tag's URLs are in
// other slots than the tag, so it reads the tag, purges each URL with a
// call of its own, then deletes the tag. It is not one atomic step: a URL
// tagged while it runs may be left unpurged (and untagged).
func (d *Driver) purgeTagCluster(ctx context.Context, tag string, epoch uint64) ([]string, error) {
	name := d.tagName(tag)
	v, err := d.call(ctx, func(ctx context.Context) (any, error) { return d.conn.members(ctx, name) })
	if err != nil {
		return nil, err
	}
	members, _ := v.([]string)
	e := strconv.FormatUint(epoch, 10)
	n := d.epochNameLen()
	var urls []string
	for _, m := range members {
		if len(m) < n {
			continue
		}
		url := m[n:]
		names := d.urlNames(url)
		msg := "v" + d.id + " " + e + " " + url
		if _, err := d.call(ctx, func(ctx context.Context) (any, error) {
			return d.conn.eval(ctx, purgeScript, []string{names.epoch, names.plain},
				e, microcache.MinPurgeMarkRetention.Milliseconds()+1000, d.channel, msg)
		}); err != nil {
			return urls, err
		}
		urls = append(urls, url)
	}
	if _, err := d.call(ctx, func(ctx context.Context) (any, error) { return nil, d.conn.del(ctx, name) }); err != nil {
		return urls, err
	}
	d.call(ctx, func(ctx context.Context) (any, error) {
		return nil, d.conn.publish(ctx, d.channel, "t"+d.id+" "+e+" "+tag)
	})
	return urls, nil
}

// Lease implements [microcache.DriverLeaser] with SET NX PX and a random
// token, in a script that also refuses the lease (held false, as if
// another process held it) when L2's object is not the one this process
// last read. While the breaker is open every caller holds the lease.
func (d *Driver) Lease(ctx context.Context, objKey string, ttl time.Duration) (func(), bool, error) {
	if d.open.Load() {
		return func() {}, true, nil
	}
	name, id := d.leaseName(objKey)
	var tb [16]byte
	rand.Read(tb[:])
	token := hex.EncodeToString(tb[:])
	// The lease is refused, as if held, when L2's object is no longer the
	// one this process read (L1 holds what it read): another process
	// fetched it between this process's lookup and now, and the caller
	// should look it up again rather than fetch it a second time.
	known, ok := d.lastRead(objKey)
	if !ok {
		known = "?" // not known: lease whatever L2 holds
	}
	objName := d.objectName(objKey)
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		return d.conn.eval(ctx, leaseScript, []string{name, objName}, token, ttl.Milliseconds(), known)
	})
	if err != nil {
		return nil, false, err
	}
	switch n, _ := v.(int64); n {
	case 1:
	case 2:
		d.stats.lateLeases.Add(1)
		return nil, false, nil
	default:
		return nil, false, nil
	}
	// The release runs in the background: it only wakes the waiters (who
	// also poll), so the leader's response need not wait for it.
	var once sync.Once
	release := func() {
		once.Do(func() {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				_, err := d.call(d.ctx, func(ctx context.Context) (any, error) {
					return d.conn.eval(ctx, releaseScript, []string{name}, token, d.channel, "l"+id)
				})
				if err != nil {
					d.stats.releaseErrors.Add(1) // the lease expires by itself
				}
			}()
		})
	}
	return release, true, nil
}

// Wait implements [microcache.DriverLeaser]: it returns when the release
// message arrives, or a poll finds the lease gone, or ctx is done. While
// the breaker is open it returns at once.
func (d *Driver) Wait(ctx context.Context, objKey string) error {
	if d.open.Load() {
		return nil
	}
	name, id := d.leaseName(objKey)
	ch := make(chan struct{})
	d.waitMu.Lock()
	d.waiters[id] = append(d.waiters[id], ch)
	d.waitMu.Unlock()
	defer func() {
		d.waitMu.Lock()
		ws := d.waiters[id]
		for i, w := range ws {
			if w == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(d.waiters, id)
		} else {
			d.waiters[id] = ws
		}
		d.waitMu.Unlock()
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if d.open.Load() {
			return nil
		}
		v, err := d.call(ctx, func(ctx context.Context) (any, error) { return d.conn.exists(ctx, name) })
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if held, _ := v.(bool); !held {
			return nil
		}
		t.Reset(d.opts.LeasePoll)
	}
}

// WatchPurges implements [microcache.DriverPurgeWatcher]. fn is called from
// the driver's subscription goroutine; it must not block for long.
func (d *Driver) WatchPurges(fn func(microcache.PurgeEvent)) (stop func()) {
	d.watchMu.Lock()
	n := d.nextW
	d.nextW++
	d.watchers[n] = fn
	d.watchMu.Unlock()
	return func() {
		d.watchMu.Lock()
		delete(d.watchers, n)
		d.watchMu.Unlock()
	}
}

// subscribe keeps the purge subscription in place until Close, and
// applies what it receives. Each time the subscription is (re)made,
// every L1 record's trust is withdrawn: purges may have been missed.
func (d *Driver) subscribe() {
	defer d.wg.Done()
	for d.ctx.Err() == nil {
		d.listen()
		d.trust.subscribed.Store(false)
		select {
		case <-d.ctx.Done():
		case <-time.After(d.opts.BreakerCooldown):
		}
	}
}

// listen runs one subscription until it fails. A pinger checks that it
// is alive: when nothing (not even a pong) arrived for three intervals,
// it closes the subscription, which ends the wait of receive.
func (d *Driver) listen() {
	sub := d.conn.subscribe(d.ctx, d.channel)
	var closeOnce sync.Once
	closeSub := func() { closeOnce.Do(func() { sub.close() }) }
	defer closeSub()
	var lastSeen atomic.Int64
	lastSeen.Store(time.Now().UnixNano())
	done := make(chan struct{})
	defer close(done)
	interval := max(d.opts.BreakerCooldown, 200*time.Millisecond)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-d.ctx.Done():
				closeSub()
				return
			case <-t.C:
			}
			if time.Since(time.Unix(0, lastSeen.Load())) > 3*interval {
				closeSub()
				return
			}
			ctx, cancel := context.WithTimeout(d.ctx, d.opts.OpTimeout)
			err := sub.ping(ctx)
			cancel()
			if err != nil {
				closeSub()
				return
			}
		}
	}()
	for {
		ev, err := sub.receive(d.ctx)
		if err != nil {
			return
		}
		lastSeen.Store(time.Now().UnixNano())
		switch ev.kind {
		case evSubscribed:
			d.trust.withdrawAll()
			d.trust.subscribed.Store(true)
			d.stats.subscriptions.Add(1)
		case evMessage:
			d.handle(ev.payload)
		}
	}
}

// handle applies one message: "l<lease id>" for a lease release,
// "u<sender> <epoch> <url key>" for a purge, "v..." alike for a URL
// purged by tag, "t<sender> <epoch> <tag>" for a tag purge.
func (d *Driver) handle(msg string) {
	if msg == "" {
		return
	}
	if msg[0] == 'l' {
		d.waitMu.Lock()
		for _, ch := range d.waiters[msg[1:]] {
			close(ch)
		}
		delete(d.waiters, msg[1:])
		d.waitMu.Unlock()
		return
	}
	parts := strings.SplitN(msg[1:], " ", 3)
	if len(parts) != 3 || parts[0] == d.id {
		return
	}
	epoch, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return
	}
	ev := microcache.PurgeEvent{Epoch: epoch}
	switch msg[0] {
	case 'u', 'v':
		mu := d.stripe(parts[2])
		mu.Lock()
		d.trust.bump(parts[2])
		if rec, _ := d.l1.Lookup(d.ctx, parts[2]); rec.Epoch != 0 || rec.Options != nil {
			d.l1.Purge(d.ctx, parts[2], epoch)
		}
		mu.Unlock()
		if msg[0] == 'v' {
			return
		}
		ev.URLKey = parts[2]
	case 't':
		ev.Tag = parts[2]
	default:
		return
	}
	d.watchMu.Lock()
	fns := make([]func(microcache.PurgeEvent), 0, len(d.watchers))
	for _, fn := range d.watchers {
		fns = append(fns, fn)
	}
	d.watchMu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// Subscribed reports whether the purge subscription is in place: until it
// is, and whenever it is lost, every lookup reads L2.
func (d *Driver) Subscribed() bool { return d.trust.subscribed.Load() }
