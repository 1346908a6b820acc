package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	goccyyaml "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/internal/match"
	"github.com/flexgate/flexgate/internal/userfile"
)

// Load reads the YAML files and directories in paths, in order, and returns
// the merged, validated config. A directory contributes its *.yaml and
// *.yml files, and those of its subdirectories, in name order; names that
// start with "." are skipped (a Kubernetes ConfigMap mount's ..data and
// ..<timestamp> entries, hidden files), and a symlink is followed unless it
// leads to a directory already read (a loop).
//
// Every problem of every file is reported: the error is an *Errors whose
// List holds one *Error per problem, each placed at file:line:col. Load
// keeps no state between calls and is safe for concurrent use, as long as
// nothing changes the environment meanwhile.
func Load(paths []string) (*Config, error) { return LoadWith(paths, LoadOptions{}) }

// LoadOptions steer LoadWith. The zero LoadOptions is Load's, and what
// `flexgate run` and `flexgate validate` use: no config file, flag or
// environment variable sets them.
type LoadOptions struct {
	// EphemeralPorts accepts port 0 in a Flex ApiInstance's address, which
	// listens on a port the kernel picks: the gateway's end-to-end tests
	// serve Flex configs so, never on fixed ports. A user's gateway must
	// not, as its clients could not know the port.
	EphemeralPorts bool
}

// LoadWith is Load with opts.
func LoadWith(paths []string, opts LoadOptions) (*Config, error) {
	l := newLoader()
	l.opts = opts
	if len(paths) == 0 {
		l.errs.add(Pos{}, "no config files given; pass a YAML file or a directory of them")
		return nil, l.errs.err()
	}
	h := sha256.New()
	for _, path := range l.collect(paths) {
		data, err := userfile.Read(path)
		if err != nil {
			l.errs.add(Pos{File: path}, "cannot read config file: %v", unwrapPath(err))
			continue
		}
		// Length prefixes keep "ab"+"c" and "a"+"bc" from hashing alike.
		fmt.Fprintf(h, "%d:%s\x00%d:", len(path), path, len(data))
		h.Write(data)
		l.file(path, data)
	}
	for _, f := range l.formats {
		f.f.Finish(&Build{l: l})
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	if len(l.cfg.Routes) == 0 {
		l.errs.add(Pos{File: strings.Join(paths, ", ")}, "the config has no routes: a gateway without routes answers every request with 404; "+
			"add spec.routes to a Gateway, or an ApiInstance with services or a route policy")
		return nil, l.errs.err()
	}
	if !l.limitsSet {
		l.cfg.Limits = DefaultLimits
	}
	l.cfg.Warnings = append(l.cfg.Warnings, shadowWarnings(l.cfg.Routes)...)
	l.cfg.Hash = hex.EncodeToString(h.Sum(nil))
	return l.cfg, nil
}

// loader merges documents into one Config and remembers where each name
// was first defined, so that a clash can name both places. It is not safe
// for concurrent use.
type loader struct {
	cfg  *Config
	errs errorList

	listenerNames map[string]Pos
	listenerPorts map[int][]portUse
	routeIDs      map[string]Pos
	patterns      map[string][]patternUse
	clients       map[string]Pos
	limitsSet     bool
	limitsPos     Pos
	opts          LoadOptions
	// formats are the Formats this load has met, in order.
	formats []loadedFormat
}

type portUse struct {
	host string
	pos  Pos
}

type patternUse struct {
	route   string
	methods []string
	cond    match.Spec
	pos     Pos
}

func newLoader() *loader {
	return &loader{
		cfg:           &Config{},
		listenerNames: map[string]Pos{},
		listenerPorts: map[int][]portUse{},
		routeIDs:      map[string]Pos{},
		patterns:      map[string][]patternUse{},
		clients:       map[string]Pos{},
	}
}

// collect expands paths into the files to read, each once.
func (l *loader) collect(paths []string) []string {
	w := &walker{errs: &l.errs, warn: l.warn, seen: map[string]bool{}}
	for _, p := range paths {
		w.path(p)
	}
	return w.files
}

// WatchDirs returns the directories whose changes can change what Load
// reads from paths: each directory named and every subdirectory it reads,
// and the directory of each file named. It is safe for concurrent use.
func WatchDirs(paths []string) []string {
	w := &walker{errs: &errorList{}, warn: func(Pos, string, ...any) {}, seen: map[string]bool{}}
	for _, p := range paths {
		w.path(p)
	}
	return w.dirs
}

// walker finds the files of a config: the files named, and the YAML files
// under the directories named.
type walker struct {
	errs  *errorList
	warn  func(pos Pos, format string, args ...any)
	files []string
	dirs  []string
	// seen holds the real paths of the files and directories taken, so
	// that a file named twice is read once and a symlink loop ends.
	seen map[string]bool
}

// realPath names a file or directory by the path with every symlink
// resolved, so that two ways to it compare equal.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func (w *walker) path(p string) {
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		w.errs.add(Pos{File: p}, "config path does not exist; pass an existing YAML file or directory")
		return
	}
	if err != nil {
		w.errs.add(Pos{File: p}, "cannot read config path: %v", unwrapPath(err))
		return
	}
	if !st.IsDir() {
		w.addDir(filepath.Dir(p))
		w.addFile(p)
		return
	}
	before := len(w.files)
	w.dir(p)
	if len(w.files) == before {
		w.errs.add(Pos{File: p}, "config directory has no *.yaml or *.yml files")
	}
}

