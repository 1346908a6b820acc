package httpcache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/rediserr"
	"github.com/flexgate/flexgate/internal/redisopt"
)

// The shared store's timing.
const (
	// redisTimeout bounds a lookup in Redis: a request waits this long at
	// most before it is treated as a miss.
	redisTimeout = 100 * time.Millisecond
	// writeTimeout bounds a write (SET, DEL, INCR), made off the request
	// path.
	writeTimeout = time.Second
	// localTTL is how long a replica keeps in memory a copy of an entry
	// it read from Redis or wrote there, so that a hit allocates nothing
	// and costs Redis nothing: an invalidation on another replica reaches
	// this one within localTTL.
	localTTL = time.Second
	// downAfter consecutive failed calls mark Redis down, and so do half
	// or more of judgeEvery calls (a slow Redis that answers some calls in
	// time); probeEvery is how often a down Redis is asked again.
	downAfter  = 3
	judgeEvery = 20
	probeEvery = 250 * time.Millisecond
	// maxQueuedWrites bounds the writes waiting for Redis, and
	// maxQueuedBytes the bytes they carry (a cache's own maxBytes bounds
	// its share when smaller); more are dropped (the entry stays in this
	// replica's memory).
	maxQueuedWrites = 4096
	maxQueuedBytes  = 64 << 20
)

// redisStore is the store of a distributed cache: entries live in the
// gateway's shared Redis, under the cache's namespace and generation,
// where every replica finds them; a replica keeps a copy of each one it
// uses, and the generation, for at most localTTL. invalidate-all
// increments the generation (the old keys expire in Redis by their ttl);
// an invalidation that cannot reach Redis is kept pending, and made
// before any write once Redis answers again. While Redis does not answer,
// the replica caches in its own memory alone, as without distributed
// (entries then live their full ttl there), and drops those entries when
// Redis answers again. Safe for concurrent use; a hit on the copy in
// memory allocates nothing.
type redisStore struct {
	local *memStore
	conn  *redisConn
	// prefix is the namespace of the cache's keys in Redis.
	prefix string
	// now is the cache's clock, in ns.
	now func() int64
	// queued is the bytes of the cache's writes waiting for Redis, at
	// most maxQueued.
	queued    atomic.Int64
	maxQueued int64
	// genKey holds the cache's generation in Redis (INCR, no expiry);
	// gen is the generation this replica last read, nil: none yet.
	genKey string
	gen    atomic.Pointer[generation]
	// pending counts the invalidate-alls not yet made in Redis (an
	// invalidation of one key that could not be sent becomes one); while
	// one is pending, the replica does not read Redis. epoch counts
	// invalidate-alls: a write queued before one is not made.
	pending atomic.Int64
	epoch   atomic.Int64
}

// generation is a cache's generation in Redis, and when it was read.
type generation struct {
	n int64
	// prefix starts the keys of the generation: the namespace, n, ':'.
	prefix string
	read   int64
}

func newRedisStore(local *memStore, conn *redisConn, prefix string, maxBytes int64, now func() int64) *redisStore {
	s := &redisStore{local: local, conn: conn, prefix: prefix, now: now, maxQueued: min(maxBytes, maxQueuedBytes),
		genKey: prefix + "gen"}
	conn.track(s)
	return s
}

func (s *redisStore) get(key []byte) *entry {
	if e := s.local.get(key); e != nil {
		return e
	}
	if !s.conn.up.Load() || s.pending.Load() != 0 {
		return nil
	}
	g := s.generation()
	if g == nil {
		return nil
	}
	b, err := s.conn.get(g.prefix + string(key))
	if err != nil || b == nil {
		return nil
	}
	e, err := decodeEntry(b)
	if err != nil {
		s.conn.log.Warn("a cache entry in Redis cannot be read; it is ignored", "error", err.Error())
		return nil
	}
	left := time.Duration(e.stored + int64(e.ttl) - s.now())
	if left <= 0 {
		return nil
	}
	c := *e
	c.ttl = min(left, localTTL)
	s.local.set(string(key), &c)
	return e
}

func (s *redisStore) set(key string, e *entry) {
	if e.kind == kindPass || !s.conn.up.Load() {
		// A pass marker only spares this replica's misses from waiting
		// for one another.
		s.local.set(key, e)
		return
	}
	c := *e
	c.ttl = min(e.ttl, localTTL)
	s.local.set(key, &c)
	s.conn.enqueue(redisWrite{s: s, key: key, value: encodeEntry(e), ttl: e.ttl, epoch: s.epoch.Load()})
}

