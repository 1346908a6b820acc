package basicauth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/flexgate/flexgate/internal/userfile"
)

// Bounds of bcrypt's cost accepted in a hash: below MinCost bcrypt is not
// bcrypt; above maxCost one first request of a user would take seconds.
const maxCost = 16

type hashKind uint8

const (
	kindPlain    hashKind = iota // a password written in the config
	kindSHA256                   // SHA-256 of the password
	kindBcrypt                   // bcrypt of the password
	kindSHACrypt                 // SHA-crypt ($5$, $6$) of the password
)

// credential is a user's password as the config gives it.
type credential struct {
	kind   hashKind
	sha    [sha256.Size]byte // kindSHA256
	bcrypt []byte            // kindBcrypt
	cost   int               // kindBcrypt
	crypt  shaCrypt          // kindSHACrypt
	plain  string            // kindPlain
}

// parseHash reads a password hash: bcrypt ($2a$, $2b$, $2y$), SHA-crypt
// ($5$, $6$), {SHA256}base64 or sha256:hex. Other htpasswd formats are
// refused, saying why.
func parseHash(h string) (credential, error) {
	switch {
	case strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"):
		cost, err := bcrypt.Cost([]byte(h))
		if err != nil {
			return credential{}, fmt.Errorf("not a bcrypt hash: %v", strings.TrimPrefix(err.Error(), "crypto/bcrypt: "))
		}
		if cost > maxCost {
			return credential{}, fmt.Errorf("bcrypt cost %d is above %d: every first request of the user would take seconds; hash it again with htpasswd -B -C 10", cost, maxCost)
		}
		return credential{kind: kindBcrypt, bcrypt: []byte(h), cost: cost}, nil
	case strings.HasPrefix(h, "$5$") || strings.HasPrefix(h, "$6$"):
		c, err := parseSHACrypt(h)
		if err != nil {
			return credential{}, fmt.Errorf("not a SHA-crypt hash: %v", err)
		}
		return credential{kind: kindSHACrypt, crypt: c}, nil
	case strings.HasPrefix(h, "{SHA256}"):
		b, err := base64.StdEncoding.DecodeString(h[len("{SHA256}"):])
		if err != nil || len(b) != sha256.Size {
			return credential{}, fmt.Errorf("{SHA256} must be followed by the base64 of 32 bytes (printf %%s \"$PASSWORD\" | openssl dgst -sha256 -binary | base64)")
		}
		c := credential{kind: kindSHA256}
		copy(c.sha[:], b)
		return c, nil
	case strings.HasPrefix(h, "sha256:"):
		b, err := hex.DecodeString(h[len("sha256:"):])
		if err != nil || len(b) != sha256.Size {
			return credential{}, fmt.Errorf("sha256: must be followed by 64 hex digits (printf %%s \"$PASSWORD\" | sha256sum)")
		}
		c := credential{kind: kindSHA256}
		copy(c.sha[:], b)
		return c, nil
	}
	return credential{}, fmt.Errorf("%s hashes are not accepted: %s", hashName(h), acceptedHashes)
}

const acceptedHashes = "use bcrypt (htpasswd -nB USER), SHA-crypt (htpasswd -n2 USER), {SHA256}base64 or sha256:hex"

// hashName names a refused hash format.
func hashName(h string) string {
	switch {
	case strings.HasPrefix(h, "$apr1$"):
		return "Apache MD5 ($apr1$)"
	case strings.HasPrefix(h, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(h, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(h, "$2x$"):
		return "buggy bcrypt ($2x$)"
	case len(h) == 13 && strings.Trim(h, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == "":
		return "crypt(3) DES or plain-text"
	}
	return "plain-text or unknown"
}

// htpasswdEntry is one user of an htpasswd file.
type htpasswdEntry struct {
	name string
	cred credential
	line int
}

// readHtpasswd reads an htpasswd file: `user:hash` lines; empty lines and
// lines starting with # are skipped. Errors name the file and line.
func readHtpasswd(path string) ([]htpasswdEntry, error) {
	data, err := userfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read htpasswdFile: %w", err)
	}
	return parseHtpasswd(path, data)
}

func parseHtpasswd(path string, data []byte) ([]htpasswdEntry, error) {
	var out []htpasswdEntry
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		name, hash, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: not a user:hash line", path, line)
		}
		if err := checkUsername(name); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		cred, err := parseHash(hash)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %v", path, line, name, err)
		}
		if first, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s:%d: user %q is also on line %d; list each user once", path, line, name, first)
		}
		seen[name] = line
		out = append(out, htpasswdEntry{name: name, cred: cred, line: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", path, line+1, err)
	}
	return out, nil
}

// checkUsername refuses names no Basic credentials can carry.
func checkUsername(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a user name is empty")
	case len(name) > maxName:
		return fmt.Errorf("user name %.20q… is longer than %d bytes", name, maxName)
	case strings.ContainsRune(name, ':'):
		return fmt.Errorf("user name %q has a ':', which Basic credentials cannot carry in a user name", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("user name %q has a control character", name)
	}
	return nil
}
