package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// APIVersion is the apiVersion every document must carry.
const APIVersion = "gateway.mulesoft.com/v1alpha1"

// kindDecoder maps the spec of one document kind into the loader's Config
// and returns the kind's part of the source summary. Flex Gateway's
// ApiInstance, PolicyBinding and Service kinds belong in this table too: they
// map into the same Routes, Policies and Upstreams, built with the pieces
// the Gateway kind uses (newUpstream and upstreamURL, routePath,
// routeMethod, claimRouteID and addRoute). They live in this package
// because every kind shares one loader: one Config, one list of errors at
// file:line:col, and route ids and paths checked across all documents.
type kindDecoder func(l *loader, d *decoder, meta metadata, spec *yaml.Node) string

// kinds are the decoders of the supported document kinds, by kind.
var kinds = map[string]kindDecoder{
	"Gateway": (*loader).gateway,
}

// metadata is what a document says about itself.
type metadata struct {
	name string
}

// document checks the envelope every kind shares and hands the spec to the
// kind's decoder.
func (l *loader) document(d *decoder, root *yaml.Node) string {
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
	} else if s, ok := d.str(apiVersion, "apiVersion"); ok && s != APIVersion {
		d.errorf(apiVersion, "unsupported apiVersion %q; use %s", s, APIVersion)
	}
	if kind == nil {
		d.errorf(root, "document has no kind; add `kind: Gateway` (supported kinds: %s)", kindNames())
		return ""
	}
	k, ok := d.str(kind, "kind")
	if !ok {
		return ""
	}
	decode, ok := kinds[k]
	if !ok {
		d.errorf(kind, "unsupported kind %q; supported kinds: %s", k, kindNames())
		return ""
	}
	if l.cfg.Name == "" {
		l.cfg.Name = meta.name
	}
	if spec == nil {
		d.errorf(root, "%s document has no spec", k)
		return ""
	}
	return decode(l, d, meta, spec)
}

// kindNames lists the supported kinds, for messages.
func kindNames() string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	return strings.Join(sortedStrings(names), ", ")
}

// metadata maps a document's metadata; only the name is kept.
func (d *decoder) metadata(n *yaml.Node) metadata {
	var m metadata
	d.mapping(n, "metadata", map[string]field{
		"name":        func(_, v *yaml.Node) { m.name, _ = d.str(v, "metadata.name") },
		"namespace":   func(_, v *yaml.Node) { d.str(v, "metadata.namespace") },
		"labels":      func(_, v *yaml.Node) { d.stringMap(v, "metadata.labels") },
		"annotations": func(_, v *yaml.Node) { d.stringMap(v, "metadata.annotations") },
	})
	return m
}

// stringMap checks that n maps strings to strings, as Kubernetes labels
// and annotations do.
func (d *decoder) stringMap(n *yaml.Node, what string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping of names to strings, not %s", what, describe(n))
		return
	}
	for i := 1; i < len(n.Content); i += 2 {
		d.str(resolve(n.Content[i]), what+" value")
	}
}
