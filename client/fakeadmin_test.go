package client_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/token"
	"github.com/attestd/attestd/verify"
)

// fakeAdmin is a small MAA-shaped management service: policies and policy
// signing certificates with MAA's wire shapes, response tokens signed by
// its own key and published at /certs with OpenID metadata, and knobs to
// misbehave.
type fakeAdmin struct {
	srv    *httptest.Server
	issuer string
	key    *token.Key
	bearer string

	mu       sync.Mutex
	reqs     []captured
	policies map[string]string // type -> stored JWS
	signers  []*x509.Certificate
	// Knobs.
	wrongHash  bool          // answer with another x-ms-policy-token-hash
	noHash     bool          // leave x-ms-policy-token-hash out of set answers
	tamper     bool          // corrupt the response token's claims after signing
	foreignKey *token.Key    // sign responses with this unpublished key
	age        time.Duration // backdate iat/nbf/exp by this much
	fail       *failure      // answer every management call with this error
}

type failure struct {
	status int
	body   string
}

const fakeBearer = "test-bearer-token"

func newFakeAdmin(t *testing.T, signers ...*x509.Certificate) *fakeAdmin {
	t.Helper()
	f := &fakeAdmin{bearer: fakeBearer, policies: map[string]string{}, signers: signers}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	var err error
	if f.key, err = token.GenerateKey(nil, f.issuer, time.Now()); err != nil {
		t.Fatal(err)
	}
	return f
}

// client returns a client of the fake with the bearer token and, with
// verified, a response verifier discovering the fake's keys.
func (f *fakeAdmin) client(t *testing.T, verified bool, opts ...client.Option) *client.Client {
	t.Helper()
	all := []client.Option{client.WithHTTPClient(f.srv.Client()), client.WithBearerToken(f.bearer)}
	if verified {
		v, err := verify.New(f.issuer, verify.WithHTTPClient(f.srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, client.WithResponseVerifier(v))
	}
	c, err := client.New(f.srv.URL, append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeAdmin) set(fn func(f *fakeAdmin)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeAdmin) last(t *testing.T) captured {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.reqs) - 1; i >= 0; i-- {
		if p := f.reqs[i].path; p != "/certs" && !strings.HasPrefix(p, "/.well-known/") {
			return f.reqs[i]
		}
	}
	t.Fatal("no management request")
	return captured{}
}

func (f *fakeAdmin) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, reason, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "innererror": map[string]string{"code": reason}}})
}

const defaultTestPolicy = "version=1.0; authorizationrules{=> permit();}; issuancerules{};"

