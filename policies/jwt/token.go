package jwt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/buger/jsonparser"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxTokenSize bounds a token, in bytes: a larger one is refused before it
// is decoded.
const MaxTokenSize = 16 << 10

// failure is why a token is refused; each has its counter and, in
// flexgate's own form, its message.
type failure uint8

const (
	failNone failure = iota
	failMalformed
	failTooLarge
	failAlgorithm
	failUnknownKey
	failSignature
	failExpired
	failNotYetValid
	failMissingExp
	failMissingNbf
	failIssuer
	failAudience
	failClaim
	// failUnavailable is no key at all: no JWK set was ever fetched (503).
	failUnavailable
	failCount
)

var failureNames = [failCount]string{
	failNone:        "valid",
	failMalformed:   "malformed",
	failTooLarge:    "too_large",
	failAlgorithm:   "algorithm",
	failUnknownKey:  "unknown_key",
	failSignature:   "signature",
	failExpired:     "expired",
	failNotYetValid: "not_yet_valid",
	failMissingExp:  "missing_exp",
	failMissingNbf:  "missing_nbf",
	failIssuer:      "issuer",
	failAudience:    "audience",
	failClaim:       "claim",
	failUnavailable: "jwks_unavailable",
}

var failureMessages = [failCount]string{
	failMalformed:   "the token is not a signed JWT: three base64url parts, a JSON header and a JSON object of claims without repeated names",
	failTooLarge:    "the token is larger than the gateway accepts",
	failAlgorithm:   "the token's algorithm (alg) is not one the route accepts",
	failUnknownKey:  "no key of the route fits the token's kid and alg",
	failSignature:   "the token's signature does not verify",
	failExpired:     "the token has expired",
	failNotYetValid: "the token is not valid yet (nbf)",
	failMissingExp:  "the token has no expiry (exp), which the route requires",
	failMissingNbf:  "the token has no nbf claim, which the route requires",
	failIssuer:      "the token's issuer (iss) is not one the route accepts",
	failAudience:    "the token's audience (aud) is not one the route accepts",
	failClaim:       "the token's claims do not meet the route's requirements",
}

var b64 = base64.RawURLEncoding.Strict()

// token is a JWT split and decoded, its signature not yet checked.
type token struct {
	alg, kid string
	// claims is the decoded payload: a JSON object without repeated
	// names (RFC 7493), so that whichever member a reader takes is the
	// only one.
	claims []byte
	// Registered claims, read once; exp and nbf in UnixNano (0: absent).
	exp, nbf      int64
	hasExp        bool
	hasNbf        bool
	iss, sub      string
	aud           []string
	hasIss        bool
	clientID, azp string
	scope         string
}

// parseToken splits a compact JWS and decodes its header and claims. It
// refuses what flexgate does not verify: anything but three parts, "alg"
// none or missing, a "crit" header (no extension is understood), an
// unencoded payload ("b64"), a nested or compressed token, a "typ" that
// names another kind of JWT, and a header or claims that are not one JSON
// object without repeated names. It reads nothing from the network and
// nothing of the header's key references (jku, x5u, jwk, x5c).
func parseToken(tok []byte) (*token, failure) {
	if len(tok) > MaxTokenSize {
		return nil, failTooLarge
	}
	h, rest, ok := bytes.Cut(tok, []byte{'.'})
	if !ok {
		return nil, failMalformed
	}
	p, s, ok := bytes.Cut(rest, []byte{'.'})
	if !ok || bytes.IndexByte(s, '.') >= 0 || len(h) == 0 || len(p) == 0 || len(s) == 0 {
		return nil, failMalformed
	}
	header, err := decodeObject(h)
	if err != nil {
		return nil, failMalformed
	}
	t := &token{}
	if f := t.readHeader(header); f != failNone {
		return nil, f
	}
	if t.claims, err = decodeObject(p); err != nil {
		return nil, failMalformed
	}
	if _, err := b64.DecodeString(string(s)); err != nil {
		return nil, failMalformed
	}
	if err := t.readClaims(); err != nil {
		return nil, failMalformed
	}
	return t, failNone
}

// decodeObject decodes one base64url part that must hold a JSON object
// under RFC 7493: valid UTF-8, no repeated member names.
func decodeObject(part []byte) ([]byte, error) {
	out := make([]byte, b64.DecodedLen(len(part)))
	n, err := b64.Decode(out, part)
	if err != nil {
		return nil, err
	}
	out = bytes.TrimSpace(out[:n])
	if len(out) == 0 || out[0] != '{' || !jsontext.Value(out).IsValid() {
		return nil, errors.New("not a JSON object")
	}
	return out, nil
}

