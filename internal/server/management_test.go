package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/auth"
	"github.com/attestd/attestd/internal/policies"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/internal/store/sqlite"
	"github.com/attestd/attestd/internal/testpki"
	"github.com/attestd/attestd/simulator"
	"github.com/attestd/attestd/token"
)

// envClock is the clock of newEnv's service (a day after simNow).
var envClock = simNow.Add(24 * time.Hour)

const oidcAudience = "api://attestd"

// fakeIdP is an OpenID Connect issuer on loopback: discovery and a JWKS
// with one RSA key.
type fakeIdP struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string
}

func newFakeIdP(t testing.TB) *fakeIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &fakeIdP{key: key, kid: "idp-key-1"}
	mux := http.NewServeMux()
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp.srv.URL, "jwks_uri": idp.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		enc := base64.RawURLEncoding
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "use": "sig", "kid": idp.kid, "alg": "RS256",
			"n": enc.EncodeToString(key.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	return idp
}

// token issues an RS256 JWT with the given claims over defaults for a
// valid token at envClock.
func (idp *fakeIdP) token(t testing.TB, claims map[string]any) string {
	t.Helper()
	body := map[string]any{"iss": idp.srv.URL, "aud": oidcAudience, "sub": "alice",
		"iat": envClock.Unix(), "nbf": envClock.Unix(), "exp": envClock.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": idp.kid})
	b, _ := json.Marshal(body)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(b)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, idp.key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + enc.EncodeToString(sig)
}

// mgmtEnv is a server with a policy store, admin tokens and an OIDC
// issuer.
type mgmtEnv struct {
	*testEnv
	st       store.Store
	pm       *policies.Manager
	idp      *fakeIdP
	signer   *testpki.Signer // registered policy signer (isolated mode)
	reader   string          // Authorization values
	contrib  string
	attester string
}

func signerOptions() testpki.Options {
	return testpki.Options{NotBefore: simNow.Add(-time.Hour), NotAfter: simNow.Add(365 * 24 * time.Hour)}
}

func newMgmtEnv(t testing.TB, isolated, attestAuth bool) *mgmtEnv {
	t.Helper()
	ctx := context.Background()
	sealer, err := store.NewAESGCMSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "attestd.db"), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := func() time.Time { return envClock }
	me := &mgmtEnv{st: st, idp: newFakeIdP(t)}
	pcfg := policies.Config{Store: st, Clock: clock}
	if isolated {
		me.signer = testpki.SelfSigned(t, "policy signer", signerOptions())
		pcfg.Isolated, pcfg.InitialCertificates = true, []*x509.Certificate{me.signer.Cert}
	}
	if me.pm, err = policies.New(ctx, pcfg); err != nil {
		t.Fatal(err)
	}
	var lines []string
	tokens := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.RoleAttester, auth.RoleReader, auth.RoleContributor} {
		tok, err := auth.NewAdminToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		line, err := auth.AdminTokenLine("admin-"+r.String(), r, tok)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		tokens[r] = tok
	}
	file := filepath.Join(t.TempDir(), "admin-tokens")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin, err := auth.LoadAdminTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{AdminTokens: admin, Clock: clock, OIDC: &auth.OIDCConfig{
		Issuer: me.idp.srv.URL, Audience: oidcAudience,
		RoleMap: map[string]auth.Role{"Attestation.Reader": auth.RoleReader, "Attestation.Contributor": auth.RoleContributor},
	}})
	if err != nil {
		t.Fatal(err)
	}
	me.testEnv = newEnv(t, envOptions{policies: me.pm, auth: authn, attestAuth: attestAuth})
	me.attester = "Bearer " + tokens[auth.RoleAttester]
	me.reader = "Bearer " + me.idp.token(t, map[string]any{"roles": []string{"Attestation.Reader"}})
	me.contrib = "Bearer " + tokens[auth.RoleContributor]
	return me
}

const apiV = "?api-version=2020-10-01"

