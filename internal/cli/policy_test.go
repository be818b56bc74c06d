package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/token"
)

// adminFake is a minimal MAA-shaped management service for the CLI tests:
// policies and signers on MAA's wire format, answers signed by a key it
// publishes with OpenID metadata. The end-to-end tests against attestd
// itself live with the server.
type adminFake struct {
	srv    *httptest.Server
	key    *token.Key
	caPath string // the server's TLS certificate as a PEM file, for --ca

	mu        sync.Mutex
	last      *http.Request
	lastBody  []byte
	policies  map[string]string
	signers   []*x509.Certificate
	tamper    bool
	wrongHash bool
}

const adminBearer = "cli-test-token"

func newAdminFake(t *testing.T, signers ...*x509.Certificate) *adminFake {
	t.Helper()
	f := &adminFake{policies: map[string]string{}, signers: signers}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	var err error
	if f.key, err = token.GenerateKey(nil, f.srv.URL, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.caPath = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *adminFake) set(fn func(*adminFake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *adminFake) lastRequest() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.lastBody
}

func fakeError(w http.ResponseWriter, status int, code, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "innererror": map[string]string{"code": reason}}})
}

func (f *adminFake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		json.NewEncoder(w).Encode(token.Metadata(f.srv.URL, nil))
		return
	case "/certs":
		json.NewEncoder(w).Encode(token.KeySet([]*token.Key{f.key}))
		return
	}
	f.last, f.lastBody = r, body
	if r.Header.Get("Authorization") != "Bearer "+adminBearer {
		fakeError(w, 401, "Unauthorized", "missing_token", "a valid bearer token is required")
		return
	}
	document := string(body)
	if r.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(body, &document); err != nil {
			fakeError(w, 400, "InvalidOperation", "malformed_jws", "not a JSON string")
			return
		}
	}
	var jws *token.JWS
	if len(body) > 0 {
		var err error
		if jws, err = token.ParseJWS(document); err != nil {
			fakeError(w, 400, "InvalidOperation", "malformed_jws", err.Error())
			return
		}
		if jws.Unsecured() && len(f.signers) > 0 {
			fakeError(w, 400, "InvalidOperation", "unsigned_document", "the document must be signed (isolated mode)")
			return
		}
		if !jws.Unsecured() && jws.VerifySignature() != nil {
			fakeError(w, 400, "InvalidParameter", "bad_document_signature", "bad signature")
			return
		}
	}
	claims := map[string]any{}
	typ := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/policies/"), ":reset")
	switch {
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/policies/"):
		doc, ok := f.policies[typ]
		if !ok {
			doc = token.UnsecuredDocument(token.PolicyPayload("version=1.0; authorizationrules{=> permit();}; issuancerules{};"))
		}
		claims["x-ms-policy"] = doc
	case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/policies/"):
		if _, err := token.PolicyFromPayload(jws.Payload); err != nil {
			fakeError(w, 400, "InvalidOperation", "malformed_policy_document", err.Error())
			return
		}
		f.policies[typ] = document
		claims["x-ms-policy-result"] = "Updated"
		claims["x-ms-policy-token-hash"] = token.DocumentHash(document)
		if f.wrongHash {
			claims["x-ms-policy-token-hash"] = token.DocumentHash(document + " ")
		}
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, ":reset"):
		delete(f.policies, typ)
		claims["x-ms-policy-result"] = "Removed"
	case r.Method == "GET" && r.URL.Path == "/certificates":
		keys := []token.CertificateJWK{}
		for _, c := range f.signers {
			keys = append(keys, token.NewCertificateJWK(c))
		}
		claims["x-ms-policy-certificates"] = map[string]any{"keys": keys}
	case r.Method == "POST" && (r.URL.Path == "/certificates:add" || r.URL.Path == "/certificates:remove"):
		cert, err := token.CertificateFromPayload(jws.Payload)
		if err != nil {
			fakeError(w, 400, "InvalidOperation", "malformed_certificate_document", err.Error())
			return
		}
		var kept []*x509.Certificate
		for _, c := range f.signers {
			if !c.Equal(cert) {
				kept = append(kept, c)
			}
		}
		f.signers = kept
		claims["x-ms-policycertificates-result"] = "IsAbsent"
		if strings.HasSuffix(r.URL.Path, ":add") {
			f.signers = append(f.signers, cert)
			claims["x-ms-policycertificates-result"] = "IsPresent"
		}
		claims["x-ms-certificate-thumbprint"] = token.Thumbprint(cert)
	default:
		fakeError(w, 404, "NotFound", "not_found", "no route")
		return
	}
	if jws != nil && !jws.Unsecured() && strings.HasPrefix(r.URL.Path, "/policies/") {
		claims["x-ms-policy-signer"] = token.NewCertificateJWK(jws.Chain[0])
	}
	now := time.Now()
	claims["iss"], claims["iat"], claims["nbf"], claims["exp"] = f.srv.URL, now.Unix(), now.Unix(), now.Add(time.Hour).Unix()
	jwt, err := token.Sign(f.key, token.JWKSURL(f.srv.URL), claims)
	if err != nil {
		fakeError(w, 500, "InternalError", "internal", err.Error())
		return
	}
	if f.tamper {
		parts := strings.Split(jwt, ".")
		parts[1] = b64(append([]byte(`{"x-ms-tampered":1,`), mustJSON(claims)[1:]...), true)
		jwt = strings.Join(parts, ".")
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"token": jwt})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// runAdmin runs attestctl with an environment and standard input.
func runAdmin(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, IO{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errOut.String()
}

// signerFiles writes a P-256 key (SEC 1 PEM) and its self-signed
// certificate, and returns their paths and the certificate.
func signerFiles(t *testing.T, cn string) (keyPath, certPath string, cert *x509.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert = selfSigned(t, k, cn)
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath, certPath = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyPath, certPath, cert
}

func selfSigned(t *testing.T, k crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour).Truncate(time.Second),
		NotAfter:              time.Date(2040, 1, 2, 3, 4, 5, 0, time.UTC),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

const cliPolicy = "version=1.0; authorizationrules{ => permit(); }; issuancerules{ => issue(type=\"x\", value=true); };\n"

func TestPolicyUsageErrors(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "p.txt")
	if err := os.WriteFile(policyFile, []byte(cliPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPath, certPath, _ := signerFiles(t, "s")
	url := "https://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"policy"}, ExitUsage, "attestctl policy get"},
		{"unknown subcommand", []string{"policy", "delete"}, ExitUsage, `unknown subcommand "delete"`},
		{"help", []string{"policy", "-h"}, ExitOK, "attestctl policy set"},
		{"get help", []string{"policy", "get", "-h"}, ExitOK, "--insecure-skip-token-verify"},
		{"no url", []string{"policy", "get", "--type", "sgx"}, ExitUsage, "--url is required"},
		{"no type", []string{"policy", "get", "--url", url}, ExitUsage, "--type is required"},
		{"bad type", []string{"policy", "get", "--url", url, "--type", "sev"}, ExitUsage, `--type "sev"`},
		{"bad flag", []string{"policy", "get", "--bogus"}, ExitUsage, "flag provided but not defined"},
		{"extra args", []string{"policy", "get", "--url", url, "--type", "sgx", "x"}, ExitUsage, "unexpected arguments"},
		{"set without file", []string{"policy", "set", "--url", url, "--type", "sgx"}, ExitUsage, "--file is required"},
		{"unreadable file", []string{"policy", "set", "--url", url, "--type", "sgx", "--file", filepath.Join(dir, "nope")}, ExitUsage, "--file: open"},
		{"key without cert", []string{"policy", "set", "--url", url, "--type", "sgx", "--file", policyFile, "--sign-key", keyPath}, ExitUsage, "--sign-key needs --sign-cert"},
		{"cert without key", []string{"policy", "reset", "--url", url, "--type", "sgx", "--sign-cert", certPath}, ExitUsage, "--sign-cert needs --sign-key"},
		{"key of another cert", []string{"policy", "reset", "--url", url, "--type", "sgx", "--sign-key", keyPath, "--sign-cert", policyFile}, ExitUsage, "no PEM CERTIFICATE"},
		{"unreadable key", []string{"policy", "reset", "--url", url, "--type", "sgx", "--sign-key", filepath.Join(dir, "nokey"), "--sign-cert", certPath}, ExitUsage, "--sign-key: open"},
		{"token and token file", []string{"policy", "get", "--url", url, "--type", "sgx", "--token", "a", "--token-file", policyFile}, ExitUsage, "at most one of --token and --token-file"},
		{"unreadable token file", []string{"policy", "get", "--url", url, "--type", "sgx", "--token-file", filepath.Join(dir, "nope")}, ExitUsage, "--token-file: open"},
		{"two stdin readers", []string{"policy", "set", "--url", url, "--type", "sgx", "--file", "-", "--token-file", "-"}, ExitUsage, "cannot both read standard input"},
		{"bearer over http", []string{"policy", "get", "--url", "http://attest.example.com", "--type", "sgx", "--token", "t", "--insecure-skip-token-verify"}, ExitUsage, "https"},
		{"unreachable", []string{"policy", "get", "--url", url, "--type", "sgx"}, ExitUsage, "finding the service's issuer"},
	} {
		code, _, stderr := runAdmin(t, nil, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, stderr, tc.code, tc.want)
		}
	}
	// The top-level usage lists the commands.
	if _, _, stderr := runAdmin(t, nil, "", "-h"); !strings.Contains(stderr, "attestctl policy set") || !strings.Contains(stderr, "attestctl signer add|remove") {
		t.Errorf("usage: %s", stderr)
	}
}

