package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// MinRSABits is the smallest RSA modulus accepted for a signing key. MAA
// publishes a 1024-bit key beside its 2048-bit signing key; tokens signed
// by such a key are rejected (invalid_key) rather than trusted.
const MinRSABits = 2048

// keySet is a parsed JWKS: every entry with a string kid, usable or not.
// Unusable entries are kept (with the reason) so that a token selecting one
// gets invalid_key and the reason, while tokens selecting other keys are
// unaffected.
type keySet struct {
	byKid map[string][]*jwk
}

// jwk is one key set entry.
type jwk struct {
	kid string
	alg string // the entry's alg member, "" when absent
	key crypto.PublicKey
	err error // non-nil: the entry cannot be used, and why

	// The validity window of x5c[0]; zero when the entry has no x5c.
	notBefore, notAfter time.Time
}

func (s *keySet) lookup(kid string) []*jwk { return s.byKid[kid] }

// rawJWK holds the members of a JWK this package reads. Members are
// json.RawMessage where a wrong JSON type must make only this entry
// unusable rather than fail the whole set.
type rawJWK struct {
	Kty string   `json:"kty"`
	Use string   `json:"use"`
	Alg string   `json:"alg"`
	X5C []string `json:"x5c"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	Crv string   `json:"crv"`
	X   string   `json:"x"`
	Y   string   `json:"y"`
	D   string   `json:"d"`
}

// parseJWKS parses a JSON Web Key Set. The set itself must be a JSON
// object with a "keys" array; an entry that cannot be parsed does not fail
// the set (MAA's sets hold keys this package never needs, and a server may
// add key types we do not know), it is only unusable.
func parseJWKS(data []byte) (*keySet, error) {
	if len(data) > MaxBodySize {
		return nil, fmt.Errorf("key set is %d bytes, more than %d", len(data), MaxBodySize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`key set has no "keys" array`)
	}
	ks := &keySet{byKid: make(map[string][]*jwk)}
	for _, raw := range doc.Keys {
		var head struct {
			Kid json.RawMessage `json:"kid"`
		}
		if json.Unmarshal(raw, &head) != nil {
			continue // not an object: no kid can select it
		}
		var kid string
		if json.Unmarshal(head.Kid, &kid) != nil || kid == "" {
			continue // a key without a string kid is never selected
		}
		k := &jwk{kid: kid}
		k.err = k.parse(raw)
		if k.err != nil {
			k.key = nil
		}
		ks.byKid[kid] = append(ks.byKid[kid], k)
	}
	return ks, nil
}

func (k *jwk) parse(raw json.RawMessage) error {
	var r rawJWK
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("key %q: %w", k.kid, err)
	}
	k.alg = r.Alg
	if r.Use != "" && r.Use != "sig" {
		return fmt.Errorf("key %q has use %q, not sig", k.kid, r.Use)
	}
	if r.D != "" {
		// A private key in a public key set is a publisher bug; refusing
		// it keeps the mistake visible instead of silently working.
		return fmt.Errorf("key %q carries private key material", k.kid)
	}

	// The key from the JWK members, if it has any.
	var member crypto.PublicKey
	var err error
	switch r.Kty {
	case "RSA":
		if r.N != "" || r.E != "" {
			member, err = rsaFromMembers(r.N, r.E)
		}
	case "EC":
		if r.X != "" || r.Y != "" || r.Crv != "" {
			member, err = ecFromMembers(r.Crv, r.X, r.Y)
		}
	case "OKP":
		if r.X != "" || r.Crv != "" {
			member, err = okpFromMembers(r.Crv, r.X)
		}
	default:
		return fmt.Errorf("key %q has unsupported kty %q", k.kid, r.Kty)
	}
	if err != nil {
		return fmt.Errorf("key %q: %w", k.kid, err)
	}

	if len(r.X5C) == 0 {
		if member == nil {
			return fmt.Errorf("key %q has neither x5c nor key members", k.kid)
		}
		k.key = member
		return checkStrength(k.kid, member)
	}

	// x5c entries are standard base64 DER (RFC 7517 §4.7); MAA pads them.
	// Unpadded input is tolerated since some publishers strip padding.
	der, err := base64.StdEncoding.Strict().DecodeString(r.X5C[0])
	if err != nil {
		der, err = base64.RawStdEncoding.Strict().DecodeString(r.X5C[0])
	}
	if err != nil {
		return fmt.Errorf("key %q: x5c[0] is not base64: %w", k.kid, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("key %q: x5c[0]: %w", k.kid, err)
	}
	pub := cert.PublicKey
	if !ktyFits(r.Kty, pub) {
		return fmt.Errorf("key %q has kty %q but its certificate holds a %T", k.kid, r.Kty, pub)
	}
	if member != nil {
		eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(member) {
			return fmt.Errorf("key %q: its key members disagree with x5c[0]", k.kid)
		}
	}
	k.key = pub
	k.notBefore, k.notAfter = cert.NotBefore, cert.NotAfter
	return checkStrength(k.kid, pub)
}

func checkStrength(kid string, pub crypto.PublicKey) error {
	if p, ok := pub.(*rsa.PublicKey); ok && p.N.BitLen() < MinRSABits {
		return fmt.Errorf("key %q is RSA-%d, below the minimum of %d bits", kid, p.N.BitLen(), MinRSABits)
	}
	return nil
}

func ktyFits(kty string, pub crypto.PublicKey) bool {
	switch pub.(type) {
	case *rsa.PublicKey:
		return kty == "RSA"
	case *ecdsa.PublicKey:
		return kty == "EC"
	case ed25519.PublicKey:
		return kty == "OKP"
	}
	return false
}

// b64url decodes a base64url member without padding, as RFC 7518 requires.
func b64url(name, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("member %s is not base64url: %w", name, err)
	}
	return b, nil
}

func rsaFromMembers(n64, e64 string) (*rsa.PublicKey, error) {
	n, err := b64url("n", n64)
	if err != nil {
		return nil, err
	}
	e, err := b64url("e", e64)
	if err != nil {
		return nil, err
	}
	if len(n) == 0 || n[0] == 0 {
		return nil, errors.New("member n is empty or not minimal")
	}
	if len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, errors.New("member e is empty, not minimal or too large")
	}
	var ev int64
	for _, b := range e {
		ev = ev<<8 | int64(b)
	}
	if ev < 3 || ev%2 == 0 || ev > 1<<31-1 {
		return nil, fmt.Errorf("member e = %d is not a valid RSA exponent", ev)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}, nil
}

func ecFromMembers(crv, x64, y64 string) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported EC curve %q", crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := b64url("x", x64)
	if err != nil {
		return nil, err
	}
	y, err := b64url("y", y64)
	if err != nil {
		return nil, err
	}
	// RFC 7518 §6.2.1.2: x and y are exactly the curve's field size.
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("EC coordinates are %d and %d bytes, want %d", len(x), len(y), size)
	}
	point := append(append([]byte{4}, x...), y...)
	// ParseUncompressedPublicKey checks that the point is on the curve.
	return ecdsa.ParseUncompressedPublicKey(curve, point)
}

func okpFromMembers(crv, x64 string) (ed25519.PublicKey, error) {
	if crv != "Ed25519" {
		return nil, fmt.Errorf("unsupported OKP curve %q", crv)
	}
	x, err := b64url("x", x64)
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("Ed25519 key is %d bytes, want %d", len(x), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(bytes.Clone(x)), nil
}