func (s *redisStore) drop(key []byte) {
	s.local.drop(key)
	if !s.conn.up.Load() || !s.conn.enqueue(redisWrite{s: s, key: string(key)}) {
		s.invalidateLater()
	}
}

func (s *redisStore) dropAll() {
	s.invalidateLater()
	s.local.dropAll()
}

// invalidateLater has the writer make an invalidate-all as soon as Redis
// answers; until then this replica does not read Redis, and the writes
// queued before are not made.
func (s *redisStore) invalidateLater() {
	s.pending.Add(1)
	s.epoch.Add(1)
	s.conn.kick()
}

// generation returns the cache's generation, read again from Redis when
// the one known is older than localTTL; nil when Redis does not answer.
func (s *redisStore) generation() *generation {
	if g := s.gen.Load(); g != nil && s.now()-g.read < int64(localTTL) {
		return g
	}
	g, _ := s.readGeneration()
	return g
}

// readGeneration reads the cache's generation from Redis.
func (s *redisStore) readGeneration() (*generation, error) {
	now := s.now()
	b, err := s.conn.get(s.genKey)
	if err != nil {
		return nil, err
	}
	var n int64
	if b != nil {
		if n, err = strconv.ParseInt(string(b), 10, 64); err != nil {
			s.conn.log.Warn("a cache's generation in Redis is no number; its keys are not read", "key", s.genKey, "error", err.Error())
			return nil, err
		}
	}
	return s.setGeneration(n, now), nil
}

// setGeneration notes n as the cache's generation, read at now. A new
// one drops the copies in memory, read under the old.
func (s *redisStore) setGeneration(n, now int64) *generation {
	g := &generation{n: n, prefix: s.prefix + strconv.FormatInt(n, 10) + ":", read: now}
	if old := s.gen.Swap(g); old != nil && old.n != n {
		s.local.dropAll()
	}
	return g
}

func (s *redisStore) len() int { return s.local.len() }

func (s *redisStore) close() {
	s.conn.untrack(s)
	s.conn.release()
	s.local.close()
}

// redisWrite is a change to a store's entries in Redis, made off the
// request path: SET key value PX ttl, or DEL key (value nil), key in the
// store's generation. A SET queued before an invalidate-all (epoch) is
// not made.
type redisWrite struct {
	s     *redisStore
	key   string
	value []byte
	ttl   time.Duration
	epoch int64
}

// redisConn is a gateway's client of its shared storage for its
// distributed caches, shared by them and counted; the last to release it
// closes it. It marks Redis down after downAfter failed calls in a row, or
// a write refused, and probes it until it takes a write. Safe for
// concurrent use.
type redisConn struct {
	key    connKey
	opt    rueidis.ClientOption
	log    *slog.Logger
	client atomic.Pointer[rueidis.Client]
	up     atomic.Bool
	fails  atomic.Int32
	// calls and callFails count the calls, and the failed ones, judged
	// every judgeEvery calls.
	calls, callFails atomic.Int64
	refs             int // under connsMu
	// mu guards stores and orders a store's dropping of its entries with
	// Redis coming up.
	mu     sync.Mutex
	stores map[*redisStore]struct{}

	writes chan redisWrite
	// queued is the bytes of the writes waiting, of every store, at most
	// maxQueuedBytes.
	queued  atomic.Int64
	dropped *metrics.Counter
	errors  *metrics.Counter
	// ready is closed once the first user has probed Redis.
	ready chan struct{}
	wake  chan struct{}
	// flush asks the writer to make the pending invalidations.
	flush chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
}

// connKey names a connection: one per gateway (its metrics set) and
// shared-storage settings.
type connKey struct {
	set *metrics.Set
	cfg string
}

var (
	connsMu sync.Mutex
	conns   = map[connKey]*redisConn{}
)

