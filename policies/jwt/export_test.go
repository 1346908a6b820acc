package jwt

import (
	"crypto/rsa"
	"testing"
)

// For the end-to-end tests of package jwt_test.

// RSAKeyForTest is a 2048-bit RSA key made once per test binary.
func RSAKeyForTest() *rsa.PrivateKey { return keysOnce().rsa }

// OtherRSAKeyForTest is another 2048-bit RSA key, made once.
func OtherRSAKeyForTest() *rsa.PrivateKey { return keysOnce().rsa2 }

// SignForTest signs claims (JSON) with RS256 and kid.
func SignForTest(t testing.TB, key *rsa.PrivateKey, kid, claims string) string {
	return sign(t, "RS256", key, hdr("RS256", kid), claims)
}

// JWKSForTest is a JWK set of one RSA public key.
func JWKSForTest(t testing.TB, pub *rsa.PublicKey, kid string) []byte {
	return jwksOf(t, jwkEntry{pub: pub, kid: kid})
}

// SignHMACForTest signs claims (JSON) with HS256 and secret.
func SignHMACForTest(t testing.TB, secret []byte, claims string) string {
	return sign(t, "HS256", secret, hdr("HS256", ""), claims)
}
