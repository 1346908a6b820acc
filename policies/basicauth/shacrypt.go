package basicauth

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"

	"github.com/GehirnInc/crypt"
	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
)

// SHA-crypt ($5$ SHA-256, $6$ SHA-512: htpasswd -2 and -5, mkpasswd,
// openssl passwd -5/-6, /etc/shadow), Ulrich Drepper's "Unix crypt using
// SHA-256 and SHA-512": the password is hashed with the salt thousands of
// times, so a leaked file is slow to brute-force, unlike a single SHA-256.
// github.com/GehirnInc/crypt computes it; this file checks a hash's form
// and bounds its rounds at load.

const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	// shaCryptMaxRounds bounds the rounds a hash may ask for: a first
	// request of a user with 10^9 rounds would take minutes.
	shaCryptMaxRounds = 2_000_000
	shaCryptMaxSalt   = 16
)

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// shaCrypt is a parsed SHA-crypt hash.
type shaCrypt struct {
	sha512 bool
	rounds int
	// hash is the whole hash as written, which the library verifies
	// against.
	hash string
	// setting is the length of hash's $N$[rounds=R$]salt.
	setting int
}

// parseSHACrypt reads $5$[rounds=N$]salt$digest or the same with $6$.
func parseSHACrypt(h string) (shaCrypt, error) {
	var c shaCrypt
	rest := h[3:]
	c.sha512 = h[1] == '6'
	c.rounds = shaCryptDefaultRounds
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, tail, found := strings.Cut(r, "$")
		v, err := strconv.Atoi(n)
		if !found || err != nil || n != strconv.Itoa(v) {
			return c, fmt.Errorf("rounds=%s is not a number of rounds", n)
		}
		if v < shaCryptMinRounds || v > shaCryptMaxRounds {
			return c, fmt.Errorf("rounds=%d is outside %d to %d (above, every first request of the user would take seconds; hash it again with htpasswd -2)",
				v, shaCryptMinRounds, shaCryptMaxRounds)
		}
		c.rounds, rest = v, tail
	}
	salt, sum, ok := strings.Cut(rest, "$")
	want := 43
	if c.sha512 {
		want = 86
	}
	switch {
	case !ok:
		return c, fmt.Errorf("no $ between the salt and the hash")
	case len(salt) > shaCryptMaxSalt:
		return c, fmt.Errorf("the salt is longer than %d characters", shaCryptMaxSalt)
	case strings.ContainsAny(salt, ":\n\r"):
		return c, fmt.Errorf("the salt has a ':' or a line break")
	case len(sum) != want || strings.Trim(sum, cryptAlphabet) != "":
		return c, fmt.Errorf("the hash after the salt must be %d characters of ./0-9A-Za-z", want)
	}
	c.hash, c.setting = h, len(h)-len(sum)-1
	return c, nil
}

// verify reports whether password hashes to c, comparing in constant time.
// The library is given the setting alone ($6$rounds=N$salt): its Verify,
// given the whole hash, reads a salt shorter than 16 characters on into
// the digest.
func (c *shaCrypt) verify(password []byte) bool {
	h, err := c.crypter().Generate(password, []byte(c.hash[:c.setting]))
	return err == nil && subtle.ConstantTimeCompare([]byte(h), []byte(c.hash)) == 1
}

func (c *shaCrypt) crypter() crypt.Crypter {
	if c.sha512 {
		return sha512_crypt.New()
	}
	return sha256_crypt.New()
}

// newSHACrypt hashes password with salt and rounds, as htpasswd -5 (or -2
// for SHA-256) would.
func newSHACrypt(password []byte, is512 bool, rounds int, salt string) (shaCrypt, error) {
	c := shaCrypt{sha512: is512}
	id := "$5$"
	if is512 {
		id = "$6$"
	}
	h, err := c.crypter().Generate(password, []byte(fmt.Sprintf("%srounds=%d$%s", id, rounds, salt)))
	if err != nil {
		return c, err
	}
	return parseSHACrypt(h)
}
