// Package token mints attestd's attestation tokens in MAA's profile: compact
// JWS, RS256, header {"alg","jku","kid","typ"}, and publishes the signing keys
// as MAA does: a JWKS whose entries carry only kid, kty and a self-signed
// certificate (x5c) with subject CN=<issuer>, plus OpenID metadata pointing at
// it.
package token

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// AlgRS256 is the only algorithm attestd signs with today: MAA's, and the
// one strict verifiers such as Gramine's require.
const AlgRS256 = "RS256"

// RSAKeyBits is the signing key size (MAA's token key is RSA-2048).
const RSAKeyBits = 2048

// certificateLifetime is how long a signing certificate is valid. MAA's is
// valid for decades; what bounds a key's use is rotation, not the
// certificate, and relying parties that check the certificate window must
// not start failing while the key is still published.
const certificateLifetime = 30 * 365 * 24 * time.Hour

// Key is a token signing key with its published certificate.
type Key struct {
	KID         string
	Algorithm   string
	Private     *rsa.PrivateKey
	Certificate *x509.Certificate
	CreatedAt   time.Time
	// RetiredAt is zero while the key is the active signer.
	RetiredAt time.Time
}

// GenerateKey makes a new RSA signing key and its self-signed certificate
// with subject and issuer CN=<issuer>, as MAA's are. random may be nil
// (crypto/rand).
func GenerateKey(random io.Reader, issuer string, now time.Time) (*Key, error) {
	if random == nil {
		random = rand.Reader
	}
	priv, err := rsa.GenerateKey(random, RSAKeyBits)
	if err != nil {
		return nil, fmt.Errorf("token: generating RSA key: %w", err)
	}
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("token: certificate serial: %w", err)
	}
	name := pkix.Name{CommonName: issuer}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		Issuer:                name,
		NotBefore:             now.Add(-time.Hour).UTC().Truncate(time.Second),
		NotAfter:              now.Add(certificateLifetime).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("token: self-signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("token: parsing own certificate: %w", err)
	}
	return &Key{
		KID:         KeyID(cert),
		Algorithm:   AlgRS256,
		Private:     priv,
		Certificate: cert,
		CreatedAt:   now.UTC(),
	}, nil
}

// KeyID is the kid attestd gives a key: standard base64 of SHA-256 of the
// certificate's SubjectPublicKeyInfo, 44 characters like MAA's kids.
func KeyID(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// ParseKey rebuilds a Key from its stored form, checking that the private
// key and the certificate belong together.
func ParseKey(kid, alg string, pkcs8, certDER []byte, created, retired time.Time) (*Key, error) {
	if alg != AlgRS256 {
		return nil, fmt.Errorf("token: key %s: unsupported algorithm %q", kid, alg)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("token: key %s: private key: %w", kid, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token: key %s: private key is %T, want RSA", kid, parsed)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("token: key %s: certificate: %w", kid, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&priv.PublicKey) {
		return nil, fmt.Errorf("token: key %s: certificate does not match the private key", kid)
	}
	if KeyID(cert) != kid {
		return nil, fmt.Errorf("token: key %s: kid does not match the certificate", kid)
	}
	return &Key{KID: kid, Algorithm: alg, Private: priv, Certificate: cert, CreatedAt: created, RetiredAt: retired}, nil
}

// PKCS8 returns the private key in PKCS #8 DER, for storage.
func (k *Key) PKCS8() ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(k.Private)
}

// header is the JOSE header in MAA's member order.
type header struct {
	Alg string   `json:"alg"`
	JKU string   `json:"jku,omitempty"`
	KID string   `json:"kid"`
	Typ string   `json:"typ"`
	X5C []string `json:"x5c,omitempty"`
	X5T string   `json:"x5t,omitempty"`
}

// HeaderCertificate says whether a token header names its signing
// certificate, as MAA's omit_x5c policy property asks.
type HeaderCertificate string

const (
	// HeaderDefault is MAA's attestation token header: jku and kid only.
	HeaderDefault HeaderCertificate = ""
	// HeaderX5C adds the signing certificate (omit_x5c = false).
	HeaderX5C HeaderCertificate = "x5c"
	// HeaderX5T adds its SHA-1 thumbprint instead (omit_x5c = true).
	HeaderX5T HeaderCertificate = "x5t"
)

// Sign returns the compact JWS of claims (any JSON-marshalable value; a map
// gives MAA's sorted member order) signed by key, with jku in the header.
func Sign(key *Key, jku string, claims any) (string, error) {
	return SignWithHeader(key, jku, claims, HeaderDefault)
}

// SignWithHeader is Sign with the signing certificate named in the header
// as hc says.
func SignWithHeader(key *Key, jku string, claims any, hc HeaderCertificate) (string, error) {
	if key == nil || key.Private == nil {
		return "", errors.New("token: no signing key")
	}
	hdr := header{Alg: key.Algorithm, JKU: jku, KID: key.KID, Typ: "JWT"}
	switch hc {
	case HeaderDefault:
	case HeaderX5C:
		hdr.X5C = []string{base64.StdEncoding.EncodeToString(key.Certificate.Raw)}
	case HeaderX5T:
		sum := sha1.Sum(key.Certificate.Raw)
		hdr.X5T = base64.RawURLEncoding.EncodeToString(sum[:])
	default:
		return "", fmt.Errorf("token: unknown header certificate option %q", hc)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return "", fmt.Errorf("token: header: %w", err)
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("token: claims: %w", err)
	}
	enc := base64.RawURLEncoding
	var b strings.Builder
	b.Grow(enc.EncodedLen(len(h)) + enc.EncodedLen(len(body)) + 350)
	b.WriteString(enc.EncodeToString(h))
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(body))
	digest := sha256.Sum256([]byte(b.String()))
	sig, err := rsa.SignPKCS1v15(nil, key.Private, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("token: signing: %w", err)
	}
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(sig))
	return b.String(), nil
}

// UnsecuredJWS returns the unsigned compact JWS ({"alg":"none"}, empty
// signature) MAA uses for stored policies inside tokens.
func UnsecuredJWS(payload any) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("token: payload: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(body) + ".", nil
}

// JWK is one published key in MAA's shape: no n, e, use or alg.
type JWK struct {
	X5C []string `json:"x5c"`
	KID string   `json:"kid"`
	KTY string   `json:"kty"`
}

// JWKS is the document served at /certs.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// KeySet builds the JWKS for keys, in the given order.
func KeySet(keys []*Key) JWKS {
	set := JWKS{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, JWK{
			X5C: []string{base64.StdEncoding.EncodeToString(k.Certificate.Raw)},
			KID: k.KID,
			KTY: "RSA",
		})
	}
	return set
}

// OpenIDMetadata is the document served at /.well-known/openid-configuration,
// with MAA's members.
type OpenIDMetadata struct {
	ResponseTypesSupported           []string `json:"response_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	RevocationEndpoint               string   `json:"revocation_endpoint"`
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	ClaimsSupported                  []string `json:"claims_supported"`
}

// Metadata returns the OpenID metadata of an issuer, listing claims.
func Metadata(issuer string, claims []string) OpenIDMetadata {
	return OpenIDMetadata{
		ResponseTypesSupported:           []string{"token", "none"},
		IDTokenSigningAlgValuesSupported: []string{AlgRS256},
		RevocationEndpoint:               issuer + "/revoke",
		Issuer:                           issuer,
		JWKSURI:                          JWKSURL(issuer),
		ClaimsSupported:                  claims,
	}
}

// JWKSURL is where an issuer publishes its keys; also the tokens' jku.
func JWKSURL(issuer string) string { return issuer + "/certs" }
