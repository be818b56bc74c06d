package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"
)

// Bounds on the key set.
const (
	maxJWKSKeys    = 100
	minRSABits     = 2048
	maxRSABits     = 8192
	maxRSAExponent = 1<<31 - 1
)

// jwk is a usable verification key of the provider's key set.
type jwk struct {
	kid    string
	hasKid bool
	alg    string // "" when the JWK names none
	kty    string // "RSA" or "EC"
	crv    string // for EC
	pub    crypto.PublicKey
}

// fits reports whether k may verify a token signed with alg (named name).
func (k *jwk) fits(name string, alg jwsAlg) bool {
	if k.alg != "" && k.alg != name {
		return false
	}
	if k.kty != alg.KeyType {
		return false
	}
	return alg.KeyType != "EC" || k.crv == alg.Curve
}

// keySet is one fetch of the provider's JWKS. It is never modified after
// it is built.
type keySet struct {
	keys    []jwk
	fetched time.Time
}

// parseJWKS parses a JWK Set. Entries this package cannot or must not use
// are skipped (and logged at debug level): a key of another type or curve,
// one for encryption, one too small. A document that is not a JWK Set is
// an error.
func parseJWKS(data []byte, log *slog.Logger) (*keySet, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	rawKeys, ok := doc["keys"]
	if !ok {
		return nil, errors.New("key set has no keys member")
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(rawKeys, &entries); err != nil {
		return nil, fmt.Errorf("key set: keys: %w", err)
	}
	ks := &keySet{}
	for i, raw := range entries {
		if len(ks.keys) == maxJWKSKeys {
			log.Warn("OIDC key set has too many keys; the rest are ignored", "limit", maxJWKSKeys, "keys", len(entries))
			break
		}
		k, err := parseJWK(raw)
		if err != nil {
			log.Debug("OIDC key set entry skipped", "index", i, "reason", err.Error())
			continue
		}
		ks.keys = append(ks.keys, *k)
	}
	return ks, nil
}

// parseJWK parses one JWK (RFC 7517, RFC 7518 §6) into a verification key.
func parseJWK(raw json.RawMessage) (*jwk, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	str := func(name string) (string, bool, error) {
		v, ok := m[name]
		if !ok {
			return "", false, nil
		}
		s, ok := v.(string)
		if !ok {
			return "", true, fmt.Errorf("%s is not a string", name)
		}
		return s, true, nil
	}
	k := &jwk{}
	var err error
	var present bool
	if k.kty, _, err = str("kty"); err != nil {
		return nil, err
	}
	if k.kid, k.hasKid, err = str("kid"); err != nil {
		return nil, err
	}
	if k.alg, _, err = str("alg"); err != nil {
		return nil, err
	}
	use, present, err := str("use")
	if err != nil {
		return nil, err
	}
	if present && use != "sig" {
		return nil, fmt.Errorf("use is %.32q, not sig", use)
	}
	if ops, ok := m["key_ops"]; ok {
		list, ok := ops.([]any)
		verify := false
		for _, op := range list {
			verify = verify || op == "verify"
		}
		if !ok || !verify {
			return nil, errors.New("key_ops does not allow verify")
		}
	}
	// A published private key means anyone can sign: refuse the entry
	// rather than quietly use its public half.
	for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := m[priv]; ok {
			return nil, fmt.Errorf("entry carries private key member %s", priv)
		}
	}
	switch k.kty {
	case "RSA":
		n, err := b64Member(m, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64Member(m, "e")
		if err != nil {
			return nil, err
		}
		N := new(big.Int).SetBytes(n)
		if bits := N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("RSA modulus has %d bits, want %d to %d", bits, minRSABits, maxRSABits)
		}
		if N.Bit(0) == 0 {
			return nil, errors.New("RSA modulus is even")
		}
		E := new(big.Int).SetBytes(e)
		if E.BitLen() > 31 || E.Int64() < 3 || E.Bit(0) == 0 || E.Int64() > maxRSAExponent {
			return nil, errors.New("RSA exponent is not an odd number from 3 to 2^31-1")
		}
		k.pub = &rsa.PublicKey{N: N, E: int(E.Int64())}
	case "EC":
		crv, _, err := str("crv")
		if err != nil {
			return nil, err
		}
		var curve elliptic.Curve
		switch crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, fmt.Errorf("EC curve %.32q is not supported", crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64Member(m, "x")
		if err != nil {
			return nil, err
		}
		y, err := b64Member(m, "y")
		if err != nil {
			return nil, err
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("EC coordinates are %d and %d bytes, want %d", len(x), len(y), size)
		}
		point := make([]byte, 0, 1+2*size)
		point = append(point, 4)
		point = append(point, x...)
		point = append(point, y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		k.crv = crv
		k.pub = pub
	default:
		return nil, fmt.Errorf("kty %.32q is not supported", k.kty)
	}
	return k, nil
}

// b64Member decodes a required base64url (unpadded) member of a JWK.
func b64Member(m map[string]any, name string) ([]byte, error) {
	v, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("member %s is missing", name)
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("member %s is not a string", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("member %s is not base64url: %w", name, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("member %s is empty", name)
	}
	return b, nil
}
