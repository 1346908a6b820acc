package jsonthreat

import (
	"bytes"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

var unlimited = Limits{Depth: -1, String: -1, Array: -1, Object: -1, Name: -1}

// scan feeds doc to a scanner in pieces of size n (all at once when n is 0).
func scan(lim Limits, doc []byte, n int) Verdict {
	var s Scanner
	s.Reset(lim)
	if n <= 0 {
		n = len(doc) + 1
	}
	for len(doc) > 0 {
		k := min(n, len(doc))
		if v := s.Feed(doc[:k]); v != OK {
			return v
		}
		doc = doc[k:]
	}
	return s.Finish()
}

func TestScannerSyntax(t *testing.T) {
	valid := []string{
		`0`, `-0`, `1.5e+10`, `-12.25E-3`, `true`, `false`, `null`, `""`, ` "a" `,
		`[]`, `{}`, `[1,"a",{"b":[null,true]}]`, "{\n\t\"a\" : 1 ,\r\"b\":{}}",
		`"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t"`, `"é😀"`, `"\ud800"`, `[[[[[]]]]]`, `1E5`, `0.0`,
	}
	for _, doc := range valid {
		for _, n := range []int{0, 1, 2, 3} {
			if v := scan(unlimited, []byte(doc), n); v != OK {
				t.Errorf("%q in pieces of %d: %d, want OK", doc, n, v)
			}
		}
	}
	invalid := []string{
		``, ` `, `01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `tru`, `nul`, `True`, `[1,]`, `{"a":1,}`,
		`{"a"}`, `{"a":}`, `{1:2}`, `[1 2]`, `[`, `]`, `{]`, `[}`, `"abc`, `"\x"`, `"\u12G4"`,
		"\"\x01\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"",
		`1 2`, `{} {}`, "\xef\xbb\xbf{}", `[1,2]]`, `{"a":1}}`, `NaN`, `"a"x`,
	}
	for _, doc := range invalid {
		for _, n := range []int{0, 1} {
			if v := scan(unlimited, []byte(doc), n); v != Invalid {
				t.Errorf("%q in pieces of %d: %d, want Invalid", doc, n, v)
			}
		}
	}
}

func TestScannerLimits(t *testing.T) {
	f := func(lim Limits, doc string, want Verdict) {
		t.Helper()
		for _, n := range []int{0, 1, 7} {
			if v := scan(lim, []byte(doc), n); v != want {
				t.Errorf("%+v %q in pieces of %d: %d, want %d", lim, doc, n, v, want)
			}
		}
	}
	with := func(set func(*Limits)) Limits {
		l := unlimited
		set(&l)
		return l
	}
	depth := func(n int64) Limits { return with(func(l *Limits) { l.Depth = n }) }
	f(depth(0), `1`, OK)
	f(depth(0), `[]`, TooDeep)
	f(depth(2), `{"a":[1]}`, OK)
	f(depth(2), `{"a":[{}]}`, TooDeep)
	f(depth(2), `[[],[],{"a":1}]`, OK)
	f(depth(2), `[[],[],{"a":[]}]`, TooDeep)
	f(depth(2), `[[],[],{"a":[[]]}]`, TooDeep)

	str := func(n int64) Limits { return with(func(l *Limits) { l.String = n }) }
	f(str(3), `["abc","é😀x"]`, OK)
	f(str(3), `"abcd"`, StringTooLong)
	f(str(3), `"\u00e9\ud83d\ude00\n"`, OK)
	f(str(3), `"\ud83d\ude00\ud83d\ude00\ud83d\ude00\u0041"`, StringTooLong)
	f(str(1), `{"a long name":"x"}`, OK)
	f(str(0), `""`, OK)

	name := func(n int64) Limits { return with(func(l *Limits) { l.Name = n }) }
	f(name(3), `{"abc":"a long value"}`, OK)
	f(name(3), `{"abc":{"abcd":1}}`, NameTooLong)
	f(name(3), `["abcd"]`, OK)

	arr := func(n int64) Limits { return with(func(l *Limits) { l.Array = n }) }
	f(arr(2), `[1,[1,2],{"a":1,"b":2,"c":3}]`, TooManyOrOK(3, 2))
	f(arr(3), `[1,[1,2],{"a":1,"b":2,"c":3}]`, OK)
	f(arr(2), `[[1,2],[3,4]]`, OK)
	f(arr(2), `[[1,2],[3,4,5]]`, ArrayTooLong)
	f(arr(2), `[[1,2,[1]],3]`, ArrayTooLong)
	f(arr(2), `[[[[1,2]]],4]`, OK)
	f(arr(2), `[[[[1,2]]],4,5]`, ArrayTooLong)
	f(arr(0), `[]`, OK)
	f(arr(0), `[0]`, ArrayTooLong)

	obj := func(n int64) Limits { return with(func(l *Limits) { l.Object = n }) }
	f(obj(2), `{"a":{"x":1,"y":2},"b":[1,2,3,4]}`, OK)
	f(obj(2), `{"a":{"x":1,"y":2},"b":2,"c":3}`, ObjectTooLong)
	f(obj(2), `{"a":{"x":1,"y":2,"z":3}}`, ObjectTooLong)
	f(obj(2), `{"a":{"x":{"p":1,"q":2}},"b":1}`, OK)

	// The first violation wins, invalid syntax after it does not matter.
	f(str(2), `["abc" garbage`, StringTooLong)
	f(arr(1), `[1,2 garbage`, ArrayTooLong)
	f(unlimited, `[1,2 garbage`, Invalid)
}

// TooManyOrOK picks the verdict of an array of n elements under a limit.
func TooManyOrOK(n, limit int) Verdict {
	if n > limit {
		return ArrayTooLong
	}
	return OK
}

// TestScannerNesting: unlimited depth stops at MaxNesting, however deep the
// body goes, and a scanner costs the same memory for any depth.
func TestScannerNesting(t *testing.T) {
	deep := func(n int) []byte {
		return append(bytes.Repeat([]byte("["), n), bytes.Repeat([]byte("]"), n)...)
	}
	if v := scan(unlimited, deep(MaxNesting), 0); v != OK {
		t.Errorf("%d levels: %d, want OK", MaxNesting, v)
	}
	if v := scan(unlimited, deep(MaxNesting+1), 0); v != TooNested {
		t.Errorf("%d levels: %d, want TooNested", MaxNesting+1, v)
	}
	counted := unlimited
	counted.Array = 5
	if v := scan(counted, deep(1_000_000), 4096); v != TooNested {
		t.Errorf("a million levels with an array limit: %d, want TooNested", v)
	}
	var s Scanner
	s.Reset(counted)
	if cap(s.counts) != MaxNesting {
		t.Errorf("counts hold %d levels, want %d", cap(s.counts), MaxNesting)
	}
	s.Reset(Limits{Depth: 3, String: -1, Array: 1, Object: -1, Name: -1})
	if v := scan(s.lim, deep(4), 1); v != TooDeep {
		t.Errorf("4 levels under maxContainerDepth 3: %d", v)
	}
}

// repeatReader yields head, then body n times, then tail, without holding
// more than one copy of each.
type repeatReader struct {
	parts [][]byte
	n     int
	i     int
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for {
		if r.i >= len(r.parts) {
			return 0, io.EOF
		}
		part := r.parts[r.i]
		if r.off < len(part) {
			k := copy(p, part[r.off:])
			r.off += k
			return k, nil
		}
		r.off = 0
		if r.i == 1 && r.n > 1 {
			r.n--
			continue
		}
		r.i++
	}
}

// TestScannerGigabyte scans a 1 GiB document (an array of a quarter
// million 4 KiB strings) with its string limit checked, and counts what the
// scan allocates: nothing that grows with the document.
func TestScannerGigabyte(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("scans a gigabyte")
	}
	item := []byte(`"` + strings.Repeat("x", 4093) + `",`)
	r := &repeatReader{parts: [][]byte{[]byte("["), item, []byte(`"end"]`)}, n: 1 << 18}
	lim := unlimited
	lim.String, lim.Array = 4093, 1<<18+1
	var s Scanner
	s.Reset(lim)
	buf := make([]byte, 64<<10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	total := 0
	for {
		n, err := r.Read(buf)
		total += n
		if v := s.Feed(buf[:n]); v != OK {
			t.Fatalf("verdict %d after %d bytes", v, total)
		}
		if err == io.EOF {
			break
		}
	}
	if v := s.Finish(); v != OK {
		t.Fatalf("verdict %d", v)
	}
	runtime.ReadMemStats(&after)
	if total < 1<<30 {
		t.Fatalf("scanned %d bytes, want a gigabyte", total)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Errorf("scanning %d bytes allocated %d bytes", total, grew)
	}
}

// FuzzScanner holds the scanner's syntax to encoding/json's and UTF-8's,
// whatever the pieces it is fed in.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}],"c":"\u00e9"}`, `[1e5,-0.5,true,false]`, `"\ud83d\ude00"`,
		"\"\xe2\x82\xac\"", `{"a":}`, `[1,]`, "\"\xed\xa0\x80\"", ` 0 `, `01`} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, doc []byte, piece uint8) {
		want := json.Valid(doc) && utf8.Valid(doc)
		got := scan(unlimited, doc, int(piece))
		if (got == OK) != want {
			t.Errorf("%q in pieces of %d: scanner %d, encoding/json and utf8 valid: %v", doc, piece, got, want)
		}
		if got != OK && got != Invalid {
			t.Errorf("%q: verdict %d without limits", doc, got)
		}
	})
}