func (f *fakeAdmin) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, captured{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
	path := r.URL.Path
	switch {
	case path == "/.well-known/openid-configuration":
		writeJSON(w, 200, token.Metadata(f.issuer, nil))
		return
	case path == "/certs":
		writeJSON(w, 200, token.KeySet([]*token.Key{f.key}))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.bearer {
		writeErr(w, 401, "Unauthorized", "missing_token", "a bearer token is required")
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeErr(w, 400, "MissingApiVersionParameter", "missing_api_version", "api-version is required")
		return
	}
	if f.fail != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.fail.status)
		io.WriteString(w, f.fail.body)
		return
	}
	claims := map[string]any{}
	switch {
	case r.Method == "GET" && strings.HasPrefix(path, "/policies/"):
		typ := strings.TrimPrefix(path, "/policies/")
		doc, ok := f.policies[typ]
		if !ok {
			doc = token.UnsecuredDocument(token.PolicyPayload(defaultTestPolicy))
		}
		claims["x-ms-policy"] = doc
	case r.Method == "PUT" && strings.HasPrefix(path, "/policies/"),
		r.Method == "POST" && strings.HasPrefix(path, "/policies/") && strings.HasSuffix(path, ":reset"):
		if ct := r.Header.Get("Content-Type"); ct != "text/plain" {
			writeErr(w, 415, "UnsupportedMediaType", "bad_content_type", "want text/plain, got "+ct)
			return
		}
		jws, err := token.ParseJWS(string(body))
		if err != nil {
			writeErr(w, 400, "InvalidOperation", "malformed_jws", err.Error())
			return
		}
		if !f.checkSigner(w, jws) {
			return
		}
		if r.Method == "PUT" {
			if _, err := token.PolicyFromPayload(jws.Payload); err != nil {
				writeErr(w, 400, "InvalidOperation", "malformed_policy_document", err.Error())
				return
			}
			f.policies[strings.TrimPrefix(path, "/policies/")] = string(body)
			claims["x-ms-policy-result"] = "Updated"
			switch {
			case f.wrongHash:
				claims["x-ms-policy-token-hash"] = token.DocumentHash(string(body) + "x")
			case !f.noHash:
				claims["x-ms-policy-token-hash"] = token.DocumentHash(string(body))
			}
		} else {
			if len(jws.Payload) != 0 {
				writeErr(w, 400, "InvalidOperation", "reset_payload", "a reset document has an empty payload")
				return
			}
			delete(f.policies, strings.TrimSuffix(strings.TrimPrefix(path, "/policies/"), ":reset"))
			claims["x-ms-policy-result"] = "Removed"
		}
		if !jws.Unsecured() {
			claims["x-ms-policy-signer"] = token.NewCertificateJWK(jws.Chain[0])
		}
	case r.Method == "GET" && path == "/certificates":
		keys := []token.CertificateJWK{}
		for _, c := range f.signers {
			keys = append(keys, token.NewCertificateJWK(c))
		}
		claims["x-ms-policy-certificates"] = map[string]any{"keys": keys}
	case r.Method == "POST" && (path == "/certificates:add" || path == "/certificates:remove"):
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			writeErr(w, 415, "UnsupportedMediaType", "bad_content_type", "want application/json, got "+ct)
			return
		}
		var s string
		if err := json.Unmarshal(body, &s); err != nil {
			writeErr(w, 400, "InvalidOperation", "malformed_body", "the body must be a JSON string")
			return
		}
		jws, err := token.ParseJWS(s)
		if err != nil {
			writeErr(w, 400, "InvalidOperation", "malformed_jws", err.Error())
			return
		}
		if jws.Unsecured() {
			writeErr(w, 400, "InvalidOperation", "document_unsigned", "certificate changes must be signed")
			return
		}
		if !f.checkSigner(w, jws) {
			return
		}
		cert, err := token.CertificateFromPayload(jws.Payload)
		if err != nil {
			writeErr(w, 400, "InvalidOperation", "malformed_certificate_document", err.Error())
			return
		}
		idx := -1
		for i, c := range f.signers {
			if c.Equal(cert) {
				idx = i
			}
		}
		if path == "/certificates:add" {
			if idx < 0 {
				f.signers = append(f.signers, cert)
			}
			claims["x-ms-policycertificates-result"] = "IsPresent"
		} else {
			if idx >= 0 {
				f.signers = append(f.signers[:idx], f.signers[idx+1:]...)
			}
			claims["x-ms-policycertificates-result"] = "IsAbsent"
		}
		claims["x-ms-certificate-thumbprint"] = token.Thumbprint(cert)
	default:
		writeErr(w, 404, "NotFound", "not_found", "no route")
		return
	}
	now := time.Now().Add(-f.age)
	claims["iss"] = f.issuer
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = now.Add(time.Hour).Unix()
	key := f.key
	if f.foreignKey != nil {
		key = f.foreignKey
	}
	jwt, err := token.Sign(key, token.JWKSURL(f.issuer), claims)
	if err != nil {
		writeErr(w, 500, "InternalError", "internal", err.Error())
		return
	}
	if f.tamper {
		// Re-encode the claims with a changed result, keeping the
		// signature: what a meddling proxy would produce.
		parts := strings.Split(jwt, ".")
		claims["x-ms-policy-result"] = "Tampered"
		b, _ := json.Marshal(claims)
		parts[1] = b64url(b)
		jwt = strings.Join(parts, ".")
	}
	writeJSON(w, 200, map[string]string{"token": jwt})
}

// checkSigner enforces isolated mode when the fake has signers: documents
// must be signed by one of them. Without signers (AAD mode) anything
// signed must at least verify.
func (f *fakeAdmin) checkSigner(w http.ResponseWriter, jws *token.JWS) bool {
	if jws.Unsecured() {
		if len(f.signers) > 0 {
			writeErr(w, 400, "InvalidOperation", "policy_unsigned", "this provider requires signed documents")
			return false
		}
		return true
	}
	if err := jws.VerifySignature(); err != nil {
		writeErr(w, 400, "InvalidParameter", "bad_document_signature", err.Error())
		return false
	}
	if len(f.signers) == 0 {
		return true
	}
	for _, c := range f.signers {
		if c.Equal(jws.Chain[0]) {
			return true
		}
	}
	writeErr(w, 400, "InvalidParameter", "untrusted_signer", "the document's signer is not a policy signing certificate")
	return false
}

// testCert makes a self-signed certificate for key.
func testCert(t *testing.T, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour).Truncate(time.Second),
		NotAfter:              time.Now().Add(24 * time.Hour).Truncate(time.Second),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

var (
	rsaKeyOnce sync.Once
	rsaKey     *rsa.PrivateKey
)

// testRSAKey is one RSA-2048 key shared by the tests (generation is slow).
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func testECKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func certPEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}