func (w *walker) addFile(p string) {
	if key := realPath(p); !w.seen[key] {
		w.seen[key] = true
		w.files = append(w.files, p)
	}
}

func (w *walker) addDir(p string) {
	for _, d := range w.dirs {
		if d == p {
			return
		}
	}
	w.dirs = append(w.dirs, p)
}

// dir takes the YAML files of directory p and its subdirectories, in name
// order.
func (w *walker) dir(p string) {
	key := "dir:" + realPath(p)
	if w.seen[key] {
		return
	}
	w.seen[key] = true
	w.addDir(p)
	entries, err := os.ReadDir(p)
	if err != nil {
		w.errs.add(Pos{File: p}, "cannot list config directory: %v", unwrapPath(err))
		return
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(p, name)
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			// ConfigMap mounts are symlinks into ..data; read what they
			// point at.
			st, err := os.Stat(full)
			if err != nil {
				w.errs.add(Pos{File: full}, "cannot follow symlink: %v", unwrapPath(err))
				continue
			}
			isDir = st.IsDir()
			if isDir && w.seen["dir:"+realPath(full)] {
				w.warn(Pos{File: full}, "symlink leads to %s, a directory already read; it is not read again", realPath(full))
				continue
			}
		}
		switch {
		case isDir:
			w.dir(full)
		case isYAMLName(name):
			w.addFile(full)
		}
	}
}

func isYAMLName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// unwrapPath drops the path from an *fs.PathError, which the caller's
// position already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// file decodes every document of one file and records its source summary.
func (l *loader) file(path string, data []byte) {
	d := &decoder{file: path, errs: &l.errs, dir: filepath.Dir(path)}
	errsBefore := l.errs.len()
	var parts []string
	for _, root := range d.documents(data) {
		if s := l.document(d, root); s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		if l.errs.len() > errsBefore {
			return
		}
		// An editor that truncates a file, or a template that renders
		// nothing, must not reload into a gateway without routes.
		l.errs.add(Pos{File: path}, "the file holds no document; write one (apiVersion: gateway.mulesoft.com/v1alpha1, kind: Gateway, "+
			"or one of Flex Gateway's kinds) or remove the file")
		return
	}
	l.cfg.Sources = append(l.cfg.Sources, Source{Path: path, Summary: path + ": " + strings.Join(parts, "; ")})
}

