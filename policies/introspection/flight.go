package introspection

import (
	"errors"
	"sync"
)

var errFlightAborted = errors.New("the introspection call for this token failed in another request")

// group makes concurrent requests for the same uncached token share one
// call to the introspection server. It is safe for concurrent use.
type group struct {
	mu    sync.Mutex
	calls map[key]*call
}

type call struct {
	done chan struct{}
	e    *entry
	err  error
}

// do runs fn for k unless a call for k is already running, in which case it
// waits for that call and returns its result.
func (g *group) do(k *key, fn func() (*entry, error)) (*entry, error) {
	g.mu.Lock()
	if c, ok := g.calls[*k]; ok {
		g.mu.Unlock()
		<-c.done
		return c.e, c.err
	}
	if g.calls == nil {
		g.calls = make(map[key]*call)
	}
	c := &call{done: make(chan struct{})}
	g.calls[*k] = c
	g.mu.Unlock()

	// A panic in fn must still release the waiters, with an error rather
	// than a nil entry.
	c.err = errFlightAborted
	defer func() {
		g.mu.Lock()
		delete(g.calls, *k)
		g.mu.Unlock()
		close(c.done)
	}()
	c.e, c.err = fn()
	return c.e, c.err
}
