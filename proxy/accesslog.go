package proxy

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// accessLog writes one JSON line per request from a background goroutine.
// The request path only formats into a pooled buffer and hands it over;
// when the writer falls behind, lines are dropped and counted rather than
// slowing requests down.
type accessLog struct {
	mu      sync.RWMutex // close takes it to stop senders; guards closed
	closed  bool
	w       io.Writer
	lines   chan *[]byte
	dropped atomic.Uint64
	done    chan struct{}
	logger  *slog.Logger
	// client is $client.id, logged when a policy provided it; the zero
	// Value when no registered policy provides one.
	client chain.Value
}

var lineBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func newAccessLog(w io.Writer, logger *slog.Logger) *accessLog {
	a := &accessLog{w: w, lines: make(chan *[]byte, 8192), done: make(chan struct{}), logger: logger}
	if v, ok := chain.LookupValue("client.id"); ok {
		a.client = v.Value
	}
	go a.run()
	return a
}

func (a *accessLog) run() {
	defer close(a.done)
	for b := range a.lines {
		if _, err := a.w.Write(*b); err != nil {
			a.dropped.Add(1)
		}
		*b = (*b)[:0]
		lineBufPool.Put(b)
	}
}

func (a *accessLog) close() {
	a.mu.Lock()
	a.closed = true
	close(a.lines)
	a.mu.Unlock()
	<-a.done
	if n := a.dropped.Load(); n > 0 {
		a.logger.Warn("access log lines dropped because the writer fell behind", "lines", n)
	}
}

func (a *accessLog) log(ctx *fasthttp.RequestCtx, ex *chain.Exchange, path []byte, route string, status int, start time.Time) {
	bp := lineBufPool.Get().(*[]byte)
	b := *bp
	now := time.Now()
	b = append(b, `{"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":"access","requestId":`...)
	b = appendJSONBytes(b, ex.RequestID)
	b = append(b, `,"remote":`...)
	b = appendJSONBytes(b, ex.RemoteAddr)
	b = append(b, `,"method":`...)
	b = appendJSONBytes(b, ctx.Method())
	b = append(b, `,"path":`...)
	b = appendJSONBytes(b, path)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"durationMs":`...)
	b = strconv.AppendFloat(b, float64(now.Sub(start).Microseconds())/1000, 'f', 3, 64)
	if id := ex.Value(a.client); len(id) > 0 {
		b = append(b, `,"client":`...)
		b = appendJSONBytes(b, id)
	}
	if ex.Rejected != nil {
		b = append(b, `,"policy":`...)
		b = appendJSONString(b, ex.Rejected.Policy)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, ex.Rejected.Reason)
	}
	b = append(b, "}\n"...)
	*bp = b
	a.mu.RLock()
	sent := false
	if !a.closed {
		select {
		case a.lines <- bp:
			sent = true
		default:
		}
	}
	a.mu.RUnlock()
	if !sent {
		a.dropped.Add(1)
		*bp = b[:0]
		lineBufPool.Put(bp)
	}
}
