package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/attestd/attestd/internal/jose"
)

// AlgNone is the algorithm of an unsecured JWS: MAA's way of sending an
// unsigned policy in AAD mode.
const AlgNone = "none"

// MaxJWSBytes bounds the JWS ParseJWS accepts. A policy document is at most
// a few tens of kilobytes; a certificate chain a few kilobytes.
const MaxJWSBytes = 1 << 20

// maxChainLength bounds the certificates an x5c header may carry.
const maxChainLength = 8

// documentAlgorithms are the algorithms a signed policy or certificate
// operation may use: what the Azure SDKs and az CLI produce (RS256, ES256)
// and their stronger siblings. Never "none" here: unsecured documents are a
// separate, explicit case (JWS.Unsecured).
func documentAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"}
}

// JWSHeader is the part of a JOSE header attestd reads on client documents.
type JWSHeader struct {
	Alg string   `json:"alg"`
	X5C []string `json:"x5c,omitempty"`
	// JWK is kept only to refuse it: attestd never takes a key from the
	// message it is meant to authenticate.
	JWK  json.RawMessage `json:"jwk,omitempty"`
	KID  string          `json:"kid,omitempty"`
	Typ  string          `json:"typ,omitempty"`
	Crit []string        `json:"crit,omitempty"`
}

// JWS is a parsed compact JWS sent by a client.
type JWS struct {
	// Raw is the compact serialization exactly as received.
	Raw    string
	Header JWSHeader
	// Payload is the decoded payload; empty for a reset.
	Payload []byte
	// Chain is the x5c certificates, leaf first; nil when unsigned.
	Chain     []*x509.Certificate
	signature []byte
	// signingInput is header "." payload, as received.
	signingInput string
}

// Unsecured reports whether the JWS is unsigned (alg "none").
func (j *JWS) Unsecured() bool { return j.Header.Alg == AlgNone }

// ParseJWS parses a compact JWS strictly: three base64url parts without
// padding, a header that is a JSON object without duplicate members, a
// known algorithm, no critical extensions, and for signed documents an x5c
// chain of parseable certificates. It checks no signature: see
// VerifySignature.
func ParseJWS(s string) (*JWS, error) {
	if len(s) > MaxJWSBytes {
		return nil, fmt.Errorf("token: JWS is %d bytes, more than the %d allowed", len(s), MaxJWSBytes)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("token: a compact JWS has three dot-separated parts, this has %d", len(parts))
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("token: JWS header is not base64url: %w", err)
	}
	payload, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("token: JWS payload is not base64url: %w", err)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("token: JWS signature is not base64url: %w", err)
	}
	members, err := exactObject(hb)
	if err != nil {
		return nil, fmt.Errorf("token: JWS header: %w", err)
	}
	if err := exactMembers(members, "header", "alg", "x5c", "jwk", "kid", "typ", "crit", "cty", "x5t", "x5t#S256", "jku", "x5u"); err != nil {
		return nil, fmt.Errorf("token: JWS header: %w", err)
	}
	j := &JWS{Raw: s, Payload: payload, signature: sig, signingInput: s[:len(parts[0])+1+len(parts[1])]}
	if err := json.Unmarshal(hb, &j.Header); err != nil {
		return nil, fmt.Errorf("token: JWS header: %w", err)
	}
	if len(j.Header.Crit) > 0 {
		return nil, fmt.Errorf("token: JWS header lists critical extensions %q that attestd does not understand", j.Header.Crit)
	}
	if len(j.Header.JWK) > 0 {
		return nil, errors.New("token: JWS header carries a jwk; attestd takes signing keys only from x5c certificates")
	}
	if j.Header.Alg == AlgNone {
		if len(sig) != 0 {
			return nil, errors.New(`token: an unsecured JWS (alg "none") must have an empty signature`)
		}
		if len(j.Header.X5C) > 0 {
			return nil, errors.New(`token: an unsecured JWS (alg "none") must not carry x5c`)
		}
		return j, nil
	}
	if !slices.Contains(documentAlgorithms(), j.Header.Alg) {
		return nil, fmt.Errorf("token: JWS algorithm %q is not accepted (use RS256, ES256 or another of RS/PS/ES 256-512)", j.Header.Alg)
	}
	if len(j.Header.X5C) == 0 {
		return nil, errors.New("token: a signed JWS must carry its signing certificate in the x5c header")
	}
	if len(j.Header.X5C) > maxChainLength {
		return nil, fmt.Errorf("token: x5c has %d certificates, at most %d are accepted", len(j.Header.X5C), maxChainLength)
	}
	for i, c := range j.Header.X5C {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return nil, fmt.Errorf("token: x5c[%d] is not standard base64: %w", i, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("token: x5c[%d] is not an X.509 certificate: %w", i, err)
		}
		j.Chain = append(j.Chain, cert)
	}
	return j, nil
}

