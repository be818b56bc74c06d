package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/attestd/attestd/token"
	"github.com/attestd/attestd/verify"
)

// The management API: GET/PUT /policies/{type}, POST /policies/{type}:reset,
// GET /certificates and POST /certificates:add|:remove, on MAA's wire format
// (docs/sdk.md, "Managing policies and signers"). Every call sends the bearer
// token given WithBearerToken; MAA and attestd refuse management without one.

// Policy results (x-ms-policy-result) and certificate results
// (x-ms-policycertificates-result) as MAA spells them.
const (
	PolicyUpdated      = "Updated"
	PolicyRemoved      = "Removed"
	CertificatePresent = "IsPresent"
	CertificateAbsent  = "IsAbsent"
)

// ErrTokenHashMismatch is returned (wrapped) by SetPolicy and ResetPolicy
// when the service's x-ms-policy-token-hash is not the hash of the document
// the client sent: the service stored, or claims to have stored, something
// else.
var ErrTokenHashMismatch = errors.New("x-ms-policy-token-hash does not match the document sent")

// ErrResponseMismatch is returned (wrapped) when a management response
// contradicts the request in another way: another policy signer, another
// certificate thumbprint, or a result that is not the one the operation
// produces.
var ErrResponseMismatch = errors.New("the service's answer does not match the request")

// Signer signs policy and certificate documents, as isolated-mode providers
// require. Chain is the signing certificate, leaf first, optionally followed
// by its issuers; all of it travels in the JWS's x5c header. The leaf must
// hold Key's public key: an RSA key of at least 2048 bits, or an EC key on
// P-256 or P-384 (RS256, ES256, ES384).
type Signer struct {
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// LoadSigner reads a signer from PEM: keyPEM holds one private key (PKCS #8
// "PRIVATE KEY", PKCS #1 "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"; other
// blocks such as "EC PARAMETERS" or certificates are skipped), certPEM one
// or more "CERTIFICATE" blocks, leaf first. The same bundle may be passed as
// both. Encrypted keys are not supported. The key must match the leaf.
func LoadSigner(keyPEM, certPEM []byte) (*Signer, error) {
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client: signing key: %w", err)
	}
	var chain []*x509.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client: signing certificate %d: %w", len(chain)+1, err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, errors.New("client: signing certificate: no PEM CERTIFICATE block")
	}
	s := &Signer{Key: key, Chain: chain}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func parsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("no PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block")
		}
		if blk.Headers["Proc-Type"] != "" || blk.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("the private key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)")
		}
		var (
			k   any
			err error
		)
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", blk.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%T keys cannot sign", k)
		}
		return s, nil
	}
}