// sign makes a management document: signed by the registered signer in
// isolated mode, unsigned otherwise.
func (me *mgmtEnv) doc(t testing.TB, payload []byte) string {
	t.Helper()
	if me.signer == nil {
		return token.UnsecuredDocument(payload)
	}
	jws, err := token.SignJWS(me.signer.Key, me.signer.Chain, payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// claimsOf checks a 200 management response and returns its verified
// claims.
func (me *mgmtEnv) claimsOf(t *testing.T, r response) map[string]any {
	t.Helper()
	h, c := me.tokenOf(r)
	if h["alg"] != "RS256" || h["jku"] != me.issuer+"/certs" || h["typ"] != "JWT" {
		t.Errorf("management token header %v", h)
	}
	if num(t, c["exp"])-num(t, c["iat"]) != 3600 || c["iss"] != me.issuer {
		t.Errorf("management token lifetime/issuer: %v", c)
	}
	return c
}

// state is what a refused call must leave unchanged.
func (me *mgmtEnv) state(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, ty := range service.AttestationTypes() {
		h, err := me.st.PolicyHistory(ctx, store.DefaultTenant, string(ty))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%d ", ty, len(h))
	}
	cs, err := me.st.PolicyCertificates(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		b.WriteString(c.ID[:8] + " ")
	}
	return b.String()
}

// TestAuthorizationMatrix: every management route against every kind of
// caller. Refused calls get their status and change nothing; allowed ones
// succeed.
func TestAuthorizationMatrix(t *testing.T) {
	me := newMgmtEnv(t, true, false)
	// Each add names a new certificate: a signed add document is good
	// for one use, and RS256 documents for the same certificate are
	// byte-identical.
	newcomerOptions := signerOptions()
	newcomerOptions.EC = true
	newcomer := testpki.SelfSigned(t, "newcomer", newcomerOptions)
	jsonString := func(s string) []byte { b, _ := json.Marshal(s); return b }
	type route struct {
		name, method, path, ctype string
		body                      func() []byte
		write                     bool
	}
	routes := []route{
		{"get policy", "GET", "/policies/SgxEnclave" + apiV, "", func() []byte { return nil }, false},
		{"set policy", "PUT", "/policies/SgxEnclave" + apiV, "text/plain", func() []byte {
			return []byte(me.doc(t, token.PolicyPayload(permitAllText)))
		}, true},
		{"reset policy", "POST", "/policies/SgxEnclave:reset" + apiV, "text/plain", func() []byte { return []byte(me.doc(t, nil)) }, true},
		{"get certificates", "GET", "/certificates" + apiV, "", func() []byte { return nil }, false},
		{"add certificate", "POST", "/certificates:add" + apiV, "application/json", func() []byte {
			newcomer = testpki.SelfSigned(t, "newcomer", newcomerOptions)
			return jsonString(me.doc(t, token.CertificatePayload(newcomer.Cert)))
		}, true},
		{"remove certificate", "POST", "/certificates:remove" + apiV, "application/json", func() []byte {
			return jsonString(me.doc(t, token.CertificatePayload(newcomer.Cert)))
		}, true},
	}
	wrongIssuer := "Bearer " + me.idp.token(t, map[string]any{"iss": "https://evil.example", "roles": []string{"Attestation.Contributor"}})
	expired := "Bearer " + me.idp.token(t, map[string]any{"exp": envClock.Add(-time.Hour).Unix(), "roles": []string{"Attestation.Contributor"}})
	wrongAudience := "Bearer " + me.idp.token(t, map[string]any{"aud": "api://other", "roles": []string{"Attestation.Contributor"}})
	noRole := "Bearer " + me.idp.token(t, map[string]any{"roles": []string{"Something.Else"}})
	oidcContrib := "Bearer " + me.idp.token(t, map[string]any{"roles": []string{"Attestation.Contributor"}})
	callers := []struct {
		name, authorization string
		readStatus          int
		writeStatus         int
	}{
		{"no token", "", 401, 401},
		{"malformed token", "Bearer not-a-token", 401, 401},
		{"basic auth", "Basic YWRtaW46YWRtaW4=", 401, 401},
		{"unknown admin token", "Bearer attestd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 401, 401},
		{"wrong issuer", wrongIssuer, 401, 401},
		{"expired", expired, 401, 401},
		{"wrong audience", wrongAudience, 401, 401},
		{"no mapped role", noRole, 403, 403},
		{"attester", me.attester, 403, 403},
		{"reader (OIDC)", me.reader, 200, 403},
		{"contributor (admin token)", me.contrib, 200, 200},
		{"contributor (OIDC)", oidcContrib, 200, 200},
	}
	for _, c := range callers {
		for _, rt := range routes {
			t.Run(c.name+"/"+rt.name, func(t *testing.T) {
				before := me.state(t)
				r := me.doAuth(rt.method, rt.path, rt.ctype, c.authorization, rt.body())
				want := c.readStatus
				if rt.write {
					want = c.writeStatus
				}
				if r.status != want {
					t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
				}
				if want == 200 {
					me.claimsOf(t, r)
					return
				}
				var e maaError
				if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.InnerError == nil {
					t.Errorf("refusal body %s", r.body)
				}
				if want == 401 && r.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if after := me.state(t); after != before {
					t.Errorf("a refused call changed the store: %s -> %s", before, after)
				}
			})
		}
	}
}

const permitAllText = `version=1.0; authorizationrules{=> permit();}; issuancerules{};`

// TestPolicyLifecycleAAD: set, get, attest under the new policy, reset,
// over HTTP as the JS SDK sends them.
func TestPolicyLifecycleAAD(t *testing.T) {
	me := newMgmtEnv(t, false, false)
	q := b64u(me.quote(simulator.QuoteOptions{}))

	// GET of a default: an unsigned document of MAA's default text.
	c := me.claimsOf(t, me.doAuth("GET", "/policies/SgxEnclave"+apiV, "", me.contrib, nil))
	if c["x-ms-policy"] != token.UnsecuredDocument(token.PolicyPayload(service.DefaultSGXPolicy)) {
		t.Errorf("default x-ms-policy %v", c["x-ms-policy"])
	}

	deny := `version=1.0; authorizationrules{ =>deny(); }; issuancerules{ };`
	doc := token.UnsecuredDocument(token.PolicyPayload(deny))
	c = me.claimsOf(t, me.doAuth("PUT", "/policies/SgxEnclave"+apiV, "text/plain", me.contrib, []byte(doc)))
	if c["x-ms-policy-result"] != "Updated" || c["x-ms-policy-token-hash"] != token.DocumentHash(doc) || c["x-ms-policy-signer"] != nil {
		t.Errorf("set claims %v", c)
	}
	c = me.claimsOf(t, me.doAuth("GET", "/policies/SgxEnclave"+apiV, "", me.reader, nil))
	if c["x-ms-policy"] != doc {
		t.Errorf("GET after set: %v", c["x-ms-policy"])
	}
	wantError(t, me.attest("SgxEnclave", map[string]any{"quote": q}), 400, "PolicyEvaluationError", "policy_denied")

	issue := `version=1.2; authorizationrules{ [type=="x-ms-sgx-is-debuggable", value==false] => permit(); }; issuancerules{ c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value); => issue(type="SecurityLevelValue", value=100); };`
	me.claimsOf(t, me.doAuth("PUT", "/policies/SgxEnclave"+apiV, "text/plain", me.contrib, []byte(token.UnsecuredDocument(token.PolicyPayload(issue)))))
	_, tc := me.tokenOf(me.attest("SgxEnclave", map[string]any{"quote": q}))
	pol, _ := tc["x-ms-policy"].(map[string]any)
	if tc["SecurityLevelValue"] == nil || pol == nil || pol["signer"] != tc["x-ms-sgx-mrsigner"] || tc["x-ms-policy-hash"] != service.PolicyHash(issue) {
		t.Errorf("token under the issuing policy: %v", tc)
	}
	if tc["sgx-mrsigner"] != nil {
		t.Error("the default policy's claims are still issued")
	}

	// Reset: back to the default policy's claims.
	c = me.claimsOf(t, me.doAuth("POST", "/policies/SgxEnclave:reset"+apiV, "text/plain", me.contrib, []byte("eyJhbGciOiJub25lIn0..")))
	if c["x-ms-policy-result"] != "Removed" || c["x-ms-policy-token-hash"] != nil {
		t.Errorf("reset claims %v", c)
	}
	_, tc = me.tokenOf(me.attest("SgxEnclave", map[string]any{"quote": q}))
	if tc["sgx-mrsigner"] == nil || tc["x-ms-policy-hash"] != "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw" {
		t.Errorf("token after reset: %v", tc)
	}
}

// TestBadPolicies: rejected with line and column; the stored policy stays.
func TestBadPolicies(t *testing.T) {
	me := newMgmtEnv(t, false, false)
	good := token.UnsecuredDocument(token.PolicyPayload(permitAllText))
	me.claimsOf(t, me.doAuth("PUT", "/policies/TdxVm"+apiV, "text/plain", me.contrib, []byte(good)))
	for _, tc := range []struct {
		name, text, code, reason, mention string
	}{
		{"syntax", "version=1.0;\nauthorizationrules{ => permit() };\nissuancerules{};", "PolicyParsingError", "policy_invalid", "line 2"},
		{"unknown version", "version=3.0; authorizationrules{}; issuancerules{};", "PolicyParsingError", "policy_invalid", "line 1"},
		{"unknown function", "version=1.2; authorizationrules{ => permit(); }; issuancerules{ => issue(type=\"a\", value=Frobnicate(\"x\")); };", "PolicyParsingError", "policy_invalid", "Frobnicate"},
		{"ordering on a string", "version=1.0; authorizationrules{ [type==\"a\", value > \"b\"] => permit(); }; issuancerules{};", "PolicyParsingError", "policy_invalid", "line 1"},
		{"permit in issuance", "version=1.0; authorizationrules{ }; issuancerules{ => permit(); };", "PolicyParsingError", "policy_invalid", "line 1"},
		{"too large", "version=1.0; authorizationrules{ => permit(); }; issuancerules{ " + strings.Repeat("=> issue(type=\"a\", value=\"b\"); ", 3000) + "};", "PolicyParsingError", "policy_too_large", ""},
		{"deep nesting", "version=1.2; authorizationrules{ => permit(); }; issuancerules{ => issue(type=\"a\", value=" + strings.Repeat("NegateBool(", 5000) + "true" + strings.Repeat(")", 5000) + "); };", "PolicyParsingError", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := me.state(t)
			r := me.doAuth("PUT", "/policies/TdxVm"+apiV, "text/plain", me.contrib, []byte(token.UnsecuredDocument(token.PolicyPayload(tc.text))))
			if r.status != 400 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var e maaError
			_ = json.Unmarshal(r.body, &e)
			if e.Error.Code != tc.code || (tc.reason != "" && (e.Error.InnerError == nil || e.Error.InnerError.Code != tc.reason)) {
				t.Errorf("error %s", r.body)
			}
			if !strings.Contains(e.Error.Message, tc.mention) || (tc.reason == "policy_invalid" && !strings.Contains(e.Error.Message, "column")) {
				t.Errorf("message %q should mention %q and a column", e.Error.Message, tc.mention)
			}
			if me.state(t) != before {
				t.Error("a refused policy changed the store")
			}
		})
	}
	c := me.claimsOf(t, me.doAuth("GET", "/policies/TdxVm"+apiV, "", me.contrib, nil))
	if c["x-ms-policy"] != good {
		t.Error("the stored policy changed")
	}
	// Malformed documents.
	for _, body := range []string{"", "not a jws", `"unterminated`, "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("a", MaxManagementBody+1)} {
		r := me.doAuth("PUT", "/policies/TdxVm"+apiV, "text/plain", me.contrib, []byte(body))
		if r.status != 400 && r.status != 413 {
			t.Errorf("body %.20q: status %d", body, r.status)
		}
	}
	// Unknown type, unknown api-version, wrong method.
	wantError(t, me.doAuth("GET", "/policies/Nope"+apiV, "", me.contrib, nil), 404, "NotFound", "unknown_attestation_type")
	wantError(t, me.doAuth("GET", "/policies/TdxVm", "", me.contrib, nil), 400, "ApiVersionUnspecified", "api_version_missing")
	wantError(t, me.doAuth("DELETE", "/policies/TdxVm"+apiV, "", me.contrib, nil), 405, "MethodNotAllowed", "method_not_allowed")
	wantError(t, me.doAuth("POST", "/policies/TdxVm"+apiV, "", me.contrib, nil), 405, "MethodNotAllowed", "method_not_allowed")
}

// TestIsolatedOverHTTP: signed set with x-ms-policy-signer, unsigned
// refused, certificates listed in MAA's JWK shape, the last one kept.
func TestIsolatedOverHTTP(t *testing.T) {
	me := newMgmtEnv(t, true, false)
	q := b64u(me.quote(simulator.QuoteOptions{}))
	unsigned := token.UnsecuredDocument(token.PolicyPayload(permitAllText))
	wantError(t, me.doAuth("PUT", "/policies/SgxEnclave"+apiV, "text/plain", me.contrib, []byte(unsigned)), 400, "InvalidOperation", "unsigned_document")

	doc := me.doc(t, token.PolicyPayload(`version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type="isolated", value=true); };`))
	c := me.claimsOf(t, me.doAuth("PUT", "/policies/SgxEnclave"+apiV, "text/plain", me.contrib, []byte(doc)))
	signer, _ := c["x-ms-policy-signer"].(map[string]any)
	if signer == nil || signer["kty"] != "RSA" || signer["x5c"].([]any)[0] != base64.StdEncoding.EncodeToString(me.signer.Cert.Raw) {
		t.Errorf("x-ms-policy-signer %v", c["x-ms-policy-signer"])
	}
	_, tc := me.tokenOf(me.attest("SgxEnclave", map[string]any{"quote": q}))
	if tc["isolated"] != true || tc["x-ms-policy-signer"] == nil {
		t.Errorf("attestation under a signed policy: %v", tc)
	}

	c = me.claimsOf(t, me.doAuth("GET", "/certificates"+apiV, "", me.reader, nil))
	keys := c["x-ms-policy-certificates"].(map[string]any)["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["x5c"].([]any)[0] != base64.StdEncoding.EncodeToString(me.signer.Cert.Raw) {
		t.Errorf("certificates %v", keys)
	}
	// Raw (not JSON-quoted) bodies are accepted on :add too.
	newcomer := testpki.SelfSigned(t, "newcomer", signerOptions())
	c = me.claimsOf(t, me.doAuth("POST", "/certificates:add"+apiV, "text/plain", me.contrib, []byte(me.doc(t, token.CertificatePayload(newcomer.Cert)))))
	if c["x-ms-policycertificates-result"] != "IsPresent" || c["x-ms-certificate-thumbprint"] != token.Thumbprint(newcomer.Cert) {
		t.Errorf("add %v", c)
	}
	body, _ := json.Marshal(me.doc(t, token.CertificatePayload(me.signer.Cert)))
	c = me.claimsOf(t, me.doAuth("POST", "/certificates:remove"+apiV, "application/json", me.contrib, body))
	if c["x-ms-policycertificates-result"] != "IsAbsent" {
		t.Errorf("remove %v", c)
	}
	// The removed signer can no longer sign; the newcomer is the last one.
	wantError(t, me.doAuth("PUT", "/policies/SgxEnclave"+apiV, "text/plain", me.contrib, []byte(me.doc(t, token.PolicyPayload(permitAllText)))), 400, "InvalidParameter", "untrusted_signer")
	last, _ := token.SignJWS(newcomer.Key, newcomer.Chain, token.CertificatePayload(newcomer.Cert))
	body, _ = json.Marshal(last)
	wantError(t, me.doAuth("POST", "/certificates:remove"+apiV, "application/json", me.contrib, body), 400, "InvalidOperation", "last_policy_certificate")
}

// TestAttestAuthRequired: with --attest-auth=required, attest calls need a
// token with the attester role.
func TestAttestAuthRequired(t *testing.T) {
	me := newMgmtEnv(t, false, true)
	body, _ := json.Marshal(map[string]any{"quote": b64u(me.quote(simulator.QuoteOptions{}))})
	path := "/attest/SgxEnclave?api-version=2022-08-01"
	if r := me.doAuth("POST", path, "application/json", "", body); r.status != 401 {
		t.Errorf("anonymous attest: %d", r.status)
	}
	for _, a := range []string{me.attester, me.reader, me.contrib} {
		if r := me.doAuth("POST", path, "application/json", a, body); r.status != 200 {
			t.Errorf("attest with a token: %d %s", r.status, r.body)
		}
	}
	// Discovery stays anonymous.
	if r := me.do("GET", "/certs", "", nil); r.status != 200 {
		t.Errorf("/certs: %d", r.status)
	}
}

// TestManagementWithoutAuth: no credential source means a closed API.
func TestManagementWithoutAuth(t *testing.T) {
	ctx := context.Background()
	sealer, _ := store.NewAESGCMSealer(make([]byte, 32))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"), sealer)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pm, err := policies.New(ctx, policies.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{policies: pm})
	wantError(t, e.doAuth("GET", "/policies/SgxEnclave"+apiV, "", "Bearer x", nil), 401, "Unauthorized", "auth_not_configured")
}

// TestPolicyProperties: report_validity_in_minutes sets the token
// lifetime; omit_x5c names the signing certificate in the header.
func TestPolicyProperties(t *testing.T) {
	me := newMgmtEnv(t, false, false)
	q := b64u(me.quote(simulator.QuoteOptions{}))
	for _, tc := range []struct {
		omit     string
		lifetime int64
		header   string
	}{{"false", 60, "x5c"}, {"true", 5, "x5t"}} {
		text := fmt.Sprintf(`version=1.1; configurationrules{ => issueproperty(type="report_validity_in_minutes", value=%d); => issueproperty(type="omit_x5c", value=%s); }; authorizationrules{ => permit(); }; issuancerules{};`, tc.lifetime, tc.omit)
		me.claimsOf(t, me.doAuth("PUT", "/policies/SgxEnclave"+apiV, "text/plain", me.contrib, []byte(token.UnsecuredDocument(token.PolicyPayload(text)))))
		h, c := me.tokenOf(me.attest("SgxEnclave", map[string]any{"quote": q}))
		if got := num(t, c["exp"]) - num(t, c["iat"]); got != tc.lifetime*60 {
			t.Errorf("omit_x5c=%s: lifetime %d s, want %d", tc.omit, got, tc.lifetime*60)
		}
		if h[tc.header] == nil || h["kid"] == nil || h["jku"] == nil {
			t.Errorf("omit_x5c=%s: header %v lacks %s", tc.omit, h, tc.header)
		}
	}
	// Without the properties: MAA's header and lifetime.
	me.claimsOf(t, me.doAuth("POST", "/policies/SgxEnclave:reset"+apiV, "text/plain", me.contrib, []byte("eyJhbGciOiJub25lIn0..")))
	h, c := me.tokenOf(me.attest("SgxEnclave", map[string]any{"quote": q}))
	if h["x5c"] != nil || h["x5t"] != nil || num(t, c["exp"])-num(t, c["iat"]) != 8*3600 {
		t.Errorf("default header %v / lifetime", h)
	}
}
