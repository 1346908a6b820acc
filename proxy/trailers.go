package proxy

import (
	"bytes"
	"io"

	"github.com/valyala/fasthttp"
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
	// Scratch of drop: the trailer section as text, and the header
	// section's values of names the trailer repeats, each a name and a
	// value in kept (ends holds where each ends).
	lines []byte
	kept  []byte
	ends  []int
}

func (t *trailerDrop) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.drop()
	}
	return n, err
}

// drop removes the trailer fields fasthttp has read into the header. The
// only way fasthttp deletes a field removes every line of its name, from
// both sections, so the header section's lines of a name the trailer
// repeats are put back after it: a client must not remove a header a policy
// set by sending its name in the trailer.
func (t *trailerDrop) drop() {
	h := t.h
	names := h.PeekTrailerKeys()
	if len(names) == 0 {
		return
	}
	// "Name: value\r\n" per trailer field, names as h holds them.
	t.lines = append(t.lines[:0], h.TrailerHeader()...)
	t.kept, t.ends = t.kept[:0], t.ends[:0]
	for _, name := range names {
		// PeekAll lists the header section's values first, then the
		// trailer's.
		all := h.PeekAll(string(name))
		for _, v := range all[:max(len(all)-trailerLines(t.lines, name), 0)] {
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
}

// trailerLines counts the lines of name in a serialised trailer section.
func trailerLines(lines, name []byte) int {
	n := 0
	for len(lines) > 0 {
		line := lines
		if i := bytes.IndexByte(lines, '\n'); i >= 0 {
			line, lines = lines[:i], lines[i+1:]
		} else {
			lines = nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && bytes.Equal(line[:len(name)], name) {
			n++
		}
	}
	return n
}

func (t *trailerDrop) reset() {
	t.r, t.h = nil, nil
	t.lines, t.kept, t.ends = t.lines[:0], t.kept[:0], t.ends[:0]
}

var _ io.Reader = (*trailerDrop)(nil)