// check reports whether the signer can sign documents the service accepts.
func (s *Signer) check() error {
	if s.Key == nil || len(s.Chain) == 0 || s.Chain[0] == nil {
		return errors.New("client: a Signer needs a Key and at least its leaf certificate")
	}
	switch pub := s.Key.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return fmt.Errorf("client: the signing RSA key has %d bits; at least 2048 are required", pub.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() {
			return fmt.Errorf("client: the signing EC key is on %s; use P-256 or P-384", pub.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		return errors.New("client: Ed25519 signing keys are not supported (MAA accepts RS256 and ES256); use RSA or P-256")
	default:
		return fmt.Errorf("client: %T signing keys are not supported", pub)
	}
	leafKey, ok := s.Chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !leafKey.Equal(s.Key.Public()) {
		return fmt.Errorf("client: the signing key does not match the leaf certificate (%s)", s.Chain[0].Subject)
	}
	return nil
}

// sign returns payload as a JWS signed by s, or unsigned ({"alg":"none"})
// when s is nil.
func (s *Signer) sign(payload []byte) (string, error) {
	if s == nil {
		return token.UnsecuredDocument(payload), nil
	}
	if err := s.check(); err != nil {
		return "", err
	}
	doc, err := token.SignJWS(s.Key, s.Chain, payload)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	return doc, nil
}

// WithResponseVerifier makes the client verify every management response
// token with v (signature by a key the service publishes, issuer, exp and
// nbf; see package verify) before it reads a claim from it. v must be built
// for the service's issuer, normally the base URL:
//
//	v, err := verify.New(issuer, verify.WithHTTPClient(hc))
//	c, err := client.New(base, client.WithBearerToken(tok), client.WithResponseVerifier(v))
//
// Without it the client only decodes management responses: it trusts them
// as far as it trusts the TLS connection they came over, and nothing
// proves the answer came from the service's signing key.
// Attest never verifies the tokens it returns; that is the relying party's
// job.
func WithResponseVerifier(v *verify.Verifier) Option {
	return func(c *Client) error {
		if v == nil {
			return errors.New("WithResponseVerifier: nil verifier")
		}
		c.verifier = v
		return nil
	}
}

// manage sends one management request and returns the claims of the
// response token, verified when the client has a verifier.
func (c *Client) manage(ctx context.Context, method, path, contentType string, body []byte) (map[string]any, error) {
	var resp struct {
		Token string `json:"token"`
	}
	q := url.Values{"api-version": {c.apiVersion}}
	if err := c.doContent(ctx, method, path, q, contentType, body, &resp); err != nil {
		return nil, err
	}
	if resp.Token == "" {
		return nil, errors.New("response has no token")
	}
	return c.responseClaims(ctx, resp.Token)
}

// responseClaims returns the claims of a management response token:
// verified with the client's verifier, or only decoded without one.
func (c *Client) responseClaims(ctx context.Context, jwt string) (map[string]any, error) {
	if c.verifier != nil {
		tok, err := c.verifier.Verify(ctx, jwt)
		if err != nil {
			return nil, fmt.Errorf("response token: %w", err)
		}
		return tok.Claims, nil
	}
	return decodeClaims(jwt)
}

// decodeClaims decodes a compact JWS's claims set without checking
// anything else.
func decodeClaims(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("response token is not a compact JWS (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("response token claims are not base64url: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return nil, errors.New("response token claims are not a JSON object")
	}
	return claims, nil
}

func policyPath(t AttestationType) string { return "/policies/" + url.PathEscape(string(t)) }

// stringClaim returns a string claim; a claim of another type is an error,
// a missing one gives ok=false.
func stringClaim(claims map[string]any, name string) (s string, ok bool, err error) {
	v, present := claims[name]
	if !present {
		return "", false, nil
	}
	s, isString := v.(string)
	if !isString {
		return "", false, fmt.Errorf("claim %s is a %T, not a string", name, v)
	}
	return s, true, nil
}

// Policy is the stored policy of one attestation type.
type Policy struct {
	Text string // the policy text
	// JWS is the stored policy document as the service returned it
	// (x-ms-policy): {"AttestationPolicy": base64url(Text)}, unsigned or
	// signed by whoever set it.
	JWS string
	// Signer is the x5c leaf of JWS when it is signed; its signature over
	// JWS has been checked. Whether that certificate is trusted is for the
	// service (isolated mode) or the caller to decide.
	Signer *x509.Certificate
	Claims map[string]any // the response token's claims
}

// Hash is the x-ms-policy-hash that attestation tokens issued under this
// policy carry: base64url(SHA-256(base64url(Text))).
func (p *Policy) Hash() string {
	sum := sha256.Sum256([]byte(base64.RawURLEncoding.EncodeToString([]byte(p.Text))))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// GetPolicy fetches GET /policies/{t}: the policy the service evaluates
// evidence of type t against (its default when none was set).
func (c *Client) GetPolicy(ctx context.Context, t AttestationType) (*Policy, error) {
	p, err := c.getPolicy(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("client: GetPolicy %s: %w", t, err)
	}
	return p, nil
}

func (c *Client) getPolicy(ctx context.Context, t AttestationType) (*Policy, error) {
	if t == "" {
		return nil, errors.New("empty attestation type")
	}
	claims, err := c.manage(ctx, http.MethodGet, policyPath(t), "", nil)
	if err != nil {
		return nil, err
	}
	return policyFromClaims(claims)
}

func policyFromClaims(claims map[string]any) (*Policy, error) {
	doc, ok, err := stringClaim(claims, "x-ms-policy")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("response has no x-ms-policy claim")
	}
	jws, err := token.ParseJWS(doc)
	if err != nil {
		return nil, fmt.Errorf("x-ms-policy: %w", err)
	}
	text, err := token.PolicyFromPayload(jws.Payload)
	if err != nil {
		return nil, fmt.Errorf("x-ms-policy: %w", err)
	}
	p := &Policy{Text: text, JWS: doc, Claims: claims}
	if !jws.Unsecured() {
		if err := jws.VerifySignature(); err != nil {
			return nil, fmt.Errorf("x-ms-policy: %w", err)
		}
		p.Signer = jws.Chain[0]
	}
	return p, nil
}

// PolicyResult is the service's answer to SetPolicy or ResetPolicy.
type PolicyResult struct {
	Resolution string // x-ms-policy-result: PolicyUpdated or PolicyRemoved
	// TokenHash is x-ms-policy-token-hash as returned: base64url(SHA-256)
	// of the document sent. The client has checked it. MAA leaves it out
	// of reset answers, so it may be empty there.
	TokenHash string
	// Signer is the certificate the service says signed the document
	// (x-ms-policy-signer), if it sent one; the client has checked that it
	// is the leaf it signed with.
	Signer *x509.Certificate
	Claims map[string]any // the response token's claims
}

// SetPolicy stores text as the policy for type t with PUT /policies/{t}.
// With a nil signer the document is unsigned ({"alg":"none"}), which
// AAD-mode providers accept; isolated-mode providers require a signer that
// is, or chains to, one of their policy signing certificates.
//
// The document goes out as MAA's JWS of {"AttestationPolicy":
// base64url(text)}, Content-Type text/plain. SetPolicy checks that the
// returned x-ms-policy-token-hash equals token.DocumentHash of exactly the
// document sent, and fails with ErrTokenHashMismatch otherwise.
func (c *Client) SetPolicy(ctx context.Context, t AttestationType, text string, signer *Signer) (*PolicyResult, error) {
	r, err := c.setPolicy(ctx, t, text, signer)
	if err != nil {
		return nil, fmt.Errorf("client: SetPolicy %s: %w", t, err)
	}
	return r, nil
}

func (c *Client) setPolicy(ctx context.Context, t AttestationType, text string, signer *Signer) (*PolicyResult, error) {
	if t == "" {
		return nil, errors.New("empty attestation type")
	}
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty policy text (use ResetPolicy to return to the default)")
	}
	if !utf8.ValidString(text) {
		return nil, errors.New("the policy text is not UTF-8")
	}
	doc, err := signer.sign(token.PolicyPayload(text))
	if err != nil {
		return nil, err
	}
	claims, err := c.manage(ctx, http.MethodPut, policyPath(t), "text/plain", []byte(doc))
	if err != nil {
		return nil, err
	}
	return policyResult(claims, doc, signer, PolicyUpdated, true)
}

// ResetPolicy returns type t to the service's default policy with POST
// /policies/{t}:reset. The body is a JWS with an empty payload: unsigned
// ("eyJhbGciOiJub25lIn0..") with a nil signer, or signed by signer as
// isolated mode requires.
func (c *Client) ResetPolicy(ctx context.Context, t AttestationType, signer *Signer) (*PolicyResult, error) {
	r, err := c.resetPolicy(ctx, t, signer)
	if err != nil {
		return nil, fmt.Errorf("client: ResetPolicy %s: %w", t, err)
	}
	return r, nil
}

func (c *Client) resetPolicy(ctx context.Context, t AttestationType, signer *Signer) (*PolicyResult, error) {
	if t == "" {
		return nil, errors.New("empty attestation type")
	}
	doc, err := signer.sign(nil)
	if err != nil {
		return nil, err
	}
	claims, err := c.manage(ctx, http.MethodPost, policyPath(t)+":reset", "text/plain", []byte(doc))
	if err != nil {
		return nil, err
	}
	// MAA sends no hash on reset; check it when there is one.
	return policyResult(claims, doc, signer, PolicyRemoved, false)
}

// policyResult reads a PolicyResult and checks it against the request.
func policyResult(claims map[string]any, doc string, signer *Signer, want string, hashRequired bool) (*PolicyResult, error) {
	r := &PolicyResult{Claims: claims}
	var ok bool
	var err error
	if r.Resolution, ok, err = stringClaim(claims, "x-ms-policy-result"); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("response has no x-ms-policy-result claim")
	}
	if r.Resolution != want {
		return nil, fmt.Errorf("%w: x-ms-policy-result is %q, want %q", ErrResponseMismatch, r.Resolution, want)
	}
	if r.TokenHash, ok, err = stringClaim(claims, "x-ms-policy-token-hash"); err != nil {
		return nil, err
	}
	if ok || hashRequired {
		if !ok {
			return nil, fmt.Errorf("%w: the response has no x-ms-policy-token-hash", ErrTokenHashMismatch)
		}
		if sent := token.DocumentHash(doc); r.TokenHash != sent {
			return nil, fmt.Errorf("%w: the service answered %q, the document sent hashes to %q", ErrTokenHashMismatch, r.TokenHash, sent)
		}
	}
	if v, present := claims["x-ms-policy-signer"]; present && v != nil {
		cert, err := certificateFromJWK(v)
		if err != nil {
			return nil, fmt.Errorf("x-ms-policy-signer: %w", err)
		}
		if signer == nil {
			return nil, fmt.Errorf("%w: the document was unsigned, the service names signer %s", ErrResponseMismatch, cert.Subject)
		}
		if !cert.Equal(signer.Chain[0]) {
			return nil, fmt.Errorf("%w: the service names signer %s, the document was signed by %s", ErrResponseMismatch, cert.Subject, signer.Chain[0].Subject)
		}
		r.Signer = cert
	}
	return r, nil
}

