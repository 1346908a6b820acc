package config

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadClients(t *testing.T) {
	t.Setenv("FG_CLIENT_SECRET", "from-env")
	sum := sha256.Sum256([]byte("hashed-secret"))
	hash := "sha256:" + strings.ToUpper(hex.EncodeToString(sum[:]))
	for name, src := range map[string]string{
		"wrapped.yaml": "clients:\n  - id: a\n    secret: $env.FG_CLIENT_SECRET\n  - id: b\n    secretHash: " + hash + "\n",
		"bare.yaml":    "- id: a\n  secret: $env.FG_CLIENT_SECRET\n- id: b\n  secretHash: " + hash + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, paths := writeFiles(t, name, src)
			got, err := LoadClients(paths[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].ID != "a" || got[0].Secret != "from-env" ||
				got[1].ID != "b" || string(got[1].SecretHash) != string(sum[:]) {
				t.Errorf("clients = %+v", got)
			}
			if got[1].Pos.Line == 0 {
				t.Errorf("client has no position")
			}
		})
	}
}

func TestLoadClientsErrors(t *testing.T) {
	cases := []struct {
		name, src, pos string
		words          []string
	}{
		{"unknown key", "client:\n  - {id: a, secret: b}\n", "c.yaml:1:1", []string{`unknown field "client"`, "known fields: clients"}},
		{"unknown client field", "- {id: a, secret: b, scope: x}\n", "c.yaml:1:22", []string{`unknown field "scope"`, "id, secret, secretHash"}},
		{"duplicate", "- {id: a, secret: b}\n- {id: a, secret: c}\n", "c.yaml:2:8", []string{`client id "a"`, "already used", "c.yaml:1:8"}},
		{"empty file", "# nothing yet\n", "c.yaml", []string{"clients file is empty"}},
		{"not a list", "clients: a\n", "c.yaml:1:10", []string{"clients must be a list"}},
		{"syntax", "- id: a\n  secret: [\n", "c.yaml:2:11", []string{"YAML syntax error", "]"}},
		// A Secret's value pasted with its terminal's escape codes.
		{"control character", "- id: a\n  secret: \x1b[1mb\n", "c.yaml:2:11", []string{"control character U+001B (ESC) is not allowed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, paths := writeFiles(t, "c.yaml", c.src)
			_, err := LoadClients(paths[0])
			expectOne(t, errorLines(t, err, dir), c.pos, c.words...)
		})
	}
	_, err := LoadClients(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml: cannot read clients file") {
		t.Errorf("missing file: %v", err)
	}
}
