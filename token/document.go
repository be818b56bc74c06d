package token

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// PolicyPayload is MAA's StoredAttestationPolicy: the body of the JWS a
// policy travels in, {"AttestationPolicy": base64url(UTF-8 text)}.
func PolicyPayload(text string) []byte {
	b, _ := json.Marshal(struct {
		AttestationPolicy string `json:"AttestationPolicy"`
	}{base64.RawURLEncoding.EncodeToString([]byte(text))})
	return b
}

// PolicyFromPayload returns the policy text of a StoredAttestationPolicy
// payload. Padding and the standard alphabet are tolerated in the inner
// base64, since hand-made documents use them.
func PolicyFromPayload(payload []byte) (string, error) {
	members, err := exactObject(payload)
	if err != nil {
		return "", fmt.Errorf("token: policy document: %w", err)
	}
	// Only the policy: nothing a reviewer's tool might show while attestd
	// reads something else, and nothing to pad the stored history with.
	for name := range members {
		if name != "AttestationPolicy" {
			return "", fmt.Errorf(`token: policy document has member %q; only "AttestationPolicy" is allowed`, name)
		}
	}
	rawText, ok := members["AttestationPolicy"]
	if !ok {
		return "", errors.New(`token: policy document has no "AttestationPolicy" member`)
	}
	var text string
	if err := json.Unmarshal(rawText, &text); err != nil {
		return "", errors.New("token: AttestationPolicy is not a string")
	}
	raw, err := decodeLenientBase64(text)
	if err != nil {
		return "", fmt.Errorf("token: AttestationPolicy is not base64url: %w", err)
	}
	if !utf8.Valid(raw) {
		return "", errors.New("token: the policy text is not UTF-8")
	}
	return string(raw), nil
}

func decodeLenientBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return nil, err
}

// DocumentHash is MAA's x-ms-policy-token-hash: base64url(SHA-256) of the
// JWS exactly as sent, trailing dot included.
func DocumentHash(jws string) string {
	sum := sha256.Sum256([]byte(jws))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CertificateJWK is a certificate as MAA lists policy-management
// certificates and policy signers: {"alg","kty","use":"sig","x5c":[DER]}.
type CertificateJWK struct {
	Alg string   `json:"alg,omitempty"`
	KTY string   `json:"kty"`
	Use string   `json:"use,omitempty"`
	X5C []string `json:"x5c"`
}

// NewCertificateJWK describes cert in MAA's policy-certificate JWK shape.
func NewCertificateJWK(cert *x509.Certificate) CertificateJWK {
	j := CertificateJWK{Use: "sig", X5C: []string{base64.StdEncoding.EncodeToString(cert.Raw)}}
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		j.KTY, j.Alg = "RSA", "RS256"
	case *ecdsa.PublicKey:
		j.KTY, j.Alg = "EC", "ES256"
		if k.Curve.Params().BitSize == 384 {
			j.Alg = "ES384"
		}
	default:
		j.KTY = "OKP"
	}
	return j
}

// Thumbprint is MAA's x-ms-certificate-thumbprint: hex SHA-1 of the DER,
// upper case as Windows shows thumbprints. SHA-1 names the certificate here;
// it secures nothing.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return fmt.Sprintf("%X", sum[:])
}

// certificatePayloadNames are the claim names tools have used for the
// certificate in an add/remove document (maa-compat.md §2.8), preferred
// first.
var certificatePayloadNames = [...]string{"policyCertificate", "maa-policyCertificate", "x-ms-policyCertificate"}

// CertificatePayload is the body of a certificates:add/:remove JWS:
// {"policyCertificate": JWK}.
func CertificatePayload(cert *x509.Certificate) []byte {
	b, _ := json.Marshal(map[string]CertificateJWK{certificatePayloadNames[0]: NewCertificateJWK(cert)})
	return b
}

// CertificateFromPayload returns the certificate named by an add/remove
// document, under any of the three claim names in use.
func CertificateFromPayload(payload []byte) (*x509.Certificate, error) {
	body, err := exactObject(payload)
	if err != nil {
		return nil, fmt.Errorf("token: certificate document: %w", err)
	}
	if err := exactMembers(body, "certificate document", certificatePayloadNames[:]...); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	var raw json.RawMessage
	for _, name := range certificatePayloadNames {
		if r, ok := body[name]; ok {
			if raw != nil {
				return nil, errors.New("token: certificate document names more than one certificate")
			}
			raw = r
		}
	}
	if raw == nil {
		return nil, errors.New(`token: certificate document has no "policyCertificate" member`)
	}
	members, err := exactObject(raw)
	if err != nil {
		return nil, fmt.Errorf("token: policyCertificate is not a JWK: %w", err)
	}
	if err := exactMembers(members, "policyCertificate", "kty", "x5c", "alg", "use", "kid", "x5t", "n", "e", "crv", "x", "y"); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	var jwk struct {
		X5C []string
	}
	if x5c, ok := members["x5c"]; ok {
		if err := json.Unmarshal(x5c, &jwk.X5C); err != nil {
			return nil, fmt.Errorf("token: policyCertificate x5c is not a list of strings: %w", err)
		}
	}
	if len(jwk.X5C) != 1 {
		return nil, fmt.Errorf("token: policyCertificate must carry exactly one certificate in x5c, it has %d (a bare key is not accepted)", len(jwk.X5C))
	}
	der, err := base64.StdEncoding.DecodeString(jwk.X5C[0])
	if err != nil {
		return nil, fmt.Errorf("token: policyCertificate x5c is not standard base64: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("token: policyCertificate is not an X.509 certificate: %w", err)
	}
	return cert, nil
}

// CertificateID is the stable identity attestd stores a certificate under:
// hex SHA-256 of its DER.
func CertificateID(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}