// certificateFromJWK reads the certificate of a policy-certificate JWK,
// {"kty","x5c":[std base64 DER, ...]}: the first x5c entry.
func certificateFromJWK(v any) (*x509.Certificate, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var jwk struct {
		X5C []string `json:"x5c"`
	}
	if err := json.Unmarshal(b, &jwk); err != nil {
		return nil, errors.New("not a JWK object")
	}
	if len(jwk.X5C) == 0 {
		return nil, errors.New("JWK has no x5c certificate")
	}
	der, err := base64.StdEncoding.DecodeString(jwk.X5C[0])
	if err != nil {
		return nil, fmt.Errorf("x5c is not standard base64: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("x5c: %w", err)
	}
	return cert, nil
}

// PolicyCertificates fetches GET /certificates: the policy signing
// certificates of an isolated-mode provider (none for AAD-mode and shared
// providers).
func (c *Client) PolicyCertificates(ctx context.Context) ([]*x509.Certificate, error) {
	certs, err := c.policyCertificates(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: PolicyCertificates: %w", err)
	}
	return certs, nil
}

func (c *Client) policyCertificates(ctx context.Context) ([]*x509.Certificate, error) {
	claims, err := c.manage(ctx, http.MethodGet, "/certificates", "", nil)
	if err != nil {
		return nil, err
	}
	v, ok := claims["x-ms-policy-certificates"]
	if !ok {
		return nil, errors.New("response has no x-ms-policy-certificates claim")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil || set.Keys == nil {
		return nil, errors.New(`x-ms-policy-certificates is not a {"keys": [...]} set`)
	}
	certs := make([]*x509.Certificate, 0, len(set.Keys))
	for i, k := range set.Keys {
		var jwk any
		if err := json.Unmarshal(k, &jwk); err != nil {
			return nil, fmt.Errorf("x-ms-policy-certificates key %d: %w", i, err)
		}
		cert, err := certificateFromJWK(jwk)
		if err != nil {
			return nil, fmt.Errorf("x-ms-policy-certificates key %d: %w", i, err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// CertificateResult is the service's answer to AddPolicyCertificate or
// RemovePolicyCertificate.
type CertificateResult struct {
	// Thumbprint is x-ms-certificate-thumbprint: hex SHA-1 of the
	// certificate's DER, as the service spells it (MAA: upper case).
	Thumbprint string
	// Result is x-ms-policycertificates-result, the certificate's state
	// after the call: CertificatePresent or CertificateAbsent.
	Result string
	Claims map[string]any // the response token's claims
}

// AddPolicyCertificate adds cert to an isolated-mode provider's policy
// signing certificates with POST /certificates:add. signer must be one of
// the current ones. The document, {"policyCertificate": JWK of cert} signed
// by signer, is sent as a JSON string literal with Content-Type
// application/json, as the Azure SDKs send it. The service's thumbprint
// must be cert's and its result IsPresent.
func (c *Client) AddPolicyCertificate(ctx context.Context, cert *x509.Certificate, signer *Signer) (*CertificateResult, error) {
	r, err := c.modifyCertificates(ctx, "add", cert, signer, CertificatePresent)
	if err != nil {
		return nil, fmt.Errorf("client: AddPolicyCertificate: %w", err)
	}
	return r, nil
}

// RemovePolicyCertificate removes cert from an isolated-mode provider's
// policy signing certificates with POST /certificates:remove, like
// AddPolicyCertificate. The service's result must be IsAbsent. Providers
// refuse to remove their last certificate.
func (c *Client) RemovePolicyCertificate(ctx context.Context, cert *x509.Certificate, signer *Signer) (*CertificateResult, error) {
	r, err := c.modifyCertificates(ctx, "remove", cert, signer, CertificateAbsent)
	if err != nil {
		return nil, fmt.Errorf("client: RemovePolicyCertificate: %w", err)
	}
	return r, nil
}

func (c *Client) modifyCertificates(ctx context.Context, op string, cert *x509.Certificate, signer *Signer, want string) (*CertificateResult, error) {
	if cert == nil {
		return nil, errors.New("no certificate")
	}
	if signer == nil {
		return nil, errors.New("certificate changes must be signed by a current policy signer; the signer is nil")
	}
	doc, err := signer.sign(token.CertificatePayload(cert))
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	claims, err := c.manage(ctx, http.MethodPost, "/certificates:"+op, "application/json", body)
	if err != nil {
		return nil, err
	}
	r := &CertificateResult{Claims: claims}
	var ok bool
	if r.Thumbprint, ok, err = stringClaim(claims, "x-ms-certificate-thumbprint"); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("response has no x-ms-certificate-thumbprint claim")
	}
	if sent := token.Thumbprint(cert); !strings.EqualFold(r.Thumbprint, sent) {
		return nil, fmt.Errorf("%w: the service answered for certificate %s, the request named %s", ErrResponseMismatch, r.Thumbprint, sent)
	}
	if r.Result, ok, err = stringClaim(claims, "x-ms-policycertificates-result"); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("response has no x-ms-policycertificates-result claim")
	}
	if r.Result != want {
		return nil, fmt.Errorf("%w: x-ms-policycertificates-result is %q, want %q", ErrResponseMismatch, r.Result, want)
	}
	return r, nil
}
