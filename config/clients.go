package config

import (
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// LoadClients reads a client registry kept apart from the gateway config,
// typically a mounted Kubernetes Secret: a YAML file holding either
// `clients: [...]` or a bare list of {id, secret | secretHash} entries.
// `$env.NAME` is substituted as in Load, and problems are reported the same
// way, as an *Errors. It is safe for concurrent use.
func LoadClients(path string) ([]Client, error) {
	l := newLoader()
	data, err := os.ReadFile(path)
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
