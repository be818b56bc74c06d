package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
)

// captured is one request as the server saw it.
type captured struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

// server is an httptest server that records requests and answers each
// with the next canned response.
type server struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []captured
	status int
	body   string
	header map[string]string
}

func newServer(t *testing.T, tls bool) *server {
	t.Helper()
	s := &server{status: 200, body: `{"token":"h.p.s"}`}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, captured{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b})
		status, body, hdr := s.status, s.body, s.header
		s.mu.Unlock()
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	if tls {
		s.srv = httptest.NewTLSServer(h)
	} else {
		s.srv = httptest.NewServer(h)
	}
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) last(t *testing.T) captured {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("no request")
	}
	return s.reqs[len(s.reqs)-1]
}

func newClient(t *testing.T, s *server, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(s.srv.URL, append([]client.Option{client.WithHTTPClient(s.srv.Client())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The request bodies, byte for byte: MAA's field names, base64url without
// padding, dataType, report for Open Enclave, api-version in the query.
func TestAttestRequest(t *testing.T) {
	s := newServer(t, true)
	c := newClient(t, s)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		typ       client.AttestationType
		req       client.AttestRequest
		wantPath  string
		wantBody  string
		wantQuery string
	}{
		{
			name:      "SGX quote, binary runtime data",
			typ:       client.SGX,
			req:       client.AttestRequest{Evidence: []byte{1, 2, 3, 4, 5}, RuntimeData: &client.Data{Bytes: []byte("hello")}},
			wantPath:  "/attest/SgxEnclave",
			wantBody:  `{"quote":"AQIDBAU","runtimeData":{"data":"aGVsbG8","dataType":"Binary"}}`,
			wantQuery: "api-version=2022-08-01",
		},
		{
			name: "Open Enclave report, JSON runtime data, init-time data, nonce, draft policy",
			typ:  client.OpenEnclave,
			req: client.AttestRequest{
				Evidence:     []byte{0xfb, 0xff, 0xfe},
				RuntimeData:  &client.Data{Bytes: []byte(`{"jwk":{"kty":"EC"}}`), JSON: true},
				InitTimeData: &client.Data{Bytes: []byte{0xff, 0xef}},
				Nonce:        "n-123",
				DraftPolicy:  "version=1.0; authorizationrules{=> permit();};",
			},
			wantPath:  "/attest/OpenEnclave",
			wantBody:  `{"report":"-__-","runtimeData":{"data":"eyJqd2siOnsia3R5IjoiRUMifX0","dataType":"JSON"},"initTimeData":{"data":"_-8","dataType":"Binary"},"draftPolicyForAttestation":"version=1.0; authorizationrules{=\u003e permit();};","nonce":"n-123"}`,
			wantQuery: "api-version=2022-08-01",
		},
		{
			name:      "TDX quote, nothing else",
			typ:       client.TDX,
			req:       client.AttestRequest{Evidence: []byte("q")},
			wantPath:  "/attest/TdxVm",
			wantBody:  `{"quote":"cQ"}`,
			wantQuery: "api-version=2022-08-01",
		},
		{
			name:      "empty runtime data is still sent",
			typ:       client.SGX,
			req:       client.AttestRequest{Evidence: []byte("q"), RuntimeData: &client.Data{}},
			wantPath:  "/attest/SgxEnclave",
			wantBody:  `{"quote":"cQ","runtimeData":{"data":"","dataType":"Binary"}}`,
			wantQuery: "api-version=2022-08-01",
		},
	} {
		tok, err := c.Attest(ctx, tc.typ, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tok != "h.p.s" {
			t.Errorf("%s: token %q", tc.name, tok)
		}
		r := s.last(t)
		if r.method != "POST" || r.path != tc.wantPath || r.rawQuery != tc.wantQuery {
			t.Errorf("%s: %s %s?%s", tc.name, r.method, r.path, r.rawQuery)
		}
		if string(r.body) != tc.wantBody {
			t.Errorf("%s: body\n got %s\nwant %s", tc.name, r.body, tc.wantBody)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tc.name, ct)
		}
		if a := r.header.Get("Authorization"); a != "" {
			t.Errorf("%s: unexpected Authorization %q", tc.name, a)
		}
	}

	// Another api-version, and a bearer token.
	c2 := newClient(t, s, client.WithAPIVersion("2020-10-01"), client.WithBearerToken("tok123"))
	if _, err := c2.Attest(ctx, client.SGX, client.AttestRequest{Evidence: []byte("q")}); err != nil {
		t.Fatal(err)
	}
	r := s.last(t)
	if r.rawQuery != "api-version=2020-10-01" || r.header.Get("Authorization") != "Bearer tok123" {
		t.Errorf("query %q, Authorization %q", r.rawQuery, r.header.Get("Authorization"))
	}
}

func TestAttestClientSideErrors(t *testing.T) {
	s := newServer(t, true)
	c := newClient(t, s)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		typ client.AttestationType
		req client.AttestRequest
	}{
		"empty evidence":    {client.SGX, client.AttestRequest{}},
		"empty type":        {"", client.AttestRequest{Evidence: []byte("q")}},
		"invalid JSON data": {client.SGX, client.AttestRequest{Evidence: []byte("q"), RuntimeData: &client.Data{Bytes: []byte("{"), JSON: true}}},
		"invalid JSON init": {client.SGX, client.AttestRequest{Evidence: []byte("q"), InitTimeData: &client.Data{Bytes: []byte("nope"), JSON: true}}},
	} {
		if _, err := c.Attest(ctx, tc.typ, tc.req); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s.mu.Lock()
	n := len(s.reqs)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}
}

// Service errors become *APIError, with MAA's code and message when the
// body is MAA's error shape.
func TestAPIErrors(t *testing.T) {
	s := newServer(t, true)
	c := newClient(t, s)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		header map[string]string
		want   client.APIError
	}{
		{"MAA error", 400, `{"error":{"code":"InvalidParameter","message":"Quote is invalid"}}`, map[string]string{"x-ms-request-id": "00-abc-def-00"},
			client.APIError{StatusCode: 400, Code: "InvalidParameter", Message: "Quote is invalid", RequestID: "00-abc-def-00"}},
		{"innererror only", 400, `{"error":{"code":"InvalidQuote","innererror":{"code":"InvalidQuote","message":"oe_verify_evidence failed"}}}`, nil,
			client.APIError{StatusCode: 400, Code: "InvalidQuote", Message: "oe_verify_evidence failed", Reason: "InvalidQuote"}},
		{"attestd reason", 400, `{"error":{"code":"InvalidOperation","message":"the policy must be signed","innererror":{"code":"policy_unsigned"}}}`, nil,
			client.APIError{StatusCode: 400, Code: "InvalidOperation", Message: "the policy must be signed", Reason: "policy_unsigned"}},
		{"policy evaluation", 400, `{"error":{"code":"PolicyEvaluationError","message":"A Deny claim was issued"}}`, nil,
			client.APIError{StatusCode: 400, Code: "PolicyEvaluationError", Message: "A Deny claim was issued"}},
		{"401 empty body", 401, ``, nil, client.APIError{StatusCode: 401, Message: "Unauthorized"}},
		{"HTML from a proxy", 502, "<html>\n<body>Bad\tGateway</body>\n</html>", nil, client.APIError{StatusCode: 502, Message: "<html> <body>Bad Gateway</body> </html>"}},
		{"JSON without error member", 500, `{"message":"boom"}`, nil, client.APIError{StatusCode: 500, Message: `{"message":"boom"}`}},
		{"long body", 500, strings.Repeat("x", 5000), nil, client.APIError{StatusCode: 500, Message: strings.Repeat("x", 200) + "…"}},
		{"binary body", 500, "\x00\x01ok\xff", nil, client.APIError{StatusCode: 500, Message: "??ok?"}},
	} {
		s.mu.Lock()
		s.status, s.body, s.header = tc.status, tc.body, tc.header
		s.mu.Unlock()
		_, err := c.Attest(ctx, client.SGX, client.AttestRequest{Evidence: []byte("q")})
		var ae *client.APIError
		if !errors.As(err, &ae) {
			t.Errorf("%s: %v is not an *APIError", tc.name, err)
			continue
		}
		if *ae != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, *ae, tc.want)
		}
		if !strings.Contains(err.Error(), "HTTP ") {
			t.Errorf("%s: error text %q", tc.name, err)
		}
	}

	// A 200 without a token, or with a body that is not JSON, is an error
	// but not an APIError.
	for _, body := range []string{`{}`, `{"token":""}`, `not json`, `{"token":5}`} {
		s.mu.Lock()
		s.status, s.body, s.header = 200, body, nil
		s.mu.Unlock()
		_, err := c.Attest(ctx, client.SGX, client.AttestRequest{Evidence: []byte("q")})
		var ae *client.APIError
		if err == nil || errors.As(err, &ae) {
			t.Errorf("200 %s: %v", body, err)
		}
	}

	// Oversize bodies are refused.
	s.mu.Lock()
	s.status, s.body = 200, `{"token":"`+strings.Repeat("a", client.MaxResponseSize)+`"}`
	s.mu.Unlock()
	if _, err := c.Attest(ctx, client.SGX, client.AttestRequest{Evidence: []byte("q")}); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversize: %v", err)
	}
}

