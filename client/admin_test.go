package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/token"
	"github.com/attestd/attestd/verify"
)

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

const testPolicy = `version=1.0;
authorizationrules { c:[type=="x-ms-sgx-is-debuggable"] => permit(); };
issuancerules { c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value); };`

// rsaSigner and ecSigner are signers loaded from PEM the way attestctl
// loads them: PKCS #1 and SEC 1 files.
func rsaSigner(t *testing.T) *client.Signer {
	t.Helper()
	k := testRSAKey(t)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	s, err := client.LoadSigner(keyPEM, certPEM(testCert(t, k, "policy signer RSA")))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ecSigner(t *testing.T, cn string) *client.Signer {
	t.Helper()
	k := testECKey(t, elliptic.P256())
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
	s, err := client.LoadSigner(keyPEM, certPEM(testCert(t, k, cn)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// An unsigned set (AAD mode): the exact body, headers and path, the hash
// check, and the policy read back.
func TestSetPolicyUnsigned(t *testing.T) {
	f := newFakeAdmin(t)
	c := f.client(t, true)
	ctx := context.Background()

	res, err := c.SetPolicy(ctx, client.SGX, testPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	wantDoc := "eyJhbGciOiJub25lIn0." + b64url([]byte(`{"AttestationPolicy":"`+b64url([]byte(testPolicy))+`"}`)) + "."
	if string(r.body) != wantDoc {
		t.Errorf("body\n got %s\nwant %s", r.body, wantDoc)
	}
	if r.method != "PUT" || r.path != "/policies/SgxEnclave" || r.rawQuery != "api-version=2022-08-01" {
		t.Errorf("request %s %s?%s", r.method, r.path, r.rawQuery)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type %q", ct)
	}
	if a := r.header.Get("Authorization"); a != "Bearer "+fakeBearer {
		t.Errorf("Authorization %q", a)
	}
	if res.Resolution != client.PolicyUpdated || res.TokenHash != token.DocumentHash(wantDoc) || res.Signer != nil || res.Claims["iss"] != f.issuer {
		t.Errorf("result %+v", res)
	}

	p, err := c.GetPolicy(ctx, client.SGX)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.last(t); r.method != "GET" || r.path != "/policies/SgxEnclave" || r.rawQuery != "api-version=2022-08-01" || len(r.body) != 0 || r.header.Get("Authorization") != "Bearer "+fakeBearer {
		t.Errorf("get request %s %s?%s %q", r.method, r.path, r.rawQuery, r.body)
	}
	if p.Text != testPolicy || p.JWS != wantDoc || p.Signer != nil || p.Claims["x-ms-policy"] != wantDoc {
		t.Errorf("policy %+v", p)
	}
	// Another type still has the default.
	p, err = c.GetPolicy(ctx, client.TDX)
	if err != nil || p.Text != defaultTestPolicy {
		t.Fatalf("TDX policy %+v, %v", p, err)
	}
	// MAA's policy hash formula; the value is the x-ms-policy-hash of the
	// recorded AAD-instance SGX tokens (maa-compat.md spells it "Z0FR…", a typo).
	if h := p.Hash(); h != "z0FRjKS0ssQTNur1V6BV8WIrh9M3fzgTo0EfHRvapWU" {
		t.Errorf("policy hash %s", h)
	}
}

// A signed set (isolated mode), RSA and EC: RS256 or ES256 with the signer
// in x5c, the signature valid, the signer echoed and read back.
func TestSetPolicySigned(t *testing.T) {
	rs, es := rsaSigner(t), ecSigner(t, "policy signer EC")
	f := newFakeAdmin(t, rs.Chain[0], es.Chain[0])
	c := f.client(t, true)
	ctx := context.Background()
	for _, tc := range []struct {
		signer *client.Signer
		alg    string
		typ    client.AttestationType
	}{{rs, "RS256", client.SGX}, {es, "ES256", client.OpenEnclave}} {
		res, err := c.SetPolicy(ctx, tc.typ, testPolicy, tc.signer)
		if err != nil {
			t.Fatalf("%s: %v", tc.alg, err)
		}
		r := f.last(t)
		if r.header.Get("Content-Type") != "text/plain" || r.path != "/policies/"+string(tc.typ) {
			t.Errorf("%s: %s, Content-Type %q", tc.alg, r.path, r.header.Get("Content-Type"))
		}
		jws, err := token.ParseJWS(string(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if jws.Header.Alg != tc.alg || len(jws.Chain) != 1 || !jws.Chain[0].Equal(tc.signer.Chain[0]) || jws.VerifySignature() != nil {
			t.Errorf("%s: sent header %+v", tc.alg, jws.Header)
		}
		if text, err := token.PolicyFromPayload(jws.Payload); err != nil || text != testPolicy {
			t.Errorf("%s: sent payload %s", tc.alg, jws.Payload)
		}
		if res.TokenHash != token.DocumentHash(string(r.body)) || res.Signer == nil || !res.Signer.Equal(tc.signer.Chain[0]) {
			t.Errorf("%s: result %+v", tc.alg, res)
		}
		p, err := c.GetPolicy(ctx, tc.typ)
		if err != nil {
			t.Fatal(err)
		}
		if p.Text != testPolicy || p.Signer == nil || !p.Signer.Equal(tc.signer.Chain[0]) || p.JWS != string(r.body) {
			t.Errorf("%s: policy read back %+v", tc.alg, p)
		}
	}
	// The isolated fake refuses an unsigned policy: an APIError with the
	// reason.
	_, err := c.SetPolicy(ctx, client.SGX, testPolicy, nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Code != "InvalidOperation" || ae.Reason != "policy_unsigned" {
		t.Fatalf("unsigned on isolated: %v", err)
	}
	if !strings.Contains(err.Error(), "HTTP 400 InvalidOperation (policy_unsigned): this provider requires signed documents") {
		t.Errorf("error text %q", err)
	}
}

func TestResetPolicy(t *testing.T) {
	f := newFakeAdmin(t)
	c := f.client(t, true)
	ctx := context.Background()
	if _, err := c.SetPolicy(ctx, client.SGX, testPolicy, nil); err != nil {
		t.Fatal(err)
	}
	res, err := c.ResetPolicy(ctx, client.SGX, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if r.method != "POST" || r.path != "/policies/SgxEnclave:reset" || r.rawQuery != "api-version=2022-08-01" ||
		string(r.body) != "eyJhbGciOiJub25lIn0.." || r.header.Get("Content-Type") != "text/plain" || r.header.Get("Authorization") != "Bearer "+fakeBearer {
		t.Errorf("reset request %s %s?%s %q %v", r.method, r.path, r.rawQuery, r.body, r.header)
	}
	if res.Resolution != client.PolicyRemoved || res.TokenHash != "" || res.Signer != nil {
		t.Errorf("result %+v", res)
	}
	if p, err := c.GetPolicy(ctx, client.SGX); err != nil || p.Text != defaultTestPolicy {
		t.Errorf("after reset: %+v, %v", p, err)
	}

	// Signed: an empty payload under a real signature.
	s := ecSigner(t, "reset signer")
	res, err = c.ResetPolicy(ctx, client.TDX, s)
	if err != nil {
		t.Fatal(err)
	}
	r = f.last(t)
	jws, err := token.ParseJWS(string(r.body))
	if err != nil || len(jws.Payload) != 0 || !strings.Contains(string(r.body), "..") || jws.VerifySignature() != nil || !jws.Chain[0].Equal(s.Chain[0]) {
		t.Errorf("signed reset body %q: %v", r.body, err)
	}
	if res.Resolution != client.PolicyRemoved || res.Signer == nil || !res.Signer.Equal(s.Chain[0]) {
		t.Errorf("signed reset result %+v", res)
	}
}

func TestPolicyCertificates(t *testing.T) {
	first := rsaSigner(t)
	second := ecSigner(t, "second signer")
	f := newFakeAdmin(t, first.Chain[0])
	c := f.client(t, true)
	ctx := context.Background()

	certs, err := c.PolicyCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.last(t); r.method != "GET" || r.path != "/certificates" || r.rawQuery != "api-version=2022-08-01" {
		t.Errorf("list request %s %s?%s", r.method, r.path, r.rawQuery)
	}
	if len(certs) != 1 || !certs[0].Equal(first.Chain[0]) {
		t.Fatalf("certificates %v", certs)
	}

	res, err := c.AddPolicyCertificate(ctx, second.Chain[0], first)
	if err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if r.method != "POST" || r.path != "/certificates:add" || r.rawQuery != "api-version=2022-08-01" || r.header.Get("Content-Type") != "application/json" ||
		r.header.Get("Authorization") != "Bearer "+fakeBearer {
		t.Errorf("add request %s %s?%s %v", r.method, r.path, r.rawQuery, r.header)
	}
	// The body is the JWS as a JSON string literal: "eyJ...".
	if len(r.body) < 3 || r.body[0] != '"' || r.body[len(r.body)-1] != '"' || strings.ContainsAny(string(r.body[1:len(r.body)-1]), `"\ `) {
		t.Errorf("add body %s is not a plain JSON string", r.body)
	}
	var doc string
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	jws, err := token.ParseJWS(doc)
	if err != nil || jws.Header.Alg != "RS256" || jws.VerifySignature() != nil || !jws.Chain[0].Equal(first.Chain[0]) {
		t.Fatalf("add document: %v", err)
	}
	if got, err := token.CertificateFromPayload(jws.Payload); err != nil || !got.Equal(second.Chain[0]) {
		t.Errorf("add document names %v, %v", got, err)
	}
	if string(jws.Payload) != string(token.CertificatePayload(second.Chain[0])) {
		t.Errorf("add payload %s", jws.Payload)
	}
	if res.Thumbprint != token.Thumbprint(second.Chain[0]) || res.Result != client.CertificatePresent {
		t.Errorf("add result %+v", res)
	}
	if certs, err := c.PolicyCertificates(ctx); err != nil || len(certs) != 2 {
		t.Errorf("after add: %d certificates, %v", len(certs), err)
	}

	// The new signer removes the first.
	res, err = c.RemovePolicyCertificate(ctx, first.Chain[0], second)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.last(t); r.path != "/certificates:remove" || r.header.Get("Content-Type") != "application/json" || r.body[0] != '"' {
		t.Errorf("remove request %s %q", r.path, r.body)
	}
	if res.Thumbprint != token.Thumbprint(first.Chain[0]) || res.Result != client.CertificateAbsent {
		t.Errorf("remove result %+v", res)
	}
	// The removed signer is no longer trusted.
	var ae *client.APIError
	if _, err := c.AddPolicyCertificate(ctx, first.Chain[0], first); !errors.As(err, &ae) || ae.Reason != "untrusted_signer" {
		t.Errorf("add by a removed signer: %v", err)
	}

	// Client-side refusals send nothing.
	n := f.count()
	if _, err := c.AddPolicyCertificate(ctx, second.Chain[0], nil); err == nil {
		t.Error("unsigned add accepted")
	}
	if _, err := c.RemovePolicyCertificate(ctx, nil, second); err == nil {
		t.Error("remove of nil accepted")
	}
	if _, err := c.SetPolicy(ctx, client.SGX, " \n", nil); err == nil {
		t.Error("empty policy accepted")
	}
	if _, err := c.SetPolicy(ctx, client.SGX, "version=1.0;\xff", nil); err == nil {
		t.Error("non-UTF-8 policy accepted")
	}
	if _, err := c.GetPolicy(ctx, ""); err == nil {
		t.Error("empty type accepted")
	}
	mismatched := &client.Signer{Key: testECKey(t, elliptic.P256()), Chain: second.Chain}
	if _, err := c.SetPolicy(ctx, client.SGX, testPolicy, mismatched); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched signer: %v", err)
	}
	if f.count() != n {
		t.Errorf("%d requests sent for invalid input", f.count()-n)
	}
}

// The x-ms-policy-token-hash must be the hash of exactly what was sent.
func TestTokenHashMismatch(t *testing.T) {
	f := newFakeAdmin(t)
	c := f.client(t, true)
	ctx := context.Background()
	f.set(func(f *fakeAdmin) { f.wrongHash = true })
	_, err := c.SetPolicy(ctx, client.SGX, testPolicy, nil)
	if !errors.Is(err, client.ErrTokenHashMismatch) {
		t.Fatalf("wrong hash: %v", err)
	}
	f.set(func(f *fakeAdmin) { f.wrongHash, f.noHash = false, true })
	if _, err := c.SetPolicy(ctx, client.SGX, testPolicy, nil); !errors.Is(err, client.ErrTokenHashMismatch) {
		t.Fatalf("missing hash: %v", err)
	}
	f.set(func(f *fakeAdmin) { f.noHash = false })
	if _, err := c.SetPolicy(ctx, client.SGX, testPolicy, nil); err != nil {
		t.Fatal(err)
	}
}

// With a response verifier, responses not signed by the service's
// published key, or stale, are refused; without one they are only decoded.
func TestResponseVerification(t *testing.T) {
	f := newFakeAdmin(t)
	verified := f.client(t, true)
	decodeOnly := f.client(t, false)
	ctx := context.Background()

	f.set(func(f *fakeAdmin) { f.tamper = true })
	_, err := verified.SetPolicy(ctx, client.SGX, testPolicy, nil)
	if verify.CodeOf(err) != verify.CodeBadSignature {
		t.Fatalf("tampered response: %v (code %q)", err, verify.CodeOf(err))
	}
	// Decoding alone sees the tampered claims (and here refuses them only
	// because the result is not "Updated").
	if _, err := decodeOnly.SetPolicy(ctx, client.SGX, testPolicy, nil); !errors.Is(err, client.ErrResponseMismatch) {
		t.Fatalf("tampered response, decode only: %v", err)
	}
	if p, err := decodeOnly.GetPolicy(ctx, client.SGX); err != nil || p.Text != testPolicy {
		t.Fatalf("tampered GET, decode only: %+v %v", p, err)
	}
	if _, err := verified.GetPolicy(ctx, client.SGX); verify.CodeOf(err) != verify.CodeBadSignature {
		t.Fatalf("tampered GET: %v", err)
	}

	other, err := token.GenerateKey(nil, f.issuer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeAdmin) { f.tamper, f.foreignKey = false, other })
	if _, err := verified.PolicyCertificates(ctx); verify.CodeOf(err) != verify.CodeUnknownKey {
		t.Fatalf("unpublished key: %v", err)
	}
	f.set(func(f *fakeAdmin) { f.foreignKey, f.age = nil, 3*time.Hour })
	if _, err := verified.ResetPolicy(ctx, client.SGX, nil); verify.CodeOf(err) != verify.CodeExpired {
		t.Fatalf("expired response: %v", err)
	}
	f.set(func(f *fakeAdmin) { f.age = 0 })
	if _, err := verified.ResetPolicy(ctx, client.SGX, nil); err != nil {
		t.Fatal(err)
	}
	// A verifier for another issuer refuses the service's tokens.
	v, err := verify.New("https://elsewhere.example", verify.WithKeySet([]byte(`{"keys":[]}`)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(f.srv.URL, client.WithHTTPClient(f.srv.Client()), client.WithBearerToken(fakeBearer), client.WithResponseVerifier(v))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPolicy(ctx, client.SGX); verify.CodeOf(err) == "" {
		t.Fatalf("foreign verifier: %v", err)
	}
	if _, err := client.New(f.srv.URL, client.WithResponseVerifier(nil)); err == nil {
		t.Error("nil verifier accepted")
	}
}

// Service errors on management calls are *APIError with code, reason and
// message; malformed 200 answers are plain errors.
func TestManagementErrors(t *testing.T) {
	f := newFakeAdmin(t)
	ctx := context.Background()

	// No bearer token.
	anon, err := client.New(f.srv.URL, client.WithHTTPClient(f.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.GetPolicy(ctx, client.SGX)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Code != "Unauthorized" || ae.Reason != "missing_token" || ae.Message != "a bearer token is required" {
		t.Fatalf("no bearer: %v", err)
	}

	c := f.client(t, false)
	f.set(func(f *fakeAdmin) {
		f.fail = &failure{400, `{"error":{"code":"PolicyParsingError","message":"Offending symbol: '}'","innererror":{"code":"policy_syntax"}}}`}
	})
	_, err = c.SetPolicy(ctx, client.SGX, testPolicy, nil)
	if !errors.As(err, &ae) || ae.Code != "PolicyParsingError" || ae.Reason != "policy_syntax" || ae.Message != "Offending symbol: '}'" {
		t.Fatalf("parse error: %v", err)
	}
	for _, body := range []string{
		`{}`, `{"token":""}`, `not json`, `{"token":"a.b"}`, `{"token":"a.!!.c"}`, `{"token":"a.` + b64url([]byte(`[1]`)) + `.c"}`,
		`{"token":"a.` + b64url([]byte(`{"x-ms-policy":5}`)) + `.c"}`,
		`{"token":"a.` + b64url([]byte(`{"x-ms-policy":"not.a.jws"}`)) + `.c"}`,
		`{"token":"a.` + b64url([]byte(`{"x-ms-policy":"eyJhbGciOiJub25lIn0.e30."}`)) + `.c"}`,
	} {
		f.set(func(f *fakeAdmin) { f.fail = &failure{200, body} })
		_, err := c.GetPolicy(ctx, client.SGX)
		if err == nil || errors.As(err, &ae) {
			t.Errorf("GET answered %s: %v", body, err)
		}
	}
	// A result that contradicts the request.
	for name, tc := range map[string]struct {
		claims string
		call   func() error
	}{
		"set answered Removed":   {`{"x-ms-policy-result":"Removed"}`, func() error { _, err := c.SetPolicy(ctx, client.SGX, testPolicy, nil); return err }},
		"reset answered Updated": {`{"x-ms-policy-result":"Updated"}`, func() error { _, err := c.ResetPolicy(ctx, client.SGX, nil); return err }},
		"no result":              {`{}`, func() error { _, err := c.ResetPolicy(ctx, client.SGX, nil); return err }},
		"reset with a wrong hash": {`{"x-ms-policy-result":"Removed","x-ms-policy-token-hash":"abc"}`, func() error {
			_, err := c.ResetPolicy(ctx, client.SGX, nil)
			if !errors.Is(err, client.ErrTokenHashMismatch) {
				return nil
			}
			return err
		}},
		"signer on an unsigned set": {`{"x-ms-policy-result":"Removed","x-ms-policy-signer":{"kty":"RSA","x5c":["` + base64.StdEncoding.EncodeToString(rsaSigner(t).Chain[0].Raw) + `"]}}`,
			func() error { _, err := c.ResetPolicy(ctx, client.SGX, nil); return err }},
		"no certificate set": {`{}`, func() error { _, err := c.PolicyCertificates(ctx); return err }},
		"certificate set of junk": {`{"x-ms-policy-certificates":{"keys":[{"x5c":["AAAA"]}]}}`, func() error {
			_, err := c.PolicyCertificates(ctx)
			return err
		}},
		"add answered IsAbsent": {`{"x-ms-certificate-thumbprint":"` + token.Thumbprint(rsaSigner(t).Chain[0]) + `","x-ms-policycertificates-result":"IsAbsent"}`, func() error {
			s := rsaSigner(t)
			_, err := c.AddPolicyCertificate(ctx, s.Chain[0], s)
			return err
		}},
		"another thumbprint": {`{"x-ms-certificate-thumbprint":"00","x-ms-policycertificates-result":"IsPresent"}`, func() error {
			s := rsaSigner(t)
			_, err := c.AddPolicyCertificate(ctx, s.Chain[0], s)
			return err
		}},
	} {
		f.set(func(f *fakeAdmin) {
			f.fail = &failure{200, `{"token":"e30.` + b64url([]byte(tc.claims)) + `.c"}`}
		})
		if err := tc.call(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Thumbprints compare case-insensitively.
	s := rsaSigner(t)
	f.set(func(f *fakeAdmin) {
		f.fail = &failure{200, `{"token":"e30.` + b64url([]byte(`{"x-ms-certificate-thumbprint":"`+strings.ToLower(token.Thumbprint(s.Chain[0]))+`","x-ms-policycertificates-result":"IsPresent"}`)) + `.c"}`}
	})
	if _, err := c.AddPolicyCertificate(ctx, s.Chain[0], s); err != nil {
		t.Errorf("lower-case thumbprint: %v", err)
	}
}

func TestLoadSigner(t *testing.T) {
	rk := testRSAKey(t)
	rc := testCert(t, rk, "rsa")
	ek := testECKey(t, elliptic.P384())
	ec := testCert(t, ek, "ec384")
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	// PKCS #8 RSA, a chain, and one combined bundle.
	s, err := client.LoadSigner(pkcs8(rk), certPEM(rc, ec))
	if err != nil || len(s.Chain) != 2 || !s.Chain[0].Equal(rc) {
		t.Fatalf("PKCS #8 RSA with chain: %v", err)
	}
	bundle := append(certPEM(ec), pkcs8(ek)...)
	if s, err = client.LoadSigner(bundle, bundle); err != nil || len(s.Chain) != 1 {
		t.Fatalf("combined bundle: %v", err)
	}
	// ES384 documents verify.
	f := newFakeAdmin(t, ec)
	if res, err := f.client(t, false).SetPolicy(context.Background(), client.SGX, testPolicy, s); err != nil || !res.Signer.Equal(ec) {
		t.Fatalf("ES384 set: %v", err)
	}
	if jws, _ := token.ParseJWS(string(f.last(t).body)); jws == nil || jws.Header.Alg != "ES384" {
		t.Errorf("ES384 header %+v", jws)
	}

	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224 := testECKey(t, elliptic.P224())
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}})
	for name, tc := range map[string]struct{ key, cert []byte }{
		"key of another certificate": {pkcs8(rk), certPEM(ec)},
		"no certificate":             {pkcs8(rk), nil},
		"no key":                     {certPEM(rc), certPEM(rc)},
		"garbage key":                {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), certPEM(rc)},
		"garbage certificate":        {pkcs8(rk), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})},
		"encrypted PKCS #1":          {encrypted, certPEM(rc)},
		"encrypted PKCS #8":          {pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), certPEM(rc)},
		"RSA-1024":                   {pkcs8(weak), certPEM(testCert(t, weak, "weak"))},
		"P-224":                      {pkcs8(p224), certPEM(testCert(t, p224, "p224"))},
		"Ed25519":                    {pkcs8(edKey), certPEM(testCert(t, edKey, "ed"))},
	} {
		if _, err := client.LoadSigner(tc.key, tc.cert); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A hand-built Signer is checked before use, too.
	c := f.client(t, false)
	for name, s := range map[string]*client.Signer{
		"no key":   {Chain: []*x509.Certificate{rc}},
		"no chain": {Key: rk},
		"mismatch": {Key: ek, Chain: []*x509.Certificate{rc}},
	} {
		if _, err := c.ResetPolicy(context.Background(), client.SGX, s); err == nil {
			t.Errorf("Signer %s: accepted", name)
		}
	}
}