// exactObject decodes one JSON object into its members, refusing member
// names that repeat, also when they differ only in case, and trailing
// data.
func exactObject(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	folded := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		name, _ := tok.(string)
		if folded[strings.ToLower(name)] {
			return nil, fmt.Errorf("member %q appears twice (names are compared without regard to case)", name)
		}
		folded[strings.ToLower(name)] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("trailing data after the JSON object")
	}
	return out, nil
}

// exactMembers checks that every member of obj is one of allowed, spelled
// exactly: a member that differs only in case would be read by one parser
// and ignored by another.
func exactMembers(obj map[string]json.RawMessage, what string, allowed ...string) error {
	for name := range obj {
		if slices.Contains(allowed, name) {
			continue
		}
		for _, a := range allowed {
			if strings.EqualFold(a, name) {
				return fmt.Errorf("%s member %q must be spelled %q", what, name, a)
			}
		}
	}
	return nil
}

// VerifySignature checks the JWS signature with the public key of its x5c
// leaf. That proves only that whoever holds the leaf's key signed it; the
// caller decides whether to trust the leaf (isolated mode requires it to be
// a registered policy-management certificate or to chain to one).
func (j *JWS) VerifySignature() error {
	if j.Unsecured() {
		return errors.New("token: the JWS is unsigned")
	}
	alg, _ := jose.Lookup(j.Header.Alg) // ParseJWS admitted only documentAlgorithms
	leaf := j.Chain[0]
	if pub, ok := leaf.PublicKey.(*rsa.PublicKey); ok && pub.N.BitLen() < 2048 {
		return fmt.Errorf("token: the signing RSA key has %d bits, at least 2048 are required", pub.N.BitLen())
	}
	valid, fits := alg.Verify(leaf.PublicKey, []byte(j.signingInput), j.signature)
	switch {
	case !fits:
		want := "an RSA certificate"
		if alg.KeyType == "EC" {
			want = "an EC certificate on " + alg.Curve
		}
		return fmt.Errorf("token: %s needs %s, the x5c leaf holds %T", alg.Name, want, leaf.PublicKey)
	case !valid:
		return errors.New("token: JWS signature does not verify with the x5c leaf")
	}
	return nil
}

// SignJWS signs payload as a compact JWS whose header is
// {"alg":...,"x5c":[chain]}, the shape the Azure SDKs send for signed
// policies and certificate operations. The algorithm follows the key: RS256
// for RSA, ES256/ES384 for P-256/P-384.
func SignJWS(signer crypto.Signer, chain []*x509.Certificate, payload []byte) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("token: signing a JWS needs the signer's certificate")
	}
	var alg string
	var hash crypto.Hash
	var ecSize int
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		alg, hash = "RS256", crypto.SHA256
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			alg, hash, ecSize = "ES256", crypto.SHA256, 32
		case elliptic.P384():
			alg, hash, ecSize = "ES384", crypto.SHA384, 48
		default:
			return "", fmt.Errorf("token: EC curve %s is not supported for JWS", pub.Curve.Params().Name)
		}
	default:
		return "", fmt.Errorf("token: %T keys are not supported for JWS", pub)
	}
	x5c := make([]string, len(chain))
	for i, c := range chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	h, err := json.Marshal(struct {
		Alg string   `json:"alg"`
		X5C []string `json:"x5c"`
	}{alg, x5c})
	if err != nil {
		return "", fmt.Errorf("token: header: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(payload)
	d := hash.New()
	d.Write([]byte(input))
	sig, err := signer.Sign(rand.Reader, d.Sum(nil), hash)
	if err != nil {
		return "", fmt.Errorf("token: signing: %w", err)
	}
	if ecSize > 0 {
		// crypto.Signer gives ASN.1; JWS wants the fixed-size r||s.
		if sig, err = ecdsaRaw(sig, ecSize); err != nil {
			return "", err
		}
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// UnsecuredDocument returns the unsigned JWS ({"alg":"none"}) of a raw
// payload; an empty payload gives MAA's reset body "eyJhbGciOiJub25lIn0..".
func UnsecuredDocument(payload []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(payload) + "."
}

func ecdsaRaw(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, fmt.Errorf("token: ECDSA signature: %w", err)
	}
	limit := new(big.Int).Lsh(big.NewInt(1), uint(8*size))
	for _, v := range []*big.Int{sig.R, sig.S} {
		if v == nil || v.Sign() <= 0 || v.Cmp(limit) >= 0 {
			return nil, errors.New("token: the signer returned an ECDSA signature out of range")
		}
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}
