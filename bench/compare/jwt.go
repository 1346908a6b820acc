package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// benchKID names the benchmark's signing key in its JWK set.
const benchKID = "bench-1"

// makeBenchJWT makes the run's RS256 key, writes its public JWK set to
// dir/jwks.json (bench/upstream serves it at /jwks) and returns a token
// signed with it that the chain's jwt-validation accepts for a day.
func makeBenchJWT(dir string) (token, jwksFile string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	pub, err := jwk.Import(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	for k, v := range map[string]any{jwk.KeyIDKey: benchKID, jwk.AlgorithmKey: jwa.RS256(), jwk.KeyUsageKey: "sig"} {
		if err := pub.Set(k, v); err != nil {
			return "", "", err
		}
	}
	set, err := json.Marshal(map[string]any{"keys": []jwk.Key{pub}})
	if err != nil {
		return "", "", err
	}
	jwksFile = filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, set, 0o644); err != nil {
		return "", "", err
	}
	claims := fmt.Sprintf(`{"iss":"https://bench.flexgate.local","sub":"bench","aud":"products","client_id":%q,"scope":"products:read","exp":%d}`,
		benchClientID, time.Now().Add(24*time.Hour).Unix())
	h := jws.NewHeaders()
	for k, v := range map[string]any{jws.KeyIDKey: benchKID, jws.TypeKey: "JWT"} {
		if err := h.Set(k, v); err != nil {
			return "", "", err
		}
	}
	b, err := jws.Sign([]byte(claims), jws.WithKey(jwa.RS256(), key, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", "", err
	}
	return string(b), jwksFile, nil
}
