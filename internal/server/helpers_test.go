package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/policies"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/internal/testvectors"
	"github.com/attestd/attestd/simulator"
	"github.com/attestd/attestd/token"
)

// simNow is when the test simulator issues collateral; the service's clock
// is a day later, inside the validity window.
var simNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type staticKeys struct {
	mu   sync.Mutex
	keys []*token.Key
}

func (s *staticKeys) ActiveKey() (*token.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[0], nil
}

func (s *staticKeys) Published() []*token.Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*token.Key(nil), s.keys...)
}

type testEnv struct {
	t      testing.TB
	srv    *httptest.Server
	sim    *simulator.Simulator
	keys   *staticKeys
	issuer string
}

// envOptions configure a test server.
type envOptions struct {
	clock      time.Time
	collateral []string // paths relative to the vectors dir
	noDev      bool
	// policies, when set, is the policy store: the service's evaluator
	// and the management routes' backend.
	policies   *policies.Manager
	auth       Authorizer
	attestAuth bool
}

// sharedKey is generated once: RSA key generation dominates otherwise.
var sharedDevKey = sync.OnceValue(func() *token.Key {
	k, err := token.GenerateKey(nil, "https://attestd.test", simNow)
	if err != nil {
		panic(err)
	}
	return k
})

var sharedKey = sync.OnceValue(func() *token.Key {
	k, err := token.GenerateKey(nil, "https://attestd.test", simNow)
	if err != nil {
		panic(err)
	}
	return k
})

func newEnv(t testing.TB, o envOptions) *testEnv {
	t.Helper()
	if o.clock.IsZero() {
		o.clock = simNow.Add(24 * time.Hour)
	}
	clock := func() time.Time { return o.clock }
	sim, err := simulator.New(simulator.Options{Now: simNow})
	if err != nil {
		t.Fatal(err)
	}
	var col service.CollateralSource = &service.FileCollateral{}
	if len(o.collateral) > 0 {
		dir := testvectors.Dir(t)
		var paths []string
		for _, p := range o.collateral {
			paths = append(paths, filepath.Join(dir, p))
		}
		fc, err := service.LoadCollateralFiles(paths)
		if err != nil {
			t.Fatal(err)
		}
		col = fc
	}
	keys := &staticKeys{keys: []*token.Key{sharedKey(), sharedDevKey()}}
	cfg := service.Config{Issuer: "https://attestd.test", Clock: clock, Keys: keys, Collateral: col}
	if !o.noDev {
		// The dev collateral is issued at simNow, like the quotes' PCK
		// certificates.
		cfg.Dev = &service.DevMode{Root: sim.Root(), Collateral: service.NewSimulatorCollateral("", func() time.Time { return simNow }),
			Keys: &staticKeys{keys: []*token.Key{sharedDevKey()}}}
	}
	metrics := NewMetrics()
	cfg.Observer = metrics
	if o.policies != nil {
		cfg.Policies = o.policies
	}
	svc, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg := Config{Service: svc, Keys: keys, Metrics: metrics, Auth: o.auth, AttestRequiresAuth: o.attestAuth}
	if o.policies != nil {
		scfg.Policies, scfg.Signer = o.policies, svc
	}
	s, err := New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &testEnv{t: t, srv: hs, sim: sim, keys: keys, issuer: "https://attestd.test"}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *testEnv) do(method, path, contentType string, body []byte) response {
	e.t.Helper()
	return e.doAuth(method, path, contentType, "", body)
}

// doAuth is do with an Authorization header (none when authorization is
// empty).
func (e *testEnv) doAuth(method, path, contentType, authorization string, body []byte) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *testEnv) attest(typ string, body any) response {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do("POST", "/attest/"+typ+"?api-version=2022-08-01", "application/json", b)
}

func (e *testEnv) quote(o simulator.QuoteOptions) []byte {
	e.t.Helper()
	q, err := e.sim.Quote(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

type maaError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// wantError checks a refusal: the status, MAA's error shape, the code and
// attestd's reason.
func wantError(t *testing.T, r response, status int, code, reason string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var e maaError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", r.body)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("error code %q (message %q), want %q", e.Error.Code, e.Error.Message, code)
	}
	if e.Error.InnerError == nil || e.Error.InnerError.Code != reason {
		t.Errorf("reason %+v, want %q; body %s", e.Error.InnerError, reason, r.body)
	}
}

// tokenOf checks a 200 attestation response and returns the verified
// header and claims of its token, verified against the server's /certs.
func (e *testEnv) tokenOf(r response) (map[string]any, map[string]any) {
	e.t.Helper()
	if r.status != http.StatusOK {
		e.t.Fatalf("status %d: %s", r.status, r.body)
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Token == "" {
		e.t.Fatalf("no token in %s", r.body)
	}
	return e.verifyToken(body.Token)
}

func (e *testEnv) verifyToken(tok string) (map[string]any, map[string]any) {
	e.t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		e.t.Fatalf("token has %d parts", len(parts))
	}
	var header, claims map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(hb, &header); err != nil {
		e.t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(cb))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		e.t.Fatal(err)
	}
	if header["alg"] == "none" {
		return header, claims
	}
	r := e.do("GET", "/certs", "", nil)
	var set token.JWKS
	if err := json.Unmarshal(r.body, &set); err != nil {
		e.t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.KID != header["kid"] {
			continue
		}
		der, _ := base64.StdEncoding.DecodeString(k.X5C[0])
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			e.t.Fatal(err)
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
			e.t.Fatalf("token signature: %v", err)
		}
		return header, claims
	}
	e.t.Fatalf("kid %v not in /certs", header["kid"])
	return nil, nil
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func stdNoPad(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }
