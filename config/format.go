package config

import (
	"fmt"
	"sync"

	"go.yaml.in/yaml/v3"
)

// A Format reads document kinds that a package of its own adds beside the
// Gateway kind (config/flex: Flex Gateway's ApiInstance, Service,
// PolicyBinding and Configuration) into the same Config. One Format value
// serves one Load: it sees each document of its kinds as the files are
// read, then Finish, where references between documents are resolved and
// routes and listeners added. It is not used concurrently.
type Format interface {
	// Document reads one document of the format's kinds and returns its
	// part of its file's summary for `flexgate validate`.
	Document(d *Decoder, doc *Document) string
	// Finish runs once every file is read, before the config is checked
	// as a whole (it must have routes).
	Finish(b *Build)
}

// Document is the envelope of one document of a Format's kinds; the
// loader has checked its apiVersion and metadata.
type Document struct {
	Kind       string
	APIVersion string
	// Name, Namespace ("" when not written) and Labels are metadata's.
	Name      string
	Namespace string
	Labels    map[string]string
	// Root is the document's mapping; KindNode and NameNode are where kind
	// and metadata.name are written (NameNode nil when it is not).
	Root, KindNode, NameNode *yaml.Node
	// Spec is nil when the document has none.
	Spec *yaml.Node
}

// formatReg is a registered Format.
type formatReg struct {
	kinds []string
	new   func() Format
}

var (
	formatsMu   sync.RWMutex
	formatKinds = map[string]*formatReg{}
)

// RegisterFormat adds the document kinds a Format reads; newFormat is
// called once for each Load that meets one of them. A package calls it from
// init(); a kind registered twice panics, as it is a programming error. It
// is safe for concurrent use.
func RegisterFormat(kindNames []string, newFormat func() Format) {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	reg := &formatReg{kinds: kindNames, new: newFormat}
	for _, k := range kindNames {
		if _, dup := kinds[k]; dup {
			panic(fmt.Sprintf("config: kind %q registered twice", k))
		}
		if _, dup := formatKinds[k]; dup {
			panic(fmt.Sprintf("config: kind %q registered twice", k))
		}
		formatKinds[k] = reg
	}
}

// formatOf returns the registered format of the document root's kind, or
// nil for a built-in or unknown kind.
func formatOf(root *yaml.Node) *formatReg {
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "kind" {
			formatsMu.RLock()
			defer formatsMu.RUnlock()
			return formatKinds[resolve(root.Content[i+1]).Value]
		}
	}
	return nil
}

// formatLoad returns this Load's Format of reg, made on first use.
func (l *loader) formatLoad(reg *formatReg) Format {
	for _, f := range l.formats {
		if f.reg == reg {
			return f.f
		}
	}
	f := reg.new()
	l.formats = append(l.formats, loadedFormat{reg: reg, f: f})
	return f
}

type loadedFormat struct {
	reg *formatReg
	f   Format
}

// Decoder reads the documents of one file for a Format, with the Gateway
// kind's checks and its way of counting errors (see Mark): every problem at
// file:line:col. It is not safe for concurrent use.
type Decoder struct {
	d *decoder
	l *loader
}

// File is the path of the file being read.
func (d *Decoder) File() string { return d.d.file }

// EphemeralPorts reports whether the load accepts port 0 in an address
// (see LoadOptions).
func (d *Decoder) EphemeralPorts() bool { return d.l.opts.EphemeralPorts }

// Pos is where n is written.
func (d *Decoder) Pos(n *yaml.Node) Pos { return d.d.pos(n) }

// Errorf reports a problem with the value at n, which makes it (and what
// holds it) unusable.
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) { d.d.errorf(n, format, args...) }

// Skipf reports a problem that leaves what holds n usable (an unknown
// field, say), so that checks against other documents still run.
func (d *Decoder) Skipf(n *yaml.Node, format string, args ...any) { d.d.skipf(n, format, args...) }

// Mark counts the problems so far that make a value unusable; Failed(m)
// reports whether one was reported since.
func (d *Decoder) Mark() int { return d.d.mark() }

// Failed reports whether a problem that makes a value unusable was reported
// since mark m.
func (d *Decoder) Failed(m int) bool { return d.d.failed(m) }

// Warn records a warning at n among the config's warnings.
func (d *Decoder) Warn(n *yaml.Node, format string, args ...any) {
	d.l.warn(d.d.pos(n), format, args...)
}

// Mapping calls the handler of each key of n in the order written; an
// unknown or repeated key is skipped over with an error that lists the
// known ones. what names the mapping in messages. It reports whether n was
// a mapping.
func (d *Decoder) Mapping(n *yaml.Node, what string, fields map[string]func(key, val *yaml.Node)) bool {
	fs := make(map[string]field, len(fields))
	for k, f := range fields {
		fs[k] = f
	}
	return d.d.mapping(n, what, fs)
}

// Str reads a scalar as text ("" when empty).
func (d *Decoder) Str(n *yaml.Node, what string) (string, bool) { return d.d.str(n, what) }

// RequiredStr reads a scalar that must not be empty.
func (d *Decoder) RequiredStr(n *yaml.Node, what string) (string, bool) {
	return d.d.requiredStr(n, what)
}

