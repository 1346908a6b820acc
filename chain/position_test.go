package chain

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// TestValuePos: the position of a place inside a value is exact whatever
// the value's quoting: escapes, ” and folded lines shift columns and
// lines, anchors and tags precede the value.
func TestValuePos(t *testing.T) {
	// Each document's value of k holds MARK once, decoded and as written.
	for _, doc := range []string{
		"k: a b MARK c\n",
		"k: 'MARK'\n",
		`k: "\t\"x\" \u00e9 \\ \x41 MARK"` + "\n",
		`k: "#[attributes.headers[\"x-api-key\"] ++ MARK]"` + "\n",
		"k: 'it''s ''q'' MARK'\n",
		"k: \"first\n  second MARK\"\n",
		"k: \"first\n\n   \n  second MARK\"\n",
		"k: \"first\\\n    MARK\"\n",
		"k: 'one\n  two\n\n  MARK'\n",
		"k: plain\n  continued MARK\n",
		"k: |\n  line1\n\n  x MARK\n",
		"k: |-\n    #[a ++\n      MARK]\n",
		"k: >-\n  a\n  b\n\n  c MARK\n",
		"k: >\n  a\n    more\n  MARK\n",
		"k: &anchor !!str \"x MARK\"\n",
		"m: {j: 1, k: \"a\\\"b MARK\", l: 2}\n",
		"k: \"ééé😀 MARK\"\n",
		"# a comment\nother: 1\nk:    \"\\u00e9\\U0001F600MARK\"\n",
	} {
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		node := lookup(root.Content[0], "k")
		off := strings.Index(node.Value, "MARK")
		if off < 0 {
			t.Fatalf("%q: value %q lacks MARK", doc, node.Value)
		}
		i := strings.Index(doc, "MARK")
		wantLine := strings.Count(doc[:i], "\n") + 1
		wantCol := utf8.RuneCountInString(doc[strings.LastIndexByte(doc[:i], '\n')+1:i]) + 1
		line, col, ok := scalarPos([]byte(doc), node, off)
		if !ok || line != wantLine || col != wantCol {
			t.Errorf("%q: MARK at %d:%d (ok %v), want %d:%d", doc, line, col, ok, wantLine, wantCol)
		}
		// Just past the value: the closing quote, or the end of the line.
		if _, _, ok := scalarPos([]byte(doc), node, len(node.Value)); !ok {
			t.Errorf("%q: the end of the value is not found", doc)
		}
	}
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
		if v := lookup(n.Content[i+1], key); v != nil {
			return v
		}
	}
	return nil
}

// TestValuePosFallback: when the file is gone or holds something else at
// the value's place, the position is counted from the node, as if the
// value were written on its line with the usual escapes.
func TestValuePosFallback(t *testing.T) {
	doc := `k: "a\"b MARK"` + "\n"
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	node := lookup(root.Content[0], "k")
	off := strings.Index(node.Value, "MARK")
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, c := ValuePos(path, node, off); l != 1 || c != 10 {
		t.Errorf("from the file: %d:%d, want 1:10", l, c)
	}
	if err := os.WriteFile(path, []byte(`k:       "a\"b MARK"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{path, filepath.Join(t.TempDir(), "gone.yaml"), ""} {
		if l, c := ValuePos(file, node, off); l != 1 || c != 10 {
			t.Errorf("%q: %d:%d, want 1:10 counted from the node", file, l, c)
		}
	}
}

// offsetError is a ValueError for the tests.
type offsetError struct {
	src string
	off int
}

func (e offsetError) Error() string              { return "bad" }
func (e offsetError) ValueOffset() (string, int) { return e.src, e.off }

// TestErrorfPlacesValueErrors: Errorf given a ValueError about its node's
// value points at the place in the value; about another value, at the
// node.
func TestErrorfPlacesValueErrors(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte("k: 'it''s here'\n"), &root); err != nil {
		t.Fatal(err)
	}
	node := lookup(root.Content[0], "k")
	pe := Errorf(node, "x: %v", offsetError{"it's here", 5}).(*ParamError)
	if pe.Line != 1 || pe.Col != 11 {
		t.Errorf("ValueError in the value: %d:%d, want 1:11", pe.Line, pe.Col)
	}
	pe = Errorf(node, "x: %v", offsetError{"another value", 5}).(*ParamError)
	if pe.Line != 1 || pe.Col != 4 {
		t.Errorf("ValueError about another value: %d:%d, want the node's 1:4", pe.Line, pe.Col)
	}
}
