package config

import (
	"encoding/hex"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/internal/userfile"
)

// LoadClients reads a client registry kept apart from the gateway config,
// typically a mounted Kubernetes Secret: a YAML file holding either
// `clients: [...]` or a bare list of {id, secret | secretHash} entries.
// `$env.NAME` is substituted as in Load, and problems are reported the same
// way, as an *Errors. It is safe for concurrent use.
func LoadClients(path string) ([]Client, error) {
	l := newLoader()
	data, err := userfile.Read(path)
	if err != nil {
		l.errs.add(Pos{File: path}, "cannot read clients file: %v", unwrapPath(err))
		return nil, l.errs.err()
	}
	d := &decoder{file: path, dir: filepath.Dir(path), errs: &l.errs}
	roots := d.documents(data)
	if len(roots) == 0 && l.errs.len() == 0 {
		l.errs.add(Pos{File: path}, "clients file is empty; write `clients:` followed by a list of {id, secret} entries")
	}
	for _, root := range roots {
		d.substituteEnv(root)
		list := root
		if root.Kind == yaml.MappingNode {
			list = nil
			d.mapping(root, "clients file", map[string]field{
				"clients": func(_, v *yaml.Node) { list = v },
			})
			if list == nil {
				continue
			}
		}
		d.list(list, "clients", func(n *yaml.Node) {
			if c, ok := d.client(n); ok {
				l.addClient(d, c, l.clients)
			}
		})
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return l.cfg.Clients, nil
}

// client maps one {id, secret | secretHash} entry.
func (d *decoder) client(n *yaml.Node) (clientEntry, bool) {
	c := clientEntry{Client: Client{Pos: d.pos(n)}}
	m := d.mark()
	var secretNode, hashNode *yaml.Node
	if !d.mapping(n, "client", map[string]field{
		"id": func(_, v *yaml.Node) {
			c.idNode = v
			c.ID, _ = d.requiredStr(v, "client id")
		},
		"secret": func(_, v *yaml.Node) {
			secretNode = v
			c.Secret, _ = d.requiredStr(v, "client secret")
		},
		"secretHash": func(_, v *yaml.Node) {
			hashNode = v
			s, ok := d.requiredStr(v, "client secretHash")
			if !ok {
				return
			}
			h, err := hex.DecodeString(strings.TrimPrefix(s, "sha256:"))
			if !strings.HasPrefix(s, "sha256:") || err != nil || len(h) != 32 {
				d.errorf(v, "client secretHash must be \"sha256:\" followed by 64 hex digits (the SHA-256 of the secret, e.g. from `printf %%s \"$SECRET\" | sha256sum`)")
			}
			c.SecretHash = h
		},
	}) {
		return c, false
	}
	if c.idNode == nil {
		d.errorf(n, "client has no id; add `id: <client id>`")
	}
	switch {
	case secretNode != nil && hashNode != nil:
		d.errorf(hashNode, "client %q has both secret and secretHash; keep one", c.ID)
	case secretNode == nil && hashNode == nil:
		d.errorf(n, "client %q has no secret; add `secret: $env.NAME` or `secretHash: sha256:<hex>`", c.ID)
	}
	return c, !d.failed(m)
}

// clientEntry is a decoded client and where its id was written.
type clientEntry struct {
	Client
	idNode *yaml.Node
}

// addClient appends c unless its id was seen before; seen maps ids to
// where they were first defined.
func (l *loader) addClient(d *decoder, c clientEntry, seen map[string]Pos) {
	if first, dup := seen[c.ID]; dup {
		d.errorf(c.idNode, "client id %q is already used at %s; client ids must be unique", c.ID, first)
		return
	}
	seen[c.ID] = d.pos(c.idNode)
	l.cfg.Clients = append(l.cfg.Clients, c.Client)
}