func TestMetadataAndCerts(t *testing.T) {
	s := newServer(t, true)
	c := newClient(t, s, client.WithAPIVersion("2020-10-01"))
	ctx := context.Background()
	meta := `{"response_types_supported":["token","none"],"id_token_signing_alg_values_supported":["RS256"],"revocation_endpoint":"https://x/revoke","issuer":"https://x","jwks_uri":"https://x/certs","claims_supported":["cnf","nonce"]}`
	s.body = meta
	m, err := c.OpenIDMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := s.last(t)
	if r.method != "GET" || r.path != "/.well-known/openid-configuration" || r.rawQuery != "" {
		t.Errorf("request %s %s?%s", r.method, r.path, r.rawQuery)
	}
	if m.Issuer != "https://x" || m.JWKSURI != "https://x/certs" || m.RevocationEndpoint != "https://x/revoke" ||
		len(m.ClaimsSupported) != 2 || m.IDTokenSigningAlgValuesSupported[0] != "RS256" || m.ResponseTypesSupported[1] != "none" {
		t.Errorf("metadata %+v", m)
	}

	jwks := `{"keys":[{"x5c":["MIIB"],"kid":"rPtBGRWTlPmzs5u35L0QRD9WdymeKPRxteTeTlwN0Ec=","kty":"RSA"},{"kid":"b","kty":"EC","crv":"P-256","x":"xx","y":"yy"}]}`
	s.mu.Lock()
	s.body = jwks
	s.mu.Unlock()
	ks, err := c.SigningCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r = s.last(t)
	if r.path != "/certs" || r.rawQuery != "" || !strings.Contains(r.header.Get("Accept"), "application/json") {
		t.Errorf("request %s?%s Accept %q", r.path, r.rawQuery, r.header.Get("Accept"))
	}
	if len(ks.Keys) != 2 || ks.Keys[0].Kid != "rPtBGRWTlPmzs5u35L0QRD9WdymeKPRxteTeTlwN0Ec=" || ks.Keys[0].X5C[0] != "MIIB" || ks.Keys[1].Crv != "P-256" {
		t.Errorf("keys %+v", ks.Keys)
	}
	if string(ks.Raw) != jwks {
		t.Errorf("Raw %s", ks.Raw)
	}
	s.mu.Lock()
	s.body = `{"nokeys":1}`
	s.mu.Unlock()
	if _, err := c.SigningCertificates(ctx); err == nil {
		t.Error("key set without keys accepted")
	}
	s.mu.Lock()
	s.status, s.body = 404, `{"error":{"code":"NotFound","message":"no"}}`
	s.mu.Unlock()
	var ae *client.APIError
	if _, err := c.OpenIDMetadata(ctx); !errors.As(err, &ae) || ae.Code != "NotFound" {
		t.Errorf("metadata 404: %v", err)
	}
}

