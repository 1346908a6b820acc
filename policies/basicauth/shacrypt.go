package basicauth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"

	"strconv"
	"strings"
)

// SHA-crypt ($5$ SHA-256, $6$ SHA-512: htpasswd -2 and -5, mkpasswd,
// openssl passwd -5/-6, /etc/shadow), as Ulrich Drepper's specification
// "Unix crypt using SHA-256 and SHA-512" defines it: the password is
// hashed with the salt thousands of times, so a leaked file is slow to
// brute-force, unlike a single SHA-256.

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
	salt   string
	sum    string // the encoded digest
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
	c.salt, c.sum = salt, sum
	return c, nil
}

// verify reports whether password hashes to c, comparing in constant time.
func (c *shaCrypt) verify(password []byte) bool {
	sum := c.compute(password)
	return subtle.ConstantTimeCompare([]byte(sum), []byte(c.sum)) == 1
}

// compute is the encoded digest of password with c's salt and rounds.
func (c *shaCrypt) compute(key []byte) string {
	newHash, size := sha256.New, sha256.Size
	if c.sha512 {
		newHash, size = sha512.New, sha512.Size
	}
	salt := []byte(c.salt)

	// Digest B: key, salt, key.
	h := newHash()
	h.Write(key)
	h.Write(salt)
	h.Write(key)
	b := h.Sum(nil)

	// Digest A: key, salt, B for each byte of the key, then B or the
	// key for each bit of the key's length.
	h.Reset()
	h.Write(key)
	h.Write(salt)
	n := len(key)
	for ; n > size; n -= size {
		h.Write(b)
	}
	h.Write(b[:n])
	for n = len(key); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(key)
		}
	}
	a := h.Sum(nil)

	// P: the digest of the key once per byte of the key, as long as the key.
	h.Reset()
	for range len(key) {
		h.Write(key)
	}
	p := repeatTo(h.Sum(nil), len(key))

	// S: the digest of the salt 16 + A[0] times, as long as the salt.
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	s := repeatTo(h.Sum(nil), len(salt))

	for i := range c.rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(a)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(a)
		} else {
			h.Write(p)
		}
		a = h.Sum(a[:0])
	}
	return encodeSHACrypt(a, c.sha512)
}

func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// encodeSHACrypt writes the digest in the specification's order of bytes
// and its alphabet, 24 bits to 4 characters, least significant first.
func encodeSHACrypt(a []byte, is512 bool) string {
	var out strings.Builder
	put := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	if is512 {
		for i := range 21 {
			x, y, z := a[i], a[i+21], a[i+42]
			switch i % 3 {
			case 0:
				put(x, y, z, 4)
			case 1:
				put(y, z, x, 4)
			case 2:
				put(z, x, y, 4)
			}
		}
		put(0, 0, a[63], 2)
		return out.String()
	}
	for i := range 10 {
		x, y, z := a[i], a[i+10], a[i+20]
		switch i % 3 {
		case 0:
			put(x, y, z, 4)
		case 1:
			put(z, x, y, 4)
		case 2:
			put(y, z, x, 4)
		}
	}
	put(0, a[31], a[30], 3)
	return out.String()
}
