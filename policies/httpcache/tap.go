package httpcache

import (
	"sync"

	"github.com/valyala/bytebufferpool"
)

// tap copies a streamed answer's body as it goes to the client, and
// stores the answer once the body has come whole: within MaxEntryBytes,
// and within the cache's budget for bodies being copied (maxBytes in all,
// beside the entries), or not at all. It ends the flight the request led.
type tap struct {
	w    *write
	buf  *bytebufferpool.ByteBuffer
	over bool
	// held is what the tap counts against the cache's budget.
	held int64
}

var tapPool = sync.Pool{New: func() any { return new(tap) }}

func acquireTap(w *write) *tap {
	t := tapPool.Get().(*tap)
	t.w, t.buf = w, bytebufferpool.Get()
	return t
}

// TapWrite copies p, or gives up on a body over the bounds.
func (t *tap) TapWrite(p []byte) {
	if t.over {
		return
	}
	c := t.w.c
	if t.buf.Len()+len(p) > MaxEntryBytes || c.teeing.Add(int64(len(p))) > c.p.maxBytes {
		if t.buf.Len()+len(p) <= MaxEntryBytes {
			c.teeing.Add(-int64(len(p)))
		}
		t.giveUp()
		return
	}
	t.held += int64(len(p))
	_, _ = t.buf.Write(p)
}

func (t *tap) giveUp() {
	t.over = true
	t.w.c.teeing.Add(-t.held)
	t.held = 0
	bytebufferpool.Put(t.buf)
	t.buf = nil
}

// TapClose stores the answer when its body came whole, and ends the flight.
func (t *tap) TapClose(complete bool) {
	w := t.w
	c := w.c
	if complete && !t.over {
		w.e.body = append([]byte(nil), t.buf.B...)
		w.put()
	} else {
		c.pass([]byte(w.key), c.p.ttl)
	}
	if !t.over {
		t.giveUp()
	}
	if w.id != 0 {
		c.fl.end([]byte(w.key), w.id)
	}
	t.w, t.over, t.held = nil, false, 0
	tapPool.Put(t)
}
