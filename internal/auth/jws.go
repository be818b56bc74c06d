package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/attestd/attestd/internal/jose"
)

// jwsAlg is a JWS signature algorithm this package can verify.
type jwsAlg = jose.Algorithm

// lookupAlg returns an alg an operator may allow: one of
// SupportedAlgorithms. Symmetric algorithms are absent on purpose (keyed
// with a public key, an HMAC proves nothing), and so is "none".
func lookupAlg(name string) (jwsAlg, bool) {
	for _, n := range SupportedAlgorithms() {
		if n == name {
			return jose.Lookup(name)
		}
	}
	return jwsAlg{}, false
}

// DefaultAlgorithms returns the allow-list used when
// OIDCConfig.Algorithms is empty: RS256, ES256 and PS256.
func DefaultAlgorithms() []string { return []string{"RS256", "ES256", "PS256"} }

// SupportedAlgorithms returns every alg OIDCConfig.Algorithms may name.
func SupportedAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"}
}

// verifySignature reports whether sig is alg's signature of signingInput
// under key. The key's type has been matched to alg by the caller; a
// mismatch here is a failure, never a panic.
func verifySignature(alg jwsAlg, key *jwk, signingInput, sig []byte) bool {
	if !key.fits(alg.Name, alg) {
		return false
	}
	valid, _ := alg.Verify(key.pub, signingInput, sig)
	return valid
}

// jwt is a compact JWS split and decoded, before its signature is checked.
type jwt struct {
	alg          string
	kid          string
	hasKid       bool
	claims       map[string]any // JSON numbers are json.Number
	signingInput []byte
	sig          []byte
}

// maxJSONDepth bounds the nesting of header and claims.
const maxJSONDepth = 32

// parseJWT checks a compact JWS's syntax and header. It checks no
// signature and no claim; it does no I/O.
func parseJWT(tok string) (*jwt, *Error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, unauthorized(ReasonMalformedToken, "the token is not a compact JWS (header.payload.signature)",
			fmt.Errorf("%d parts", len(parts)))
	}
	// base64.RawURLEncoding skips CR and LF; bearerToken has already
	// refused every byte outside token68, and "=" is refused here, so a
	// token has exactly one spelling.
	var raw [3][]byte
	for i, name := range [3]string{"header", "payload", "signature"} {
		b, err := base64.RawURLEncoding.Strict().DecodeString(parts[i])
		if err != nil {
			return nil, unauthorized(ReasonMalformedToken, "the token's "+name+" is not base64url", err)
		}
		raw[i] = b
	}
	hdr, err := decodeJSONObject(raw[0])
	if err != nil {
		return nil, unauthorized(ReasonMalformedToken, "the token's header is not a valid JSON object", err)
	}
	t := &jwt{sig: raw[2], signingInput: []byte(tok[:len(parts[0])+1+len(parts[1])])}

	algV, ok := hdr["alg"]
	if !ok {
		return nil, unauthorized(ReasonMalformedToken, "the token's header has no alg", nil)
	}
	if t.alg, ok = algV.(string); !ok {
		return nil, unauthorized(ReasonMalformedToken, "the token's alg is not a string", nil)
	}
	if kid, ok := hdr["kid"]; ok {
		if t.kid, ok = kid.(string); !ok {
			return nil, unauthorized(ReasonMalformedToken, "the token's kid is not a string", nil)
		}
		t.hasKid = true
	}
	if typ, ok := hdr["typ"]; ok {
		if _, ok := typ.(string); !ok {
			return nil, unauthorized(ReasonMalformedToken, "the token's typ is not a string", nil)
		}
	}
	// RFC 7515 §4.1.11: extensions listed in crit must be understood, and
	// none are. b64 (RFC 7797), zip and enc belong to other formats.
	// jwk, jku, x5c, x5u, x5t and x5t#S256 are ignored: a token never
	// chooses the key that verifies it.
	for _, name := range []string{"crit", "b64", "zip", "enc"} {
		if _, ok := hdr[name]; ok {
			return nil, unauthorized(ReasonInvalidToken, "the token's header member "+name+" is not supported", nil)
		}
	}

	claims, err := decodeJSONObject(raw[1])
	if err != nil {
		return nil, unauthorized(ReasonMalformedToken, "the token's claims are not a valid JSON object", err)
	}
	t.claims = claims
	return t, nil
}

// decodeJSONObject decodes a JSON object that is valid UTF-8, has no
// duplicate member names at any depth, nests at most maxJSONDepth deep
// and has nothing after it. Numbers stay json.Number.
func decodeJSONObject(data []byte) (map[string]any, error) {
	if err := checkJSONObject(data); err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// checkJSONObject enforces decodeJSONObject's rules by streaming the
// tokens: encoding/json itself keeps the last of duplicate members, and
// two parsers that disagree on which one counts is how signed content gets
// misread.
func checkJSONObject(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	started := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !started || len(stack) != 0 {
				return errors.New("unexpected end of JSON")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if !started {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return errors.New("not a JSON object")
			}
			started = true
			stack = append(stack, &frame{object: true, wantKey: true, keys: map[string]struct{}{}})
			continue
		}
		if len(stack) == 0 {
			return errors.New("data after the JSON object")
		}
		top := stack[len(stack)-1]
		if top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k, ok := tok.(string)
			if !ok {
				return errors.New("object member name is not a string")
			}
			if _, dup := top.keys[k]; dup {
				return fmt.Errorf("duplicate member name %.64q", k)
			}
			top.keys[k] = struct{}{}
			top.wantKey = false
			continue
		}
		// tok starts or ends a value inside top.
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top.object {
					top.wantKey = true // for after this value
				}
				if len(stack) >= maxJSONDepth {
					return fmt.Errorf("nested deeper than %d", maxJSONDepth)
				}
				f := &frame{object: d == '{', wantKey: d == '{'}
				if f.object {
					f.keys = map[string]struct{}{}
				}
				stack = append(stack, f)
			case ']', '}':
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top.object {
			top.wantKey = true
		}
	}
}
