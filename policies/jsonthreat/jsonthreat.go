package jsonthreat

import (
	"bytes"
	"io"
	"slices"
	"sync"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// minRead and maxRead bound the room a read of the body is given: a read
// takes what has arrived, up to maxRead, so a violation is found at most
// maxRead bytes after it arrived, whatever the buffer has grown to.
const (
	minRead = 4 << 10
	maxRead = 64 << 10
)

var scanners = sync.Pool{New: func() any { return new(Scanner) }}

// HandleRequest checks the request body, reading it as it arrives and
// stopping at the first limit it breaks; a body that passes is kept for
// the upstream. It does not allocate once its buffers have grown.
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
	s := scanners.Get().(*Scanner)
	defer scanners.Put(s)
	s.Reset(p.lim)
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	stream := req.BodyStream()
	for {
		if cap(buf.B)-len(buf.B) < minRead {
			buf.B = slices.Grow(buf.B, max(minRead, cap(buf.B)))
		}
		room := buf.B[len(buf.B):cap(buf.B)]
		if len(room) > maxRead {
			room = room[:maxRead]
		}
		// One byte past the limit tells a body at the limit from a
		// longer one.
		if left := p.maxBody + 1 - int64(len(buf.B)); int64(len(room)) > left {
			room = room[:left]
		}
		n, err := stream.Read(room)
		chunk := buf.B[len(buf.B) : len(buf.B)+n]
		buf.B = buf.B[:len(buf.B)+n]
		if int64(len(buf.B)) > p.maxBody {
			return p.tooLarge
		}
		if v := s.Feed(chunk); v != OK {
			// The rest is not read: the gateway drops it after the answer.
			return p.verdict(ex, v, s)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return p.broken
		}
	}
	req.SetBody(buf.B)
	if len(buf.B) == 0 {
		return nil
	}
	return p.verdict(ex, OK, s)
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