func (t *token) readHeader(h []byte) failure {
	f := failNone
	err := jsonparser.ObjectEach(h, func(k, v []byte, typ jsonparser.ValueType, _ int) error {
		switch string(k) {
		case "alg":
			s, err := jsonparser.ParseString(v)
			if typ != jsonparser.String || err != nil {
				f = failMalformed
				return errStop
			}
			t.alg = s
		case "kid":
			if typ != jsonparser.String {
				f = failMalformed
				return errStop
			}
			s, err := jsonparser.ParseString(v)
			if err != nil {
				f = failMalformed
				return errStop
			}
			t.kid = s
		case "typ":
			s, _ := jsonparser.ParseString(v)
			if typ != jsonparser.String || !jwtType(s) {
				f = failMalformed
				return errStop
			}
		case "cty":
			s, _ := jsonparser.ParseString(v)
			if strings.EqualFold(s, "JWT") {
				// A nested token: its inner claims were never seen.
				f = failMalformed
				return errStop
			}
		case "crit", "b64", "zip", "enc":
			// crit: RFC 7515 §4.1.11, no extension is understood;
			// b64: RFC 7797 unencoded payloads; zip and enc: JWE.
			f = failMalformed
			return errStop
		}
		return nil
	})
	switch {
	case f != failNone:
		return f
	case err != nil:
		return failMalformed
	case t.alg == "" || strings.EqualFold(t.alg, "none"):
		return failAlgorithm
	}
	return failNone
}

var errStop = errors.New("stop")

// jwtType reports whether a "typ" header names a JWT used as an access or
// ID token (RFC 7519 §5.1, RFC 9068 §2.1). Other types (logout tokens,
// DPoP proofs, security events) are JWTs of other meanings, refused so that
// one cannot pass for another (RFC 8725 §3.11).
func jwtType(s string) bool {
	s = strings.ToLower(s)
	s = strings.TrimPrefix(s, "application/")
	return s == "jwt" || s == "at+jwt"
}

// readClaims reads the registered claims the policy checks and hands on.
// A registered claim of the wrong type fails the token, so that it is never
// taken as valid for want of reading it.
func (t *token) readClaims() error {
	return jsonparser.ObjectEach(t.claims, func(k, v []byte, typ jsonparser.ValueType, _ int) error {
		var err error
		switch string(k) {
		case "exp":
			t.exp, err = numericDate(v, typ)
			t.hasExp = typ != jsonparser.Null
		case "nbf":
			t.nbf, err = numericDate(v, typ)
			t.hasNbf = typ != jsonparser.Null
		case "iat":
			_, err = numericDate(v, typ)
		case "iss":
			t.iss, err = stringClaim(v, typ)
			t.hasIss = typ == jsonparser.String
		case "sub":
			t.sub, err = stringClaim(v, typ)
		case "aud":
			t.aud, err = audience(v, typ)
		case "client_id":
			t.clientID, err = stringClaim(v, typ)
		case "azp":
			t.azp, err = stringClaim(v, typ)
		case "scope":
			// RFC 8693 §4.2: a space-separated string. Some issuers
			// send an array; it stays readable as $token.claims.scope.
			if typ == jsonparser.String {
				t.scope, err = jsonparser.ParseString(v)
			}
		}
		return err
	})
}

// numericDate reads a NumericDate (RFC 7519 §2) as UnixNano; null is the
// claim left out. A date at or before 1970 is the earliest instant; one too
// far ahead for nanoseconds is the last instant (an exp that never comes,
// an nbf never reached).
func numericDate(v []byte, typ jsonparser.ValueType) (int64, error) {
	switch typ {
	case jsonparser.Null:
		return 0, nil
	case jsonparser.Number:
	default:
		return 0, errors.New("a date is not a number")
	}
	f, err := jsonparser.ParseFloat(v)
	switch {
	case err != nil || math.IsNaN(f):
		return 0, errors.New("a date is not a number")
	case f <= 0:
		return 1, nil
	case f >= 1<<33:
		return math.MaxInt64, nil
	}
	return int64(f * float64(time.Second)), nil
}

func stringClaim(v []byte, typ jsonparser.ValueType) (string, error) {
	switch typ {
	case jsonparser.Null:
		return "", nil
	case jsonparser.String:
		return jsonparser.ParseString(v)
	}
	return "", errors.New("a string claim is not a string")
}

// audience reads "aud": one string or an array of strings.
func audience(v []byte, typ jsonparser.ValueType) ([]string, error) {
	switch typ {
	case jsonparser.Null:
		return nil, nil
	case jsonparser.String:
		s, err := jsonparser.ParseString(v)
		return []string{s}, err
	case jsonparser.Array:
		var out []string
		var bad error
		_, err := jsonparser.ArrayEach(v, func(e []byte, et jsonparser.ValueType, _ int, _ error) {
			if et != jsonparser.String {
				bad = errors.New("aud holds something other than strings")
				return
			}
			s, err := jsonparser.ParseString(e)
			if err != nil {
				bad = err
				return
			}
			out = append(out, s)
		})
		if err == nil {
			err = bad
		}
		return out, err
	}
	return nil, errors.New("aud is neither a string nor an array")
}
