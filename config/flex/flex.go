// Package flex reads MuleSoft Flex Gateway's own resource kinds, as its
// users write them for local mode (ApiInstance, Service, PolicyBinding and
// Configuration, in a conf.d directory), into flexgate's one config model:
// each ApiInstance's address becomes a listener (shared by the instances on
// its port), its services or route policies become routes with their match
// rules, its policies (inline, bound by name or by label Selector) the
// routes' policies in Flex's order, and a Configuration sets the shared
// storage, log level and upstream timeouts.
//
// Importing the package registers the kinds with config.RegisterFormat;
// they may be mixed with kind: Gateway in one directory. README.md maps
// every resource and field to what flexgate does with it.
package flex

import (
	"sort"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
)

// The kinds this package reads.
const (
	KindAPIInstance   = "ApiInstance"
	KindService       = "Service"
	KindPolicyBinding = "PolicyBinding"
	KindConfiguration = "Configuration"
	KindExtension     = "Extension"
)

// DefaultNamespace is metadata.namespace when a resource does not say.
const DefaultNamespace = "default"

// DefaultOrder is a policy's order when its binding does not say.
const DefaultOrder = 50

func init() {
	config.RegisterFormat([]string{KindAPIInstance, KindService, KindPolicyBinding, KindConfiguration, KindExtension},
		func() config.Format { return newLoad() })
}

// ref names a resource: Flex resolves references by namespace and name.
type ref struct {
	namespace, name string
}

func (r ref) String() string { return r.namespace + "/" + r.name }

// resource is what every kind shares: its name and where it is written.
type resource struct {
	kind string
	ref
	labels map[string]string
	// pos is where the document is (its metadata.name when written).
	pos config.Pos
	// seq orders resources as they were read.
	seq int
}

// load reads the Flex documents of one config.Load. It is not safe for
// concurrent use.
type load struct {
	seq       int
	resources map[string]config.Pos // kind/namespace/name → where defined
	instances []*instance
	services  []*service
	bindings  []*binding
	// logLevel is spec.logging.runtimeLogs.logLevel, where it was set.
	logLevel    string
	logLevelPos config.Pos
	timeouts    *timeouts
	// env is what Flex Gateway's environment sets (readEnv), read in
	// Finish.
	env envTimeouts
	// broken are the resources (kind/namespace/name) that did not load,
	// whose errors are reported: a reference to one is not reported again.
	broken map[string]bool
	// brokenTLS: a tls policy did not load, so an https instance without
	// one is not reported again.
	brokenTLS bool
}

func newLoad() *load {
	return &load{resources: map[string]config.Pos{}, broken: map[string]bool{}}
}

// key names a resource for resources and broken.
func key(kind string, r ref) string { return kind + "/" + r.String() }

// Document reads one document of the Flex kinds.
func (l *load) Document(d *config.Decoder, doc *config.Document) string {
	if doc.Kind == KindExtension {
		d.Errorf(doc.KindNode, "kind: Extension (a custom policy built with the PDK as WebAssembly) is not supported: "+
			"flexgate runs its built-in policies only (see config/flex/README.md for the Flex policies it runs); remove this document")
		return ""
	}
	l.seq++
	r := resource{kind: doc.Kind, ref: ref{namespace: doc.Namespace, name: doc.Name}, labels: doc.Labels, seq: l.seq, pos: d.Pos(doc.Root)}
	if r.namespace == "" {
		r.namespace = DefaultNamespace
	}
	if doc.NameNode != nil {
		r.pos = d.Pos(doc.NameNode)
	}
	// A resource without a name, or with another's, is reported; its spec
	// is still read, into a load of its own that nothing uses, so that
	// its problems are reported too.
	into := l
	if doc.Name == "" {
		at := doc.Root
		if doc.NameNode != nil {
			at = doc.NameNode
		}
		d.Errorf(at, "%s has no metadata.name; name it: other resources refer to it by name", doc.Kind)
		into = newLoad()
	} else if !l.claim(d, r, doc.NameNode) {
		into = newLoad()
	}
	if doc.Spec == nil {
		d.Errorf(doc.Root, "%s %s has no spec", doc.Kind, r.ref)
		return ""
	}
	summary := into.spec(d, r, doc.Spec)
	if into != l {
		return ""
	}
	return summary
}

// spec reads the spec of resource r and returns its part of the file's
// summary; a resource whose spec has a problem that makes it unusable is
// marked broken, so that references to it are not reported again.
func (l *load) spec(d *config.Decoder, r resource, spec *yaml.Node) string {
	m := d.Mark()
	var summary string
	switch r.kind {
	case KindAPIInstance:
		summary = l.apiInstance(d, r, spec)
	case KindService:
		summary = l.service(d, r, spec)
	case KindPolicyBinding:
		summary = l.policyBinding(d, r, spec)
	case KindConfiguration:
		summary = l.configuration(d, r, spec)
	}
	if d.Failed(m) {
		l.broken[key(r.kind, r.ref)] = true
	}
	return summary
}

// claim reserves (kind, namespace, name), written at n, or reports where
// it was defined first.
func (l *load) claim(d *config.Decoder, r resource, n *yaml.Node) bool {
	k := key(r.kind, r.ref)
	if first, dup := l.resources[k]; dup {
		d.Errorf(n, "%s %s is already defined at %s; (kind, namespace, name) must be unique: rename one, or give it another metadata.namespace",
			r.kind, r.ref, first)
		return false
	}
	l.resources[k] = d.Pos(n)
	return true
}

// plural counts n things: "1 route", "2 routes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// sortedKeys returns the keys of m in order, for messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