// FuzzScannerLimits holds the scanner's limit verdicts on valid documents
// to a reference that walks encoding/json's tokens.
func FuzzScannerLimits(f *testing.F) {
	f.Add([]byte(`{"ab":[1,2,{"c":"xyz"}],"d":"\u00e9\u00e9"}`), int8(2), int8(2), int8(2), int8(2), int8(2))
	f.Add([]byte(`[[[1]],[2,3,4]]`), int8(3), int8(-1), int8(2), int8(-1), int8(-1))
	f.Add([]byte(`{"a":{"b":{"c":{}}}}`), int8(-1), int8(-1), int8(-1), int8(1), int8(0))
	f.Fuzz(func(t *testing.T, doc []byte, depth, str, arr, obj, name int8) {
		if !json.Valid(doc) || !utf8.Valid(doc) {
			return
		}
		lim := Limits{Depth: clampLimit(depth), String: clampLimit(str), Array: clampLimit(arr), Object: clampLimit(obj), Name: clampLimit(name)}
		want := reference(t, lim, doc)
		if got := scan(lim, doc, 3); got != want {
			t.Errorf("%+v %q: scanner %d, reference %d", lim, doc, got, want)
		}
	})
}

func clampLimit(v int8) int64 {
	if v < 0 {
		return -1
	}
	return int64(v % 8)
}

// reference finds the first limit a valid document breaks, token by token.
func reference(t *testing.T, lim Limits, doc []byte) Verdict {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	type frame struct {
		object bool
		n      int64
		name   bool // an object's next string is a name
	}
	var stack []frame
	over := func(n, limit int64) bool { return limit >= 0 && n > limit }
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return OK
		}
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		isName := false
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			closing := tok == json.Delim(']') || tok == json.Delim('}')
			switch {
			case closing:
			case top.object && top.name:
				isName = true
				top.n++
				top.name = false
				if over(top.n, lim.Object) {
					return ObjectTooLong
				}
			case top.object:
				top.name = true
			default:
				top.n++
				if over(top.n, lim.Array) {
					return ArrayTooLong
				}
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '[' || v == '{' {
				if over(int64(len(stack)+1), lim.Depth) {
					return TooDeep
				}
				stack = append(stack, frame{object: v == '{', name: v == '{'})
			} else {
				stack = stack[:len(stack)-1]
			}
		case string:
			n := int64(utf8.RuneCountInString(v))
			if isName && over(n, lim.Name) {
				return NameTooLong
			}
			if !isName && over(n, lim.String) {
				return StringTooLong
			}
		}
	}
}