// acquireConn returns the gateway's connection for r, made if it is the
// first user. A Redis that cannot be reached now is no error: the
// connection starts down and keeps trying. The first probe (up to 2 s)
// is made outside connsMu, so that other connections, and the up gauge,
// do not wait for it; the other users of this one do.
func acquireConn(set *metrics.Set, r *config.Redis) (*redisConn, error) {
	key := connKey{set: set, cfg: redisopt.SettingsKey(r)}
	connsMu.Lock()
	c := conns[key]
	made := c == nil
	if made {
		var err error
		if c, err = newRedisConn(key, r); err != nil {
			connsMu.Unlock()
			return nil, err
		}
		conns[key] = c
	}
	c.refs++
	connsMu.Unlock()
	if !made {
		<-c.ready
		return c, nil
	}
	if err := c.probe(2 * time.Second); err != nil {
		if advice := rediserr.WriteRefused(err); advice != "" {
			c.log.Warn("shared storage refuses writes; distributed caches cache in each replica's memory until it takes them",
				"error", err.Error(), "advice", advice)
		} else {
			c.log.Warn("shared storage unreachable; distributed caches cache in each replica's memory until it answers", "error", err.Error())
		}
	}
	c.wg.Add(2)
	go c.run()
	go c.write()
	close(c.ready)
	return c, nil
}

func newRedisConn(key connKey, r *config.Redis) (*redisConn, error) {
	opt, err := redisopt.Options(r)
	if err != nil {
		return nil, err
	}
	c := &redisConn{key: key, opt: opt, stores: map[*redisStore]struct{}{},
		log:    slog.Default().With("sharedStorage", "redis", "policy", "http-caching"),
		writes: make(chan redisWrite, maxQueuedWrites), ready: make(chan struct{}), wake: make(chan struct{}, 1), flush: make(chan struct{}, 1), stop: make(chan struct{}),
		dropped: key.set.GetOrCreateCounter(`flexgate_cache_redis_writes_dropped_total`),
		errors:  key.set.GetOrCreateCounter(`flexgate_cache_redis_errors_total`)}
	key.set.GetOrCreateGauge(`flexgate_cache_redis_up`, func() float64 {
		connsMu.Lock()
		defer connsMu.Unlock()
		for k, c := range conns {
			if k.set == key.set && c.up.Load() {
				return 1
			}
		}
		return 0
	})
	return c, nil
}

// release drops one user; the last closes the client.
func (c *redisConn) release() {
	connsMu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		delete(conns, c.key)
	}
	connsMu.Unlock()
	if !last {
		return
	}
	close(c.stop)
	c.wg.Wait()
	if cl := c.client.Load(); cl != nil {
		(*cl).Close()
	}
}

func (c *redisConn) track(s *redisStore) {
	c.mu.Lock()
	c.stores[s] = struct{}{}
	c.mu.Unlock()
}

func (c *redisConn) untrack(s *redisStore) {
	c.mu.Lock()
	delete(c.stores, s)
	c.mu.Unlock()
}

// probeKey is what the probe writes, beside the caches' namespaces.
const probeKey = "flexgate:cache:probe"

// probe makes the client if there is none yet and writes a key that
// expires in a second; when Redis takes it, Redis is up again, and the
// entries the stores kept in memory alone while it was down are dropped
// (Redis may hold newer ones, or have seen them invalidated). A probe
// that only asked would pass a Redis that answers but refuses writes (a
// read-only replica, out of memory, short of replicas): each pass would
// drop the stores' entries, and the next write mark Redis down again.
func (c *redisConn) probe(wait time.Duration) error {
	if c.client.Load() == nil {
		cl, err := rueidis.NewClient(c.opt)
		if err != nil {
			return err
		}
		c.client.Store(&cl)
	}
	cl := *c.client.Load()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cl.Do(ctx, cl.B().Set().Key(probeKey).Value("1").Px(time.Second).Build()).Error(); err != nil {
		return err
	}
	c.fails.Store(0)
	if !c.up.Load() {
		c.mu.Lock()
		for s := range c.stores {
			s.local.dropAll()
		}
		c.up.Store(true)
		c.mu.Unlock()
		c.kick()
		c.log.Info("shared storage answers; distributed caches keep their entries in it")
	}
	return nil
}

// run probes while Redis is down, and has the writer retry pending
// invalidations while it is up, until the connection is released.
func (c *redisConn) run() {
	defer c.wg.Done()
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.wake:
		}
		if !c.up.Load() {
			_ = c.probe(probeEvery)
		} else {
			// Retry the invalidations still pending, if any.
			c.kick()
		}
	}
}

// succeeded and failed record a call's outcome.
func (c *redisConn) succeeded() {
	if c.fails.Load() != 0 {
		c.fails.Store(0)
	}
	c.judge(false)
}

