package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is the tests' "now".
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Keys are costly to make (RSA above all, under -race), so the tests share
// a few, made once.
var (
	rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
		keys := make([]*rsa.PrivateKey, 3)
		for i := range keys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[i] = k
		}
		return keys
	})
	ecKeys = sync.OnceValue(func() map[string]*ecdsa.PrivateKey {
		m := map[string]*ecdsa.PrivateKey{}
		for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-256b": elliptic.P256()} {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			m[name] = k
		}
		return m
	})
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// publicJWK returns the JWK of key's public half.
func publicJWK(key crypto.Signer, kid string, extra map[string]any) map[string]any {
	m := map[string]any{}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(k.N.Bytes())
		m["e"] = b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		size := (len(raw) - 1) / 2
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		m["x"] = b64(raw[1 : 1+size])
		m["y"] = b64(raw[1+size:])
	}
	if kid != "" {
		m["kid"] = kid
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// signJWS makes a compact JWS from raw header and payload JSON. key is a
// crypto.Signer for RS*, PS*, ES*, a []byte secret for HS*, nil for none.
func signJWS(t testing.TB, header, payload []byte, alg string, key any) string {
	t.Helper()
	input := b64(header) + "." + b64(payload)
	var sig []byte
	var err error
	hashOf := func(h crypto.Hash) []byte {
		switch h {
		case crypto.SHA384:
			d := sha512.Sum384([]byte(input))
			return d[:]
		case crypto.SHA512:
			d := sha512.Sum512([]byte(input))
			return d[:]
		}
		d := sha256.Sum256([]byte(input))
		return d[:]
	}
	hashFor := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	h := hashFor[alg[len(alg)-3:]]
	switch {
	case alg == "none":
	case strings.HasPrefix(alg, "HS"):
		mac := hmac.New(sha256.New, key.([]byte))
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	case strings.HasPrefix(alg, "RS"):
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), h, hashOf(h))
	case strings.HasPrefix(alg, "PS"):
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), h, hashOf(h), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case strings.HasPrefix(alg, "ES"):
		k := key.(*ecdsa.PrivateKey)
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k, hashOf(h))
		if err == nil {
			size := (k.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	default:
		t.Fatalf("signJWS: alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// idp is a fake OpenID provider on a loopback httptest server.
type idp struct {
	srv        *httptest.Server
	issuer     string // what discovery says; srv.URL unless changed
	discovered atomic.Int32
	fetched    atomic.Int32

	mu   sync.Mutex
	keys []map[string]any
	down bool
	gate chan struct{} // when set, key set requests wait for it to close
	// jwksURI overrides the discovery document's jwks_uri.
	jwksURI string
}

func newIDP(t testing.TB, keys ...map[string]any) *idp {
	p := &idp{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discovered.Add(1)
		p.mu.Lock()
		down, iss, uri := p.down, p.issuer, p.jwksURI
		p.mu.Unlock()
		if down {
			panic(http.ErrAbortHandler) // drop the connection
		}
		if uri == "" {
			uri = p.srv.URL + "/keys"
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(mustJSON(map[string]any{"issuer": iss, "jwks_uri": uri, "id_token_signing_alg_values_supported": []string{"RS256"}}))
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		p.fetched.Add(1)
		p.mu.Lock()
		down, gate, keys := p.down, p.gate, p.keys
		p.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if down {
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(mustJSON(map[string]any{"keys": keys}))
	})
	p.srv = httptest.NewServer(mux)
	p.issuer = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setKeys(keys ...map[string]any) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func (p *idp) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

const testAudience = "api://attestd"

var testRoleMap = map[string]Role{
	"Attestation.Attester":    RoleAttester,
	"Attestation.Reader":      RoleReader,
	"Attestation.Contributor": RoleContributor,
}

// oidcEnv is an Authenticator wired to a fake provider publishing
// rsaKeys()[0] as "rsa-1" and the P-256 key as "ec-1".
type oidcEnv struct {
	idp   *idp
	auth  *Authenticator
	clock *fakeClock
	logs  *bytes.Buffer
}

func newOIDCEnv(t testing.TB, mod func(*OIDCConfig)) *oidcEnv {
	t.Helper()
	p := newIDP(t,
		publicJWK(rsaKeys()[0], "rsa-1", map[string]any{"use": "sig", "alg": "RS256"}),
		publicJWK(ecKeys()["P-256"], "ec-1", nil),
	)
	e := &oidcEnv{idp: p, clock: newClock(), logs: &bytes.Buffer{}}
	cfg := OIDCConfig{
		Issuer:   p.srv.URL,
		Audience: testAudience,
		RoleMap:  testRoleMap,
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(Config{OIDC: &cfg, Clock: e.clock.Now, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	e.auth = a
	return e
}

// lockedWriter serialises writes from the fetch goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// claims returns a valid claims set for the env's provider.
func (e *oidcEnv) claims(roles ...string) map[string]any {
	now := e.clock.Now().Unix()
	c := map[string]any{
		"iss": e.idp.srv.URL,
		"aud": testAudience,
		"sub": "user-1",
		"iat": now - 60,
		"nbf": now - 60,
		"exp": now + 3600,
	}
	if len(roles) > 0 {
		c["roles"] = roles
	} else {
		c["roles"] = []string{"Attestation.Contributor"}
	}
	return c
}

// token signs claims with the env's RSA key "rsa-1".
func (e *oidcEnv) token(t testing.TB, claims map[string]any) string {
	t.Helper()
	return signJWS(t, mustJSON(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}), mustJSON(claims), "RS256", rsaKeys()[0])
}

func (e *oidcEnv) authenticate(tok string) (*Principal, error) {
	return e.auth.Authenticate(context.Background(), "Bearer "+tok)
}

// wantReason fails unless err is an *Error with the reason and status.
func wantReason(t testing.TB, err error, reason string, status int) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error %s", err, err, reason)
	}
	if e.Reason != reason || e.Status != status {
		t.Fatalf("error %v: reason %s status %d, want %s %d", err, e.Reason, e.Status, reason, status)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