// Set, get and reset an unsigned policy, verifying every answer, with the
// token from the environment and the policy from a file or standard input.
func TestPolicyAAD(t *testing.T) {
	f := newAdminFake(t)
	env := map[string]string{TokenEnv: adminBearer + "\n"}
	common := []string{"--url", f.srv.URL, "--ca", f.caPath}
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	if err := os.WriteFile(policyFile, []byte(cliPolicy), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := runAdmin(t, env, "", append([]string{"policy", "set", "--type", "sgx", "--file", policyFile}, common...)...)
	if code != ExitOK {
		t.Fatalf("set: exit %d: %s", code, stderr)
	}
	r, body := f.lastRequest()
	wantDoc := token.UnsecuredDocument(token.PolicyPayload(cliPolicy))
	if string(body) != wantDoc || r.Header.Get("Content-Type") != "text/plain" || r.URL.Path != "/policies/SgxEnclave" || r.URL.RawQuery != "api-version=2022-08-01" {
		t.Errorf("set request %s %s?%s %q", r.Method, r.URL.Path, r.URL.RawQuery, body)
	}
	want := "policy SgxEnclave: Updated\ntoken hash: " + token.DocumentHash(wantDoc) + " (matches the document sent)\n"
	if out != want {
		t.Errorf("set output %q, want %q", out, want)
	}

	// get prints the text; the MAA type name works in any case.
	code, out, stderr = runAdmin(t, env, "", append([]string{"policy", "get", "--type", "SGXENCLAVE"}, common...)...)
	if code != ExitOK || out != cliPolicy {
		t.Fatalf("get: exit %d, %q: %s", code, out, stderr)
	}
	code, out, stderr = runAdmin(t, env, "", append([]string{"policy", "get", "--type", "sgx", "--json"}, common...)...)
	if code != ExitOK {
		t.Fatalf("get --json: exit %d: %s", code, stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["type"] != "SgxEnclave" || doc["text"] != cliPolicy || doc["tokenHash"] != token.DocumentHash(wantDoc) || doc["policyHash"] == "" || doc["signer"] != nil {
		t.Errorf("get --json %v", doc)
	}

	// Standard input, --token over the environment, and the other types.
	code, _, stderr = runAdmin(t, map[string]string{TokenEnv: "wrong"}, "version=1.0; authorizationrules{=> deny();};",
		append([]string{"policy", "set", "--type", "TdxVm", "--file", "-", "--token", adminBearer}, common...)...)
	if code != ExitOK {
		t.Fatalf("set from stdin: exit %d: %s", code, stderr)
	}
	if r, _ := f.lastRequest(); r.URL.Path != "/policies/TdxVm" {
		t.Errorf("path %s", r.URL.Path)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(adminBearer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runAdmin(t, nil, "", append([]string{"policy", "reset", "--type", "openenclave", "--token-file", tokenFile}, common...)...)
	if code != ExitOK || out != "policy OpenEnclave: Removed\n" {
		t.Fatalf("reset: exit %d, %q: %s", code, out, stderr)
	}
	if r, body := f.lastRequest(); string(body) != "eyJhbGciOiJub25lIn0.." || r.URL.Path != "/policies/OpenEnclave:reset" || r.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("reset request %s %q", r.URL.Path, body)
	}

	// A token through standard input.
	code, _, stderr = runAdmin(t, nil, adminBearer, append([]string{"policy", "get", "--type", "oe", "--token-file", "-"}, common...)...)
	if code != ExitOK {
		t.Errorf("--token-file -: exit %d: %s", code, stderr)
	}
}

// Service refusals, a hash mismatch and tampered answers.
func TestPolicyFailures(t *testing.T) {
	f := newAdminFake(t)
	common := []string{"--url", f.srv.URL, "--ca", f.caPath, "--type", "sgx"}
	policyFile := filepath.Join(t.TempDir(), "p.txt")
	if err := os.WriteFile(policyFile, []byte(cliPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	// No token: the service's error, formatted, exit 1.
	code, out, stderr := runAdmin(t, nil, "", append([]string{"policy", "get"}, common...)...)
	if code != ExitRejected || out != "" || stderr != "attestctl: 401 Unauthorized (missing_token): a valid bearer token is required\n" {
		t.Errorf("no token: exit %d, %q", code, stderr)
	}
	env := map[string]string{TokenEnv: adminBearer}

	f.set(func(f *adminFake) { f.wrongHash = true })
	code, out, stderr = runAdmin(t, env, "", append([]string{"policy", "set", "--file", policyFile}, common...)...)
	if code != ExitRejected || out != "" || !strings.Contains(stderr, "x-ms-policy-token-hash does not match the document sent") {
		t.Errorf("wrong hash: exit %d, %q", code, stderr)
	}
	f.set(func(f *adminFake) { f.wrongHash, f.tamper = false, true })
	code, out, stderr = runAdmin(t, env, "", append([]string{"policy", "get"}, common...)...)
	if code != ExitRejected || out != "" || !strings.Contains(stderr, "not valid (bad_signature)") {
		t.Errorf("tampered: exit %d, %q", code, stderr)
	}
	// Without verification the tampered answer is only decoded.
	code, out, stderr = runAdmin(t, env, "", append([]string{"policy", "get", "--insecure-skip-token-verify"}, common...)...)
	if code != ExitOK || !strings.HasPrefix(out, "version=1.0") {
		t.Errorf("tampered, unverified: exit %d, %q, %s", code, out, stderr)
	}
	f.set(func(f *adminFake) { f.tamper = false })

	// --api-version is what is sent.
	code, _, stderr = runAdmin(t, env, "", append([]string{"policy", "get", "--api-version", "2020-10-01"}, common...)...)
	if r, _ := f.lastRequest(); code != ExitOK || r.URL.RawQuery != "api-version=2020-10-01" {
		t.Errorf("--api-version: exit %d %s", code, stderr)
	}
}

// A signed set on an isolated provider.
func TestPolicySigned(t *testing.T) {
	keyPath, certPath, cert := signerFiles(t, "policy signer")
	f := newAdminFake(t, cert)
	env := map[string]string{TokenEnv: adminBearer}
	common := []string{"--url", f.srv.URL, "--ca", f.caPath, "--type", "sgx"}
	policyFile := filepath.Join(t.TempDir(), "p.txt")
	if err := os.WriteFile(policyFile, []byte(cliPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runAdmin(t, env, "", append([]string{"policy", "set", "--file", policyFile}, common...)...)
	if code != ExitRejected || !strings.Contains(stderr, "attestctl: 400 InvalidOperation (unsigned_document): ") {
		t.Errorf("unsigned on isolated: exit %d, %q", code, stderr)
	}
	code, out, stderr := runAdmin(t, env, "", append([]string{"policy", "set", "--file", policyFile, "--sign-key", keyPath, "--sign-cert", certPath}, common...)...)
	if code != ExitOK {
		t.Fatalf("signed set: exit %d: %s", code, stderr)
	}
	_, body := f.lastRequest()
	jws, err := token.ParseJWS(string(body))
	if err != nil || jws.Header.Alg != "ES256" || !jws.Chain[0].Equal(cert) {
		t.Fatalf("sent %q: %v", body, err)
	}
	if !strings.Contains(out, "token hash: "+token.DocumentHash(string(body))+" (matches") || !strings.Contains(out, "signer: CN=policy signer ("+token.Thumbprint(cert)+")") {
		t.Errorf("signed set output %q", out)
	}
	code, out, stderr = runAdmin(t, env, "", append([]string{"policy", "get", "--json"}, common...)...)
	var doc map[string]any
	if code != ExitOK || json.Unmarshal([]byte(out), &doc) != nil || doc["signer"] != "CN=policy signer" || doc["signerThumbprint"] != token.Thumbprint(cert) {
		t.Errorf("get --json: exit %d, %s, %s", code, out, stderr)
	}
	code, out, stderr = runAdmin(t, env, "", append([]string{"policy", "reset", "--sign-key", keyPath, "--sign-cert", certPath}, common...)...)
	if code != ExitOK || !strings.HasPrefix(out, "policy SgxEnclave: Removed\nsigner: CN=policy signer") {
		t.Errorf("signed reset: exit %d, %q, %s", code, out, stderr)
	}
}