// WholeNumber reads an integer from min to max; anything else is an error
// that says so, with note after the range ("0 turns it off"; "" for none).
func (d *Decoder) WholeNumber(n *yaml.Node, what string, min, max int64, note string) (int64, bool) {
	return d.d.wholeNumber(n, what, min, max, note)
}

// Boolean reads true or false.
func (d *Decoder) Boolean(n *yaml.Node, what string) (bool, bool) { return d.d.boolean(n, what) }

// List calls fn for each entry of a sequence (aliases resolved); another
// shape is skipped over with an error.
func (d *Decoder) List(n *yaml.Node, what string, fn func(*yaml.Node)) { d.d.list(n, what, fn) }

// StringMap reads a mapping of names to strings (labels).
func (d *Decoder) StringMap(n *yaml.Node, what string) map[string]string {
	return d.d.stringMap(n, what)
}

// Upstream reads the URL at n (http or https, host, optional port and base
// path) into an upstream with the default settings, written at n. what
// names it in messages ("Service address").
func (d *Decoder) Upstream(n *yaml.Node, what string) (Upstream, bool) {
	u := newUpstream(d.d.pos(n))
	t := Target{Weight: 1, Pos: d.d.pos(n)}
	ok := d.d.upstreamURL(n, what, &t)
	u.Targets = []Target{t}
	return u, ok
}

// TLS reads TLS settings shaped as Flex Gateway writes them, in its tls
// policies as in sharedStorage.redis.tls: trustedCA, certificate {crt,
// key, keyPassphrase}, skipValidation, minVersion (or minversion),
// maxVersion, alpn, ciphers; extra adds fields of the caller's. what names
// them in messages ("tls policy"). With problems, it still returns what it
// read (unless n is not a mapping), for the caller's own checks.
func (d *Decoder) TLS(n *yaml.Node, what string, extra map[string]func(key, val *yaml.Node)) (*RedisTLS, bool) {
	return d.d.tlsSettings(n, what, extra)
}

// ExpandEnv replaces `$env.NAME` and `${env.NAME}` in the scalar n with the
// variable's value, or reports why it cannot at n.
func (d *Decoder) ExpandEnv(n *yaml.Node) bool {
	if err := ExpandEnv(n); err != nil {
		d.d.errorf(n, "%s", err.Error())
		return false
	}
	return true
}

// SharedStorage reads a sharedStorage mapping (k is its key) into the
// config's shared storage, as the Gateway kind's spec.sharedStorage.
func (d *Decoder) SharedStorage(k, v *yaml.Node) { d.l.sharedStorage(d.d, k, v) }

// Build is what a Format's Finish adds to the config with. It is not safe
// for concurrent use.
type Build struct {
	l *loader
}

// Config is the config being built. Finish may set what has no adder
// below (LogLevel) and may narrow the routes of other kinds (their
// Listeners).
func (b *Build) Config() *Config { return b.l.cfg }

// Errorf reports a problem at pos.
func (b *Build) Errorf(pos Pos, format string, args ...any) { b.l.errs.add(pos, format, args...) }

// Warn records a warning at pos.
func (b *Build) Warn(pos Pos, format string, args ...any) { b.l.warn(pos, format, args...) }

// Failed reports whether any problem has been reported so far, in any file.
func (b *Build) Failed() bool { return b.l.errs.len() > 0 }

// AddListener adds lis, bound to host (empty: every address) and port,
// whose port is written at at; it reports a listener name or port that
// another listener of any document holds, naming both places.
func (b *Build) AddListener(lis Listener, host string, port int, at Pos) bool {
	l := b.l
	ok := true
	if first, dup := l.listenerNames[lis.Name]; dup {
		l.errs.add(at, "listener name %q is already used at %s; listener names must be unique", lis.Name, first)
		ok = false
	}
	for _, u := range l.listenerPorts[port] {
		if port != 0 && (isWildcard(u.host) || isWildcard(host) || u.host == host) {
			l.errs.add(at, "port %d is already used by the listener at %s; give each listener its own port", port, u.pos)
			ok = false
			break
		}
	}
	if !ok {
		return false
	}
	l.listenerNames[lis.Name] = at
	l.listenerPorts[port] = append(l.listenerPorts[port], portUse{host: host, pos: at})
	l.cfg.Listeners = append(l.cfg.Listeners, lis)
	return true
}

// AddRoute adds r, a complete route whose id is written at idAt, unless
// another route holds its id. Its paths are not checked for ambiguity with
// other routes: a Format whose routes are told apart by listener, host,
// headers or rules checks their overlaps itself.
func (b *Build) AddRoute(r Route, idAt Pos) bool {
	l := b.l
	if first, dup := l.routeIDs[r.ID]; dup {
		l.errs.add(idAt, "route id %q is already used at %s; route ids must be unique across all files", r.ID, first)
		return false
	}
	l.routeIDs[r.ID] = idAt
	l.cfg.Routes = append(l.cfg.Routes, r)
	return true
}

// CheckPathPattern reports why p is not a route path pattern (see
// Route.Paths), or "" when it is one.
func CheckPathPattern(p string) string { return checkPattern(p) }

// warn records a warning, once.
func (l *loader) warn(pos Pos, format string, args ...any) {
	w := Warning{Pos: pos, Message: RedactURLPasswords(fmt.Sprintf(format, args...))}
	for _, have := range l.cfg.Warnings {
		if have == w {
			return
		}
	}
	l.cfg.Warnings = append(l.cfg.Warnings, w)
}