// A write Redis refused (see rediserr) marks it down at once: the next
// writes would be refused too, until an operator or a failover acts, and
// reads that still pass would keep it up.
func (c *redisConn) failed(err error) {
	c.errors.Inc()
	if c.fails.Add(1) >= downAfter || rediserr.WriteRefused(err) != "" {
		c.down(err)
	}
	c.judge(true)
}

// judge marks Redis down when half or more of the last judgeEvery calls
// failed.
func (c *redisConn) judge(failed bool) {
	if failed {
		c.callFails.Add(1)
	}
	if c.calls.Add(1)%judgeEvery != 0 {
		return
	}
	if f := c.callFails.Swap(0); f*2 >= judgeEvery {
		c.down(fmt.Errorf("%d of the last %d calls failed", f, judgeEvery))
	}
}

// down marks Redis down, failing with err, and wakes the prober.
func (c *redisConn) down(err error) {
	if c.up.CompareAndSwap(true, false) {
		if advice := rediserr.WriteRefused(err); advice != "" {
			c.log.Warn("shared storage refuses writes; distributed caches cache in each replica's memory until a probe's write succeeds",
				"error", err.Error(), "advice", advice)
		} else {
			c.log.Warn("shared storage failing; distributed caches cache in each replica's memory until it answers again", "error", err.Error())
		}
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// get returns the value of key, nil when there is none.
func (c *redisConn) get(key string) ([]byte, error) {
	cl := c.client.Load()
	if cl == nil {
		return nil, rueidis.ErrClosing
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	b, err := (*cl).Do(ctx, (*cl).B().Get().Key(key).Build()).AsBytes()
	switch {
	case rueidis.IsRedisNil(err):
		c.succeeded()
		return nil, nil
	case err != nil:
		c.failed(err)
		return nil, err
	}
	c.succeeded()
	return b, nil
}

// enqueue hands w to the writer, or drops it when too many writes, or
// too many bytes, wait; it reports whether w is queued.
func (c *redisConn) enqueue(w redisWrite) bool {
	n := w.size()
	if w.s.queued.Add(n) > w.s.maxQueued || c.queued.Add(n) > maxQueuedBytes {
		c.dequeued(w)
		c.dropped.Inc()
		return false
	}
	select {
	case c.writes <- w:
		return true
	default:
		c.dequeued(w)
		c.dropped.Inc()
		return false
	}
}

// kick wakes the writer to make the pending invalidations.
func (c *redisConn) kick() {
	select {
	case c.flush <- struct{}{}:
	default:
	}
}

// size is what a queued write is counted as: its key and value, and what
// it costs besides.
func (w *redisWrite) size() int64 { return int64(len(w.key)+len(w.value)) + 64 }

// dequeued uncounts w's bytes.
func (c *redisConn) dequeued(w redisWrite) {
	n := w.size()
	w.s.queued.Add(-n)
	c.queued.Add(-n)
}

// write makes the pending invalidations, then the queued writes, in
// order, until the connection is released.
func (c *redisConn) write() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.flush:
			c.invalidate()
		case w := <-c.writes:
			c.invalidate()
			c.apply(w)
			// A write counts against the bound until it is made.
			c.dequeued(w)
		}
	}
}

// invalidate makes the stores' pending invalidate-alls: INCR of each
// one's generation. One that fails stays pending.
func (c *redisConn) invalidate() {
	cl := c.client.Load()
	if cl == nil || !c.up.Load() {
		return
	}
	var todo []*redisStore
	c.mu.Lock()
	for s := range c.stores {
		if s.pending.Load() != 0 {
			todo = append(todo, s)
		}
	}
	c.mu.Unlock()
	for _, s := range todo {
		p := s.pending.Load()
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		n, err := (*cl).Do(ctx, (*cl).B().Incr().Key(s.genKey).Build()).AsInt64()
		cancel()
		if err != nil {
			c.failed(err)
			return
		}
		c.succeeded()
		s.setGeneration(n, s.now())
		// Another invalidate-all came meanwhile: it stays pending (and
		// has kicked the writer).
		s.pending.CompareAndSwap(p, 0)
	}
}