// documents parses the YAML stream of a file into the root nodes of its
// non-empty documents. Their `$env.NAME` references are not substituted
// yet: that depends on the kind (see document).
func (d *decoder) documents(data []byte) (roots []*yaml.Node) {
	// A reload must not take the gateway down, whatever a file holds.
	defer func() {
		if r := recover(); r != nil {
			d.errs.add(Pos{File: d.file}, "YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The parser cannot resynchronise after a syntax error, so
			// the rest of this file is unread.
			d.syntaxError(err, data)
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		// Nothing below may follow an alias before this bound holds:
		// a ConfigMap of a few hundred bytes must not take the process
		// out of memory.
		if err := CheckAliases(&doc); err != nil {
			ae := err.(*AliasError)
			d.errorf(ae.Alias, "%s", ae.Msg)
			continue
		}
		root := resolve(doc.Content[0])
		if IsNull(root) {
			continue
		}
		roots = append(roots, root)
	}
	return roots
}

// maxGoccyDepth bounds the flow nesting of a file that is handed to the
// second parser to place a syntax error.
const maxGoccyDepth = 256

// flowDepthAtMost reports whether the brackets and braces of data never
// nest deeper than max. Quotes are not skipped: a bracket in a string
// counts, which can only make a file look deeper than it is.
func flowDepthAtMost(data []byte, max int) bool {
	depth := 0
	for _, b := range data {
		switch b {
		case '[', '{':
			if depth++; depth > max {
				return false
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return true
}

var syntaxLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) syntaxError(err error, data []byte) {
	msg := err.Error()
	if !syntaxLineRe.MatchString(msg) {
		// yaml.v3 names no place for a character it cannot read.
		if line, col, what, ok := BadChar(data); ok {
			d.errs.add(Pos{File: d.file, Line: line, Col: col}, "%s", what)
			return
		}
	}
	// yaml.v3 reports the line where the enclosing block starts, not where
	// the problem is (an indentation slip on line 9 is "line 6"); a second
	// parser, goccy/go-yaml, places it on the token at fault.
	// goccy's memory grows far faster than the nesting: a file of a few
	// hundred KB of "[[[[…" takes it gigabytes. yaml.v3 refuses such
	// nesting at once, and its message is what is said then.
	var se *goccyyaml.SyntaxError
	if flowDepthAtMost(data, maxGoccyDepth) {
		if _, perr := goccyparser.ParseBytes(data, 0); errors.As(perr, &se) && se.Token != nil {
			pos := se.Token.Position
			d.errs.add(Pos{File: d.file, Line: pos.Line, Col: pos.Column}, "YAML syntax error: %s", se.Message)
			return
		}
	}
	if m := syntaxLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errs.add(Pos{File: d.file, Line: line}, "YAML syntax error: %s", m[2])
		return
	}
	d.errs.add(Pos{File: d.file}, "YAML syntax error: %s", strings.TrimPrefix(msg, "yaml: "))
}

// BadChar finds the first character of data that YAML does not read: a
// byte that begins no UTF-8 character, or a control character other than
// tab and the line breaks (NUL, ESC, DEL, ...). line and col place it as
// yaml places nodes, from 1, col in characters; what says what it is and
// how to fix it. ok is false when data holds none, or is UTF-16, which
// yaml reads by its byte order mark. Safe for concurrent use.
func BadChar(data []byte) (line, col int, what string, ok bool) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return 0, 0, "", false
	}
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, fmt.Sprintf("the byte 0x%02X here is not part of a UTF-8 character; save the file as UTF-8", data[i]), true
		case r == '\n', r == '\r' && (i+1 == len(data) || data[i+1] != '\n'), r == 0x85, r == 0x2028, r == 0x2029:
			line, col = line+1, 0
		case r == '\t', r == '\r':
		case r < 0x20 || r == 0x7F || r >= 0x80 && r <= 0x9F || r == 0xFFFE || r == 0xFFFF:
			name := ""
			switch {
			case r < 0x20:
				name = " (" + asciiControls[r] + ")"
			case r == 0x7F:
				name = " (DEL)"
			}
			return line, col, fmt.Sprintf("the control character U+%04X%s is not allowed in YAML; remove it, or write it as \\x%02X in a double-quoted string", r, name, r), true
		}
		i += size
		col++
	}
	return 0, 0, "", false
}

// asciiControls name the control characters below U+0020.
var asciiControls = [...]string{"NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI",
	"DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US"}
