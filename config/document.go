package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// APIVersion is the apiVersion the examples write. APIVersions are the
// ones every document may carry: Flex Gateway writes v1beta1 on some of its
// resources, and both are accepted for every kind.
const APIVersion = "gateway.mulesoft.com/v1alpha1"

// APIVersions are the accepted values of apiVersion.
var APIVersions = []string{APIVersion, "gateway.mulesoft.com/v1beta1"}

// kindDecoder maps the spec of one document kind into the loader's Config
// and returns the kind's part of the source summary. The Gateway kind is
// decoded here; Flex Gateway's resource kinds live in a package of their own
// (config/flex) that adds them with RegisterFormat and builds routes,
// listeners and upstreams with the same pieces (see format.go), so that
// every kind shares one loader: one Config, one list of errors at
// file:line:col, and route ids and ports checked across all documents.
type kindDecoder func(l *loader, d *decoder, meta metadata, spec *yaml.Node) string

// kinds are the decoders of the built-in document kinds, by kind.
var kinds = map[string]kindDecoder{
	"Gateway": (*loader).gateway,
}

// metadata is what a document says about itself.
type metadata struct {
	name      string
	namespace string
	labels    map[string]string
	nameNode  *yaml.Node
}

// document checks the envelope every kind shares and hands the spec to the
// kind's decoder.
func (l *loader) document(d *decoder, root *yaml.Node) string {
	format := formatOf(root)
	if format == nil {
		// A format substitutes its own documents' variables: Flex
		// Gateway writes them differently, and leaves some for later.
		d.substituteEnv(root)
	}
	var apiVersion, kind, spec *yaml.Node
	var meta metadata
	ok := d.mapping(root, "document", map[string]field{
		"apiVersion": func(_, v *yaml.Node) { apiVersion = v },
		"kind":       func(_, v *yaml.Node) { kind = v },
		"metadata":   func(_, v *yaml.Node) { meta = d.metadata(v) },
		"spec":       func(_, v *yaml.Node) { spec = v },
	})
	if !ok {
		return ""
	}
	if apiVersion == nil {
		d.errorf(root, "document has no apiVersion; add `apiVersion: %s`", APIVersion)
	} else if s, ok := d.str(apiVersion, "apiVersion"); ok && !knownAPIVersion(s) {
		hint := "use " + strings.Join(APIVersions, " or ")
		if strings.HasPrefix(s, "gateway.mulesoft.com.") {
			// A typo of Flex Gateway's own documentation, copied.
			hint = "write a / before the version: gateway.mulesoft.com/" + strings.TrimPrefix(s, "gateway.mulesoft.com.")
		}
		d.errorf(apiVersion, "unsupported apiVersion %q; %s", s, hint)
	}
	if kind == nil {
		d.errorf(root, "document has no kind; add `kind: Gateway` (supported kinds: %s)", kindNames())
		return ""
	}
	k, ok := d.str(kind, "kind")
	if !ok {
		return ""
	}
	decode, builtIn := kinds[k]
	if !builtIn && format == nil {
		d.errorf(kind, "unsupported kind %q; supported kinds: %s", k, kindNames())
		return ""
	}
	if l.cfg.Name == "" {
		l.cfg.Name = meta.name
	}
	if format != nil {
		doc := &Document{Kind: k, Name: meta.name, Namespace: meta.namespace, Labels: meta.labels,
			Root: root, KindNode: kind, NameNode: meta.nameNode, Spec: spec}
		if apiVersion != nil {
			doc.APIVersion = apiVersion.Value
		}
		return l.formatLoad(format).Document(&Decoder{d: d, l: l}, doc)
	}
	if spec == nil {
		d.errorf(root, "%s document has no spec", k)
		return ""
	}
	return decode(l, d, meta, spec)
}

func knownAPIVersion(s string) bool {
	for _, v := range APIVersions {
		if s == v {
			return true
		}
	}
	return false
}

// kindNames lists the supported kinds, for messages.
func kindNames() string {
	names := make([]string, 0, len(kinds)+len(formatKinds))
	for k := range kinds {
		names = append(names, k)
	}
	formatsMu.RLock()
	for k := range formatKinds {
		names = append(names, k)
	}
	formatsMu.RUnlock()
	return strings.Join(sortedStrings(names), ", ")
}

// metadata maps a document's metadata.
func (d *decoder) metadata(n *yaml.Node) metadata {
	var m metadata
	d.mapping(n, "metadata", map[string]field{
		"name": func(_, v *yaml.Node) {
			m.nameNode = v
			m.name, _ = d.str(v, "metadata.name")
		},
		"namespace":   func(_, v *yaml.Node) { m.namespace, _ = d.str(v, "metadata.namespace") },
		"labels":      func(_, v *yaml.Node) { m.labels = d.stringMap(v, "metadata.labels") },
		"annotations": func(_, v *yaml.Node) { d.stringMap(v, "metadata.annotations") },
	})
	return m
}

// stringMap reads a mapping of strings to strings, as Kubernetes labels
// and annotations are. A value written as a number or boolean
// (`tier: 1`, `secured: yes`) reads as the text written.
func (d *decoder) stringMap(n *yaml.Node, what string) map[string]string {
	if IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping of names to strings, not %s", what, Describe(n))
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 1; i < len(n.Content); i += 2 {
		if v, ok := d.str(resolve(n.Content[i]), what+" value"); ok {
			out[n.Content[i-1].Value] = v
		}
	}
	return out
}
