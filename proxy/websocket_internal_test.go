package proxy

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// wsFrame builds a frame header for a payload of n bytes, then the payload.
func wsFrame(opcode byte, n int, masked bool) []byte {
	b := []byte{0x80 | opcode, 0}
	switch {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b[1] |= 0x80
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

// TestFrameScanBoundaries: fed in pieces of any size, frameScan is at a
// boundary exactly where a frame ends, for each length encoding, masked or
// not, and notes a close frame.
func TestFrameScanBoundaries(t *testing.T) {
	var stream []byte
	ends := map[int]bool{0: true}
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		for _, masked := range []bool{false, true} {
			stream = append(stream, wsFrame(0x2, n, masked)...)
			ends[len(stream)] = true
		}
	}
	closeStart := len(stream)
	stream = append(stream, wsFrame(0x8, 2, true)...)
	ends[len(stream)] = true
	for _, piece := range []int{1, 3, 7, 1000, len(stream)} {
		var f frameScan
		for off := 0; off < len(stream); {
			n := min(piece, len(stream)-off)
			f.scan(stream[off : off+n])
			off += n
			if f.closed && off <= closeStart {
				t.Fatalf("pieces of %d: closed before the close frame, at %d", piece, off)
			}
			if got := f.atBoundary(); got != ends[off] && (piece == 1 || got) {
				// With pieces over 1 byte a piece may end inside a frame;
				// it must never look like a boundary there.
				t.Fatalf("pieces of %d: at %d boundary %v, want %v", piece, off, got, ends[off])
			}
		}
		if !f.atBoundary() || !f.closed {
			t.Fatalf("pieces of %d: at the end boundary %v, closed %v; want both", piece, f.atBoundary(), f.closed)
		}
	}
}

// stuckConn is the connection of an end that reads nothing: a write waits
// for its deadline or for Close, and Close takes closeDelay, as a TLS
// connection's close_notify to such an end waits for its own deadline.
type stuckConn struct {
	net.Conn
	mu         sync.Mutex
	deadline   time.Time
	writes     int
	closeDelay time.Duration
	closed     chan struct{}
	once       sync.Once
}

func newStuckConn(closeDelay time.Duration) *stuckConn {
	return &stuckConn{closed: make(chan struct{}), closeDelay: closeDelay}
}

func (c *stuckConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *stuckConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	wait := time.Until(c.deadline)
	c.mu.Unlock()
	select {
	case <-time.After(wait):
		return 0, os.ErrDeadlineExceeded
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *stuckConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		time.Sleep(c.closeDelay)
	})
	return nil
}

// TestShutdownDoesNotWaitForEachStuckEnd: tunnels whose ends read nothing
// each get their close frames, and hold the gateway's shutdown for one
// grace period and one close in all, not for a close frame's write timeout
// and a close_notify's after another.
func TestShutdownDoesNotWaitForEachStuckEnd(t *testing.T) {
	g := &Gateway{}
	m := newWSMetrics(metrics.NewSet(), `"r"`)
	const closeDelay = time.Second
	var open []*tunnel
	var ends []*stuckConn
	for range 4 {
		up, client := newStuckConn(0), newStuckConn(closeDelay)
		tn := &tunnel{g: g, m: m, up: up, closeUp: func() { _ = up.Close() }, client: client, done: make(chan struct{})}
		tn.state.Store(tunnelOpen)
		open = append(open, tn)
		ends = append(ends, up, client)
	}
	start := time.Now()
	shut(context.Background(), open)
	if took, want := time.Since(start), goingAwayGrace+closeDelay; took > want+time.Second {
		t.Errorf("shutting 4 tunnels whose ends read nothing took %s, want about %s", took, want)
	}
	for i, tn := range open {
		select {
		case <-tn.done:
		default:
			t.Errorf("tunnel %d still open", i)
		}
	}
	for i, c := range ends {
		c.mu.Lock()
		if c.writes == 0 {
			t.Errorf("end %d was sent no close frame", i)
		}
		c.mu.Unlock()
	}
}