// The MAA-like base URL may carry a path prefix and a trailing slash.
func TestBaseURL(t *testing.T) {
	s := newServer(t, false)
	c, err := client.New(s.srv.URL+"/tenant/", client.WithBearerToken("t"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attest(context.Background(), client.SGX, client.AttestRequest{Evidence: []byte("q")}); err != nil {
		t.Fatal(err)
	}
	if p := s.last(t).path; p != "/tenant/attest/SgxEnclave" {
		t.Errorf("path %q", p)
	}
	// An odd type name is escaped into one path segment.
	if _, err := c.Attest(context.Background(), "a/b?c", client.AttestRequest{Evidence: []byte("q")}); err != nil {
		t.Fatal(err)
	}
	if r := s.last(t); r.path != "/tenant/attest/a%2Fb%3Fc" || r.rawQuery != "api-version=2022-08-01" {
		t.Errorf("path %q query %q", r.path, r.rawQuery)
	}

	for _, bad := range []string{"", "example.com", "ftp://x", "https://x?y=1", "https://u:p@x", "https://"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	// Bearer tokens do not go over plain http to another host.
	if _, err := client.New("http://attest.example.com", client.WithBearerToken("t")); err == nil {
		t.Error("bearer over http accepted")
	}
	for _, ok := range []string{"http://localhost:8080", "http://[::1]:1", "https://attest.example.com"} {
		if _, err := client.New(ok, client.WithBearerToken("t")); err != nil {
			t.Errorf("New(%q) with bearer: %v", ok, err)
		}
	}
	for name, o := range map[string]client.Option{
		"nil client":      client.WithHTTPClient(nil),
		"empty version":   client.WithAPIVersion(""),
		"empty bearer":    client.WithBearerToken(""),
		"multi-line auth": client.WithBearerToken("a\r\nX-Evil: 1"),
	} {
		if _, err := client.New("https://x", o); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestContextCanceled(t *testing.T) {
	s := newServer(t, true)
	c := newClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Attest(ctx, client.SGX, client.AttestRequest{Evidence: []byte("q")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled in the chain", err)
	}
}

// NewHTTPClientWithCA trusts exactly the given CA: the httptest server's
// certificate works, and the system roots are not used.
func TestNewHTTPClientWithCA(t *testing.T) {
	s := newServer(t, true)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	hc, err := client.NewHTTPClientWithCA(append([]byte("# test CA\n"), caPEM...))
	if err != nil {
		t.Fatal(err)
	}
	if hc.Timeout <= 0 || hc.Timeout > 5*time.Minute {
		t.Errorf("timeout %s", hc.Timeout)
	}
	c, err := client.New(s.srv.URL, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attest(context.Background(), client.SGX, client.AttestRequest{Evidence: []byte("q")}); err != nil {
		t.Fatalf("with the server's CA: %v", err)
	}

	// A client trusting some other CA does not reach the server.
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mustOtherCA(t)})
	hc2, err := client.NewHTTPClientWithCA(otherPEM)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := client.New(s.srv.URL, client.WithHTTPClient(hc2))
	if _, err := c2.Attest(context.Background(), client.SGX, client.AttestRequest{Evidence: []byte("q")}); err == nil {
		t.Fatal("a client trusting another CA reached the server")
	}
	// The default client does not trust the test CA either.
	c3, _ := client.New(s.srv.URL)
	if _, err := c3.OpenIDMetadata(context.Background()); err == nil {
		t.Fatal("the default client trusted the test CA")
	}

	for name, bad := range map[string][]byte{
		"empty":    nil,
		"no certs": []byte("hello"),
		"key only": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}),
		"bad cert": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}),
	} {
		if _, err := client.NewHTTPClientWithCA(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The typed key set round-trips MAA's recorded shape.
func TestKeySetJSON(t *testing.T) {
	var ks client.KeySet
	in := `{"keys":[{"kid":"a","kty":"RSA","x5c":["AA=="]}]}`
	if err := json.Unmarshal([]byte(in), &ks); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(ks)
	if string(out) != in {
		t.Errorf("round trip %s", out)
	}
}

// mustOtherCA returns a self-signed CA certificate unrelated to httptest's.
func mustOtherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "other test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
