package jsonthreat

import (
	"bytes"
	"io"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// holdMax is how much of a streamed body the policy holds before anything
// of it goes upstream: a body up to this size is checked whole first; the
// rest of a larger one is checked as it streams to the upstream, so that a
// body of any size costs the same memory.
const holdMax = 64 << 10

var scanners = sync.Pool{New: func() any { return new(Scanner) }}

var checkers = sync.Pool{New: func() any {
	c := new(checkedBody)
	c.rel.c = c
	return c
}}

// checkedKey is where a request keeps its checkedBody until fasthttp
// resets the request, which returns it to the pool.
type checkedKey struct{}

// HandleRequest checks the request body, reading it as it arrives and
// stopping at the first limit it breaks. A body that fits in holdMax is
// checked whole before the upstream sees any of it; the rest of a larger
// one is checked as it streams to the upstream, which never receives the
// bytes that break a limit nor the end of such a request (the gateway
// answers with the rejection). It does not allocate once its buffers have
// grown.
func (p *protector) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	req := &ctx.Request
	if !p.all && !isJSONType(req.Header.ContentType()) {
		return nil
	}
	if !req.IsBodyStream() {
		body := req.Body()
		if len(body) == 0 {
			return nil
		}
		if r := p.checkHead(req, int64(len(body))); r != nil {
			return r
		}
		s := scanners.Get().(*Scanner)
		defer scanners.Put(s)
		s.Reset(p.lim)
		return p.verdict(ex, s.Feed(body), s)
	}
	cl := req.Header.ContentLength()
	if cl == 0 || cl == -2 {
		return nil
	}
	if r := p.checkHead(req, int64(cl)); r != nil {
		return r
	}
	c := checkers.Get().(*checkedBody)
	c.s.Reset(p.lim)
	c.p, c.ex, c.r = p, ex, req.BodyStream()
	if cap(c.buf) < holdMax {
		c.buf = make([]byte, 0, holdMax)
	}
	buf := c.buf[:0]
	for len(buf) < holdMax {
		n, err := c.r.Read(buf[len(buf):holdMax])
		chunk := buf[len(buf) : len(buf)+n]
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > p.maxBody {
			c.release()
			return p.tooLarge
		}
		if v := c.s.Feed(chunk); v != OK {
			// The rest is not read: the gateway drops it after the answer.
			rej := p.verdict(ex, v, &c.s)
			c.release()
			return rej
		}
		if err == io.EOF {
			req.SetBody(buf)
			var rej *chain.Rejection
			if len(buf) > 0 {
				rej = p.verdict(ex, OK, &c.s)
			}
			c.release()
			return rej
		}
		if err != nil {
			c.release()
			return p.broken
		}
	}
	// More than holdMax: what was read goes first, the rest is checked
	// as the gateway forwards it (the gateway bounds its size).
	c.buf, c.head = buf, buf
	ctx.SetUserValue(checkedKey{}, &c.rel)
	req.SetBodyStream(c, cl)
	return nil
}

// checkedBody passes a request body through to the upstream, checking it:
// first the part read ahead, then the client's stream, each piece fed to
// the scanner before it is passed on (head is what is checked and not yet
// passed on). Once a piece breaks a limit it returns itself, a
// chain.BodyRejection, and passes nothing more. It is used by one request
// at a time.
type checkedBody struct {
	s    Scanner
	p    *protector
	ex   *chain.Exchange
	r    io.Reader
	buf  []byte
	head []byte
	rej  *chain.Rejection
	eof  bool
	rel  releaser
}

func (c *checkedBody) Read(b []byte) (int, error) {
	for len(b) > 0 {
		// The last byte checked is kept back until what follows it is
		// checked too, so that the upstream never has the whole body of
		// a request the policy refuses, even one that only ends wrong.
		if k := len(c.head); k > 1 || k == 1 && c.eof {
			if !c.eof {
				k--
			}
			n := copy(b, c.head[:k])
			c.head = c.head[n:]
			return n, nil
		}
		switch {
		case c.rej != nil:
			return 0, c
		case c.eof:
			return 0, io.EOF
		}
		k := copy(c.buf[:cap(c.buf)], c.head)
		n, err := c.r.Read(c.buf[k:cap(c.buf)])
		if n > 0 {
			if v := c.s.Feed(c.buf[k : k+n]); v != OK {
				return 0, c.fail(v)
			}
		}
		c.head = c.buf[:k+n]
		switch {
		case err == io.EOF:
			if v := c.s.Finish(); v != OK {
				return 0, c.fail(v)
			}
			c.eof = true
		case err != nil:
			return 0, err
		}
	}
	return 0, nil
}

func (c *checkedBody) fail(v Verdict) error {
	c.rej = c.p.rejects[v]
	c.ex.Details = append(c.ex.Details[:0], c.p.details[v]...)
	return c
}

// Error and Rejection make a checkedBody the chain.BodyRejection it
// returns.
func (c *checkedBody) Error() string               { return c.rej.Message }
func (c *checkedBody) Rejection() *chain.Rejection { return c.rej }

func (c *checkedBody) release() {
	c.p, c.ex, c.r, c.head, c.rej, c.eof = nil, nil, nil, nil, nil, false
	c.buf = c.buf[:0]
	checkers.Put(c)
}

// releaser returns its checkedBody to the pool when fasthttp resets the
// request's user values. It is apart from checkedBody, which must not be
// an io.Closer: fasthttp closes a body stream that is replaced, and the
// gateway replaces it with its own reader in front of this one.
type releaser struct{ c *checkedBody }

func (r *releaser) Close() error {
	r.c.release()
	return nil
}

// checkHead refuses a body of a known size over the limit, and an encoded
// one (compressed: its JSON cannot be read as sent).
func (p *protector) checkHead(req *fasthttp.Request, size int64) *chain.Rejection {
	if size > p.maxBody {
		return p.tooLarge
	}
	if enc := req.Header.ContentEncoding(); len(enc) > 0 && !bytes.EqualFold(enc, []byte("identity")) {
		return p.encoded
	}
	return nil
}

// verdict finishes the scan unless it failed already, and returns the
// rejection of what it found, with the limit in the details.
func (p *protector) verdict(ex *chain.Exchange, v Verdict, s *Scanner) *chain.Rejection {
	if v == OK {
		v = s.Finish()
	}
	if v == OK {
		return nil
	}
	ex.Details = append(ex.Details[:0], p.details[v]...)
	return p.rejects[v]
}

// ReadsRequestBody reports that the policy reads the body, so that it runs
// once a client waiting for 100 Continue has sent it.
func (p *protector) ReadsRequestBody() bool { return true }

// isJSONType reports whether a Content-Type is missing, application/json or
// a +json type, with any parameters.
func isJSONType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	if len(ct) == 0 || bytes.EqualFold(ct, []byte("application/json")) {
		return true
	}
	const suffix = "+json"
	return len(ct) > len(suffix) && bytes.EqualFold(ct[len(ct)-len(suffix):], []byte(suffix)) &&
		bytes.IndexByte(ct, '/') > 0
}

var (
	_ chain.BodyRejection = (*checkedBody)(nil)
	_ io.Closer           = (*releaser)(nil)
)
