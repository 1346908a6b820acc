package httpcache

import (
	"sync"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"

	"github.com/flexgate/flexgate/chain"
)

// Kinds of entry.
const (
	// kindResponse is a stored answer.
	kindResponse uint8 = iota
	// kindVary marks a key whose answers vary on request headers: they
	// are stored under the key and the request's values of vary.
	kindVary
	// kindPass marks a key whose last answer could not be stored: its
	// misses go upstream at once instead of waiting for one another.
	kindPass
)

// entry is one value of the cache. It is immutable once stored, so that
// a hit can send its bytes without copying them.
type entry struct {
	kind    uint8
	status  int
	headers []field
	body    []byte
	// stored is when it was stored (the store's clock, ns); age is the
	// age in seconds the upstream said it had then; ttl is how long it is
	// served from then on.
	stored int64
	age    int64
	ttl    time.Duration
	// vary names the request headers of a kindVary key, lower case; gen
	// is the marker's generation, part of its variants' keys, so that a
	// new marker (the key was invalidated) reaches none of the old ones.
	vary [][]byte
	gen  uint64
	// varyNames are vary in every spelling an upstream reads as them:
	// a request carrying one in another spelling, or twice, is not
	// answered by a variant.
	varyNames []chain.HeaderName
	// size is what the entry costs in memory, about.
	size int
}

// field is a stored header.
type field struct{ name, value []byte }

// store is where a cache keeps its entries: in memory (memStore), or,
// with `distributed`, where every replica finds them. Implementations are
// safe for concurrent use; get allocates nothing.
type store interface {
	// get returns the entry of key, nil when there is none or it has
	// expired. key is only read during the call.
	get(key []byte) *entry
	set(key string, e *entry)
	drop(key []byte)
	dropAll()
	// len is the number of entries, about.
	len() int
	close()
}

// memStore keeps entries in an otter cache, bounded both by entries and
// by bytes with one weight: an entry weighs its size, and at least
// maxBytes ÷ maxEntries, so that neither more than maxEntries entries nor
// more than maxBytes bytes fit. Eviction is otter's (W-TinyLFU: entries
// used often stay), expiry each entry's own ttl.
type memStore struct {
	c     *otter.Cache[string, *entry]
	floor int
	// tasks run otter's maintenance on one goroutine of the store's own,
	// so that a read never starts a goroutine (which allocates).
	tasks chan func()
	done  chan struct{}
	wg    sync.WaitGroup
}

// Clock is the store's time source, for tests; nil: the wall clock.
type Clock = otter.Clock

func newMemStore(maxEntries int, maxBytes int64, clock Clock) (*memStore, error) {
	s := &memStore{floor: int(max(maxBytes/int64(maxEntries), 1)), tasks: make(chan func(), 64), done: make(chan struct{})}
	c, err := otter.New(&otter.Options[string, *entry]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ string, e *entry) uint32 {
			return uint32(max(e.size, s.floor))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry]) time.Duration {
			return e.Value.ttl
		}),
		Executor: s.execute,
		Clock:    clock,
	})
	if err != nil {
		return nil, err
	}
	s.c = c
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// execute runs an otter task on the store's goroutine, or, when that one
// is busy with a backlog, on the caller's (as otter asks of a bounded
// executor).
func (s *memStore) execute(fn func()) {
	select {
	case s.tasks <- fn:
	default:
		fn()
	}
}

func (s *memStore) run() {
	defer s.wg.Done()
	for {
		select {
		case fn := <-s.tasks:
			fn()
		case <-s.done:
			return
		}
	}
}

func (s *memStore) get(key []byte) *entry {
	e, _ := s.c.GetIfPresent(unsafe.String(unsafe.SliceData(key), len(key)))
	return e
}

func (s *memStore) set(key string, e *entry) { s.c.Set(key, e) }

func (s *memStore) drop(key []byte) {
	s.c.Invalidate(unsafe.String(unsafe.SliceData(key), len(key)))
}

func (s *memStore) dropAll() { s.c.InvalidateAll() }

func (s *memStore) len() int { return s.c.EstimatedSize() }

func (s *memStore) close() {
	s.c.StopAllGoroutines()
	close(s.done)
	s.wg.Wait()
	for {
		select {
		case fn := <-s.tasks:
			fn()
		default:
			s.c.InvalidateAll()
			return
		}
	}
}

// flights are the misses being fetched from the upstream, by key: the
// first request of a key to miss fetches it (the leader), the others
// wait for its answer to be stored. Safe for concurrent use.
type flights struct {
	mu   sync.Mutex
	m    map[string]*flight
	next int64
	// max bounds the keys in flight; more are fetched without coalescing.
	max int
}

type flight struct {
	id   int64
	done chan struct{}
	// deadline is when waiters stop waiting, and a new request may lead
	// (the leader went away without an answer).
	deadline int64
}

// join returns the flight of key and whether the caller leads it; nil
// when coalescing is not possible (too many keys in flight).
func (fs *flights) join(key []byte, now int64, wait time.Duration) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[string(key)]; f != nil && now < f.deadline {
		return f, false
	}
	if len(fs.m) >= fs.max {
		fs.sweep(now)
		if len(fs.m) >= fs.max {
			return nil, false
		}
	}
	fs.next++
	f = &flight{id: fs.next, done: make(chan struct{}), deadline: now + int64(wait)}
	if old := fs.m[string(key)]; old != nil {
		close(old.done)
	}
	fs.m[string(key)] = f
	return f, true
}

// end finishes the flight id of key, waking its waiters.
func (fs *flights) end(key []byte, id int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[string(key)]; f != nil && f.id == id {
		delete(fs.m, string(key))
		close(f.done)
	}
}

// sweep drops flights past their deadline. Under fs.mu.
func (fs *flights) sweep(now int64) {
	for k, f := range fs.m {
		if now >= f.deadline {
			delete(fs.m, k)
			close(f.done)
		}
	}
}
