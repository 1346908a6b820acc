package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// The algorithms flexgate verifies. "none" is never among them: an
// unsigned token is refused whatever the config says.
var knownAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "Ed25519",
	"HS256", "HS384", "HS512",
}

// minRSABits is the smallest RSA modulus a key may have (NIST SP 800-131A).
const minRSABits = 2048

// vkey is one verification key. Its type fixes the algorithms it verifies,
// so that a token cannot pick how its signature is checked: an HS256 token
// is never checked with an RSA public key taken for an HMAC secret.
// A vkey is immutable but for dropped, and safe for concurrent use.
type vkey struct {
	// kid is the key's id; empty fits a token with any kid.
	kid string
	// raw is *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or
	// []byte (an HMAC secret).
	raw any
	// algs are the algorithms the key verifies, with configured
	// restrictions applied; never empty.
	algs []jwa.SignatureAlgorithm
	// id tells the same key apart across JWKS fetches.
	id string
	// dropped is set when a JWKS fetch no longer lists the key: tokens
	// verified with it are verified again.
	dropped atomic.Bool
}

func (k *vkey) verifies(alg string) (jwa.SignatureAlgorithm, bool) {
	for _, a := range k.algs {
		if a.String() == alg {
			return a, true
		}
	}
	return jwa.SignatureAlgorithm{}, false
}

// algsFor returns the algorithms a key of raw's type can verify.
func algsFor(raw any) ([]string, error) {
	switch k := raw.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("the RSA key has %d bits; at least %d are required", k.N.BitLen(), minRSABits)
		}
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, nil
		case elliptic.P384():
			return []string{"ES384"}, nil
		case elliptic.P521():
			return []string{"ES512"}, nil
		}
		return nil, fmt.Errorf("the EC key is on curve %s; P-256, P-384 and P-521 are supported", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return []string{"EdDSA", "Ed25519"}, nil
	case []byte:
		// RFC 7518 §3.2: a key at least as long as the hash.
		var out []string
		for _, a := range []struct {
			alg  string
			size int
		}{{"HS256", 32}, {"HS384", 48}, {"HS512", 64}} {
			if len(k) >= a.size {
				out = append(out, a.alg)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("the HMAC secret has %d bytes; HS256 needs at least 32, HS384 48, HS512 64", len(k))
		}
		return out, nil
	}
	return nil, fmt.Errorf("keys of type %T are not supported", raw)
}

// newKey builds a vkey for raw. only, when not empty, restricts it to one
// algorithm (a JWK's "alg"); allowed, when not nil, to the configured ones.
func newKey(raw any, kid, only string, allowed map[string]bool) (*vkey, error) {
	names, err := algsFor(raw)
	if err != nil {
		return nil, err
	}
	if only != "" {
		if !slices.Contains(names, only) {
			return nil, fmt.Errorf("the key's alg is %q, which a key of its type cannot verify (it verifies %s)", only, strings.Join(names, ", "))
		}
		names = []string{only}
	}
	k := &vkey{kid: kid, raw: raw}
	for _, n := range names {
		if allowed != nil && !allowed[n] {
			continue
		}
		a, ok := jwa.LookupSignatureAlgorithm(n)
		if !ok {
			return nil, fmt.Errorf("algorithm %s is not available", n)
		}
		k.algs = append(k.algs, a)
	}
	if len(k.algs) == 0 {
		return nil, fmt.Errorf("the key verifies %s, none of which the policy allows", strings.Join(names, ", "))
	}
	k.id = keyID(raw, kid, k.algs)
	return k, nil
}

// keyID names a key by its material, kid and algorithms.
func keyID(raw any, kid string, algs []jwa.SignatureAlgorithm) string {
	h := sha256.New()
	switch k := raw.(type) {
	case []byte:
		h.Write([]byte("oct"))
		h.Write(k)
	default:
		der, _ := x509.MarshalPKIXPublicKey(k)
		h.Write(der)
	}
	h.Write([]byte{0})
	h.Write([]byte(kid))
	for _, a := range algs {
		h.Write([]byte{0})
		h.Write([]byte(a.String()))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// parsePEM reads one public key: a PUBLIC KEY, RSA PUBLIC KEY or
// CERTIFICATE block. Text without a PEM header is taken as the base64 body
// of a PUBLIC KEY, as Flex Gateway's textKey is written.
func parsePEM(text string) (any, error) {
	text = strings.TrimSpace(text)
	if !strings.Contains(text, "-----BEGIN") {
		text = "-----BEGIN PUBLIC KEY-----\n" + text + "\n-----END PUBLIC KEY-----\n"
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("it is not PEM: write the public key as -----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("it holds more than one PEM block: give one key per entry")
	}
	switch {
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, errors.New("it is a private key: give the public key only (openssl pkey -in key.pem -pubout)")
	case block.Type == "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the public key does not parse: %w", err)
		}
		return k, nil
	case block.Type == "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the RSA public key does not parse: %w", err)
		}
		return k, nil
	case block.Type == "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the certificate does not parse: %w", err)
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("a PEM block of type %q is not a public key: use PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
}

// maxJWKSKeys bounds the keys of one JWK set.
const maxJWKSKeys = 100

// parseJWKS reads a JWK set (or one JWK) and returns the keys fit to
// verify signatures, and why each other key was left out. A set that is
// not JSON, or has no usable key, is an error.
func parseJWKS(body []byte, allowed map[string]bool) (keys []*vkey, skipped []string, err error) {
	set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(false), jwk.WithMaxKeys(maxJWKSKeys))
	if err != nil {
		return nil, nil, fmt.Errorf("not a JWK set: %w", err)
	}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		vk, err := fromJWK(k, allowed)
		if err != nil {
			kid, _ := k.KeyID()
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, kid, err))
			continue
		}
		keys = append(keys, vk)
	}
	if len(keys) == 0 {
		if len(skipped) == 0 {
			return nil, nil, errors.New("the JWK set has no keys")
		}
		return nil, skipped, fmt.Errorf("no key of the JWK set can verify tokens: %s", strings.Join(skipped, "; "))
	}
	return keys, skipped, nil
}

// fromJWK converts one JWK of a set. Symmetric keys are refused: a JWK set
// is published, and a secret in it is no secret.
func fromJWK(k jwk.Key, allowed map[string]bool) (*vkey, error) {
	if _, ok := k.(jwk.UnsupportedKey); ok {
		return nil, errors.New("its key type is not supported")
	}
	if k.KeyType() == jwa.OctetSeq() {
		return nil, errors.New("it is a symmetric (oct) key, which must never be published; give HMAC secrets as secret")
	}
	if k.Has("d") {
		return nil, errors.New("it holds a private key (d): whoever can read it can sign tokens, so it verifies nothing; publish the public key only")
	}
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return nil, fmt.Errorf("its use is %q, not sig", use)
	}
	if ops, ok := k.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, errors.New("its key_ops do not include verify")
	}
	pub, err := jwk.PublicKeyOf(k)
	if err != nil {
		return nil, err
	}
	var raw any
	if err := jwk.Export(pub, &raw); err != nil {
		return nil, err
	}
	if p, ok := raw.(*ed25519.PublicKey); ok {
		raw = *p
	}
	if p, ok := raw.(crypto.PublicKey).(*ecdsa.PublicKey); ok && p == nil {
		return nil, errors.New("its EC key is empty")
	}
	only := ""
	if a, ok := k.Algorithm(); ok {
		only = a.String()
	}
	kid, _ := k.KeyID()
	return newKey(raw, kid, only, allowed)
}
