package proxy

import (
	"bytes"
	"io"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// trailerDrop is a chunked request's body as the policies and the upstream
// read it: the client's stream, whose trailer section (the fields after the
// last chunk) is dropped as it ends. One per request, in its pooled state.
//
// fasthttp reads those fields into the request's header, where Peek finds
// them beside the header section's, and sends them on after a chunked body
// it forwards. They arrive after every policy that reads headers has run:
// an upstream that reads them as headers (a fasthttp server's Peek does,
// as Apache's MergeTrailers and Tomcat before allowedTrailerHeaders did)
// would take a header a policy removed, or set, from the client, as in
// CVE-2013-5704. They go nowhere, as nginx and Envoy (without
// enable_trailers) do it; the header section stays as it was.
type trailerDrop struct {
	r io.Reader
	h *fasthttp.RequestHeader
	// refused: the trailer section had more than maxTrailerFields fields;
	// the stream failed with errTrailerFields instead of ending.
	refused bool
	// Scratch of drop: the header section's values of names the trailer
	// repeats, each a name and a value in kept (ends holds where each
	// ends); and how many trailer lines each trailer name has.
	kept  []byte
	ends  []int
	lines [maxTrailerFields]int
}

// maxTrailerFields bounds the fields of a request's trailer section. Real
// trailers carry a checksum or a status, a handful of fields; a trailer
// of thousands of fields (64 KiB of empty ones fit in the read buffer)
// only costs the gateway: fasthttp deletes a field by its name alone, in
// a pass over every field, so dropping n names costs n passes. Other
// servers bound trailers too: Go's net/http counts them with the header's
// fields, hyper bounds their bytes. Each pass also goes over the header's
// fields: with a 64 KiB header of empty fields, 32 names cost 2.5 ms per
// request, 8 a quarter of it.
const maxTrailerFields = 8

func (t *trailerDrop) Read(p []byte) (int, error) {
	if t.refused {
		return 0, errTrailerFields
	}
	n, err := t.r.Read(p)
	if err == io.EOF && !t.drop() {
		t.refused = true
		return n, errTrailerFields
	}
	return n, err
}

// drop removes the trailer fields fasthttp has read into the header, and
// reports false, removing none, if there are more than maxTrailerFields:
// the request is refused then, and its body never ends for the upstream.
//
// The only way fasthttp deletes a field removes every line of its name,
// from both sections, so the header section's lines of a name the trailer
// repeats are put back after it: a client must not remove a header a
// policy set by sending its name in the trailer. Its work is a pass over
// the trailer section, and a few over the header per trailer name.
func (t *trailerDrop) drop() bool {
	h := t.h
	names := h.PeekTrailerKeys()
	if len(names) == 0 {
		return true
	}
	if len(names) > maxTrailerFields {
		return false
	}
	// "Name: value\r\n" per trailer field, names as h holds them, and the
	// blank line that ends the section: one pass counts each name's lines.
	clear(t.lines[:len(names)])
	text, fields := h.TrailerHeader(), 0
	for len(text) > 2 {
		i := bytes.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		line := text[:i]
		text = text[i+1:]
		if fields++; fields > maxTrailerFields {
			return false
		}
		if j := bytes.IndexByte(line, ':'); j >= 0 {
			for k, name := range names {
				if bytes.Equal(line[:j], name) {
					t.lines[k]++
					break
				}
			}
		}
	}
	t.kept, t.ends = t.kept[:0], t.ends[:0]
	for k, name := range names {
		// PeekAll lists the header section's values first, then the
		// trailer's.
		// PeekAll copies the name before it returns.
		all := h.PeekAll(unsafe.String(unsafe.SliceData(name), len(name)))
		for _, v := range all[:max(len(all)-t.lines[k], 0)] {
			t.kept = append(t.kept, name...)
			t.ends = append(t.ends, len(t.kept))
			t.kept = append(t.kept, v...)
			t.ends = append(t.ends, len(t.kept))
		}
	}
	for _, name := range names {
		h.DelBytes(name)
	}
	// Forgets the names (their values are gone): a field set from now on
	// is a header again.
	h.Del(fasthttp.HeaderTrailer)
	for i, start := 0, 0; i+1 < len(t.ends); i += 2 {
		name, value := t.kept[start:t.ends[i]], t.kept[t.ends[i]:t.ends[i+1]]
		h.AddBytesKV(name, value)
		start = t.ends[i+1]
	}
	return true
}

// trailerRefusal is the error a refused trailer section fails the body's
// stream with: a chain.BodyRejection, so that a policy reading the body
// and the gateway forwarding it answer with errTrailerFields.
type trailerRefusal struct{}

func (trailerRefusal) Error() string               { return errTrailerFieldsRejection.Message }
func (trailerRefusal) Rejection() *chain.Rejection { return errTrailerFieldsRejection }

var errTrailerFields error = trailerRefusal{}

func (t *trailerDrop) reset() {
	t.r, t.h, t.refused = nil, nil, false
	t.kept, t.ends = t.kept[:0], t.ends[:0]
}

var (
	_ io.Reader           = (*trailerDrop)(nil)
	_ chain.BodyRejection = trailerRefusal{}
)