// apply makes w, unless Redis is down. An invalidation that cannot be
// made becomes a pending invalidate-all.
func (c *redisConn) apply(w redisWrite) {
	s := w.s
	cl := c.client.Load()
	del := w.value == nil
	if cl == nil || !c.up.Load() || s.pending.Load() != 0 {
		if del {
			s.invalidateLater()
		}
		return
	}
	if !del && w.epoch != s.epoch.Load() {
		return
	}
	// An invalidation reads the generation now: another replica may have
	// changed it.
	g := s.gen.Load()
	if del || g == nil || s.now()-g.read >= int64(localTTL) {
		var err error
		if g, err = s.readGeneration(); err != nil {
			if del {
				s.invalidateLater()
			}
			return
		}
	}
	var err error
	if del {
		err = c.do(*cl, writeTimeout, (*cl).B().Del().Key(g.prefix+w.key).Build())
	} else {
		err = c.do(*cl, writeTimeout, (*cl).B().Set().Key(g.prefix+w.key).Value(rueidis.BinaryString(w.value)).
			Px(max(w.ttl, time.Millisecond)).Build())
	}
	if err != nil {
		c.failed(err)
		if del {
			s.invalidateLater()
		}
		return
	}
	c.succeeded()
}

func (c *redisConn) do(cl rueidis.Client, timeout time.Duration, cmd rueidis.Completed) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return cl.Do(ctx, cmd).Error()
}

// An entry in Redis: entryMagic, kind, status (2 bytes), stored, age, ttl,
// gen (8 bytes each), the count of vary names, then of headers (2 bytes
// each), each name and value after its length (4 bytes), then the body.
const entryMagic = "fgc2"

func encodeEntry(e *entry) []byte {
	n := len(entryMagic) + 1 + 2 + 32 + 4 + len(e.body)
	for _, v := range e.vary {
		n += 4 + len(v)
	}
	for _, f := range e.headers {
		n += 8 + len(f.name) + len(f.value)
	}
	b := make([]byte, 0, n)
	b = append(b, entryMagic...)
	b = append(b, e.kind)
	b = binary.BigEndian.AppendUint16(b, uint16(e.status))
	b = binary.BigEndian.AppendUint64(b, uint64(e.stored))
	b = binary.BigEndian.AppendUint64(b, uint64(e.age))
	b = binary.BigEndian.AppendUint64(b, uint64(e.ttl))
	b = binary.BigEndian.AppendUint64(b, e.gen)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.vary)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.headers)))
	for _, v := range e.vary {
		b = appendField(b, v)
	}
	for _, f := range e.headers {
		b = appendField(appendField(b, f.name), f.value)
	}
	return append(b, e.body...)
}

func appendField(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

var errBadEntry = errors.New("not an entry of this version")

func decodeEntry(b []byte) (*entry, error) {
	const head = len(entryMagic) + 1 + 2 + 32 + 4
	if len(b) < head || string(b[:len(entryMagic)]) != entryMagic {
		return nil, errBadEntry
	}
	r := b[len(entryMagic):]
	e := &entry{kind: r[0], status: int(binary.BigEndian.Uint16(r[1:])), size: len(b) + 256}
	e.stored = int64(binary.BigEndian.Uint64(r[3:]))
	e.age = int64(binary.BigEndian.Uint64(r[11:]))
	e.ttl = time.Duration(binary.BigEndian.Uint64(r[19:]))
	e.gen = binary.BigEndian.Uint64(r[27:])
	nv, nh := int(binary.BigEndian.Uint16(r[35:])), int(binary.BigEndian.Uint16(r[37:]))
	r = r[39:]
	if e.kind > kindPass {
		return nil, errBadEntry
	}
	next := func() ([]byte, bool) {
		if len(r) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(r)
		if uint64(len(r)-4) < uint64(n) {
			return nil, false
		}
		v := r[4 : 4+n : 4+n]
		r = r[4+n:]
		return v, true
	}
	for range nv {
		v, ok := next()
		if !ok {
			return nil, errBadEntry
		}
		e.vary = append(e.vary, v)
	}
	if e.kind == kindVary {
		var ok bool
		if e.varyNames, ok = varyNames(e.vary); !ok {
			return nil, errBadEntry
		}
	}
	for range nh {
		k, ok := next()
		v, ok2 := next()
		if !ok || !ok2 {
			return nil, errBadEntry
		}
		e.headers = append(e.headers, field{k, v})
	}
	e.body = r
	return e, nil
}

var _ store = (*redisStore)(nil)
