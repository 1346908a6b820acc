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

	goccyyaml "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/internal/match"
)

// Load reads the YAML files and directories in paths, in order, and returns
// the merged, validated config. A directory contributes its *.yaml and
// *.yml files in name order, without recursing and skipping names that
// start with "." (a Kubernetes ConfigMap mount's ..data entries); symlinks
// to files are followed.
//
// Every problem of every file is reported: the error is an *Errors whose
// List holds one *Error per problem, each placed at file:line:col. Load
// keeps no state between calls and is safe for concurrent use, as long as
// nothing changes the environment meanwhile.
func Load(paths []string) (*Config, error) {
	l := newLoader()
	if len(paths) == 0 {
		l.errs.add(Pos{}, "no config files given; pass a YAML file or a directory of them")
		return nil, l.errs.err()
	}
	h := sha256.New()
	for _, path := range l.collect(paths) {
		data, err := os.ReadFile(path)
		if err != nil {
			l.errs.add(Pos{File: path}, "cannot read config file: %v", unwrapPath(err))
			continue
		}
		// Length prefixes keep "ab"+"c" and "a"+"bc" from hashing alike.
		fmt.Fprintf(h, "%d:%s\x00%d:", len(path), path, len(data))
		h.Write(data)
		l.file(path, data)
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	if len(l.cfg.Routes) == 0 {
		l.errs.add(Pos{File: strings.Join(paths, ", ")}, "the config has no routes: a gateway without routes answers every request with 404; add spec.routes")
		return nil, l.errs.err()
	}
	if !l.limitsSet {
		l.cfg.Limits = DefaultLimits
	}
	l.cfg.Warnings = shadowWarnings(l.cfg.Routes)
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
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		key := p
		if abs, err := filepath.Abs(p); err == nil {
			key = abs
		}
		if !seen[key] {
			seen[key] = true
			files = append(files, p)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			l.errs.add(Pos{File: p}, "config path does not exist; pass an existing YAML file or directory")
			continue
		}
		if err != nil {
			l.errs.add(Pos{File: p}, "cannot read config path: %v", unwrapPath(err))
			continue
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			l.errs.add(Pos{File: p}, "cannot list config directory: %v", unwrapPath(err))
			continue
		}
		found := false
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !isYAMLName(name) {
				continue
			}
			full := filepath.Join(p, name)
			if e.Type()&fs.ModeSymlink != 0 {
				// ConfigMap mounts are symlinks into ..data; read what
				// they point at, but never descend into a directory.
				st, err := os.Stat(full)
				if err != nil {
					l.errs.add(Pos{File: full}, "cannot follow symlink: %v", unwrapPath(err))
					continue
				}
				if st.IsDir() {
					continue
				}
			} else if e.IsDir() {
				continue
			}
			found = true
			add(full)
		}
		if !found {
			l.errs.add(Pos{File: p}, "config directory has no *.yaml or *.yml files")
		}
	}
	return files
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
		l.errs.add(Pos{File: path}, "the file holds no Gateway document; write one (apiVersion: gateway.mulesoft.com/v1alpha1, kind: Gateway) or remove the file")
		return
	}
	l.cfg.Sources = append(l.cfg.Sources, Source{Path: path, Summary: path + ": " + strings.Join(parts, "; ")})
}

// documents parses the YAML stream of a file into the root nodes of its
// non-empty documents, with `$env.NAME` substituted.
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
		if isNull(root) {
			continue
		}
		d.substituteEnv(&doc)
		roots = append(roots, root)
	}
	return roots
}

var syntaxLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) syntaxError(err error, data []byte) {
	// yaml.v3 reports the line where the enclosing block starts, not where
	// the problem is (an indentation slip on line 9 is "line 6"); a second
	// parser, goccy/go-yaml, places it on the token at fault.
	var se *goccyyaml.SyntaxError
	if _, perr := goccyparser.ParseBytes(data, 0); errors.As(perr, &se) && se.Token != nil {
		pos := se.Token.Position
		d.errs.add(Pos{File: d.file, Line: pos.Line, Col: pos.Column}, "YAML syntax error: %s", se.Message)
		return
	}
	msg := err.Error()
	if m := syntaxLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errs.add(Pos{File: d.file, Line: line}, "YAML syntax error: %s", m[2])
		return
	}
	d.errs.add(Pos{File: d.file}, "YAML syntax error: %s", strings.TrimPrefix(msg, "yaml: "))
}
