package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// base is the fake "now" of the self-made issuer tests. The test
// certificates are valid for a year around it.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testKey is a signing key with a self-signed certificate, like MAA's.
type testKey struct {
	kid  string
	priv crypto.Signer
	der  []byte // certificate
}

var (
	keysOnce sync.Once
	keyPool  map[string]*testKey
)

// keys returns test keys by name, generated once per test binary: RSA key
// generation is slow under the race detector.
func keys(t testing.TB) map[string]*testKey {
	t.Helper()
	keysOnce.Do(func() {
		keyPool = map[string]*testKey{}
		mk := func(name string, priv crypto.Signer, notBefore, notAfter time.Time) {
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(int64(len(keyPool) + 1)),
				Subject:      pkix.Name{CommonName: "attestd test " + name},
				NotBefore:    notBefore,
				NotAfter:     notAfter,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
			if err != nil {
				panic(err)
			}
			keyPool[name] = &testKey{kid: "kid-" + name, priv: priv, der: der}
		}
		rsaKey := func(bits int) *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			return k
		}
		ecKey := func(c elliptic.Curve) *ecdsa.PrivateKey {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			return k
		}
		_, edPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		from, to := base.AddDate(-1, 0, 0), base.AddDate(1, 0, 0)
		mk("rsa", rsaKey(2048), from, to)
		mk("rsa2", rsaKey(2048), from, to)
		mk("rotated", rsaKey(2048), from, to)
		mk("attacker", rsaKey(2048), from, to)
		mk("expiredcert", rsaKey(2048), from, base.Add(-time.Hour))
		mk("futurecert", rsaKey(2048), base.Add(time.Hour), to)
		// crypto/rsa refuses to generate keys under 1024 bits; 1024 is
		// what MAA publishes beside its real signing key.
		mk("rsa1024", rsaKey(1024), from, to)
		mk("p256", ecKey(elliptic.P256()), from, to)
		mk("p384", ecKey(elliptic.P384()), from, to)
		mk("p521", ecKey(elliptic.P521()), from, to)
		mk("ed25519", edPriv, from, to)
	})
	return keyPool
}

// jwkOf renders a key as MAA does (kid, kty, x5c only) unless members is
// set, which adds n/e or crv/x/y.
func jwkOf(k *testKey, members bool) map[string]any {
	m := map[string]any{"kid": k.kid, "x5c": []string{base64.StdEncoding.EncodeToString(k.der)}}
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		if members {
			m["n"] = b64(pub.N.Bytes())
			m["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
		}
	case *ecdsa.PublicKey:
		m["kty"] = "EC"
		if members {
			x, y := ecXY(pub)
			m["crv"] = pub.Curve.Params().Name
			m["x"], m["y"] = b64(x), b64(y)
		}
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		if members {
			m["crv"] = "Ed25519"
			m["x"] = b64(pub)
		}
	}
	return m
}

// ecXY returns the fixed-size coordinates of an EC public key.
func ecXY(pub *ecdsa.PublicKey) (x, y []byte) {
	b, err := pub.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		panic(err)
	}
	n := (len(b) - 1) / 2
	return b[1 : 1+n], b[1+n:]
}

func jwksOf(entries ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": entries})
	if err != nil {
		panic(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// sign builds a compact JWS over hdr and claims. The signature follows
// hdr["alg"] with priv; for "none" it is empty and for HS256 priv is
// ignored and hmacKey is the secret.
func sign(hdr map[string]any, claims any, priv crypto.Signer, hmacKey []byte) string {
	payload, ok := claims.([]byte)
	if !ok {
		payload = mustJSON(claims)
	}
	input := b64(mustJSON(hdr)) + "." + b64(payload)
	alg, _ := hdr["alg"].(string)
	var sig []byte
	var err error
	sum := func(h crypto.Hash) []byte {
		w := h.New()
		w.Write([]byte(input))
		return w.Sum(nil)
	}
	switch alg {
	case "none":
	case "HS256":
		m := hmac.New(sha256.New, hmacKey)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case "RS256", "RS384", "RS512":
		h := map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512}[alg]
		sig, err = rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), h, sum(h))
	case "PS256", "PS384", "PS512":
		h := map[string]crypto.Hash{"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512}[alg]
		sig, err = rsa.SignPSS(rand.Reader, priv.(*rsa.PrivateKey), h, sum(h), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES256", "ES384", "ES512":
		h, size := crypto.SHA256, 32
		switch alg {
		case "ES384":
			h, size = crypto.SHA384, 48
		case "ES512":
			h, size = crypto.SHA512, 66
		}
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, priv.(*ecdsa.PrivateKey), sum(h))
		if err == nil {
			sig = append(r.FillBytes(make([]byte, size)), s.FillBytes(make([]byte, size))...)
		}
	case "EdDSA":
		sig = ed25519.Sign(priv.(ed25519.PrivateKey), []byte(input))
	default:
		panic("sign: alg " + alg)
	}
	if err != nil {
		panic(err)
	}
	return input + "." + b64(sig)
}

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// issuer is a self-made attestation service: an httptest TLS server that
// serves OpenID metadata and a key set, counting requests.
type issuer struct {
	srv *httptest.Server
	url string

	mu         sync.Mutex
	jwks       []byte
	metaIssuer *string // overrides the metadata's issuer member
	jwksURI    string  // overrides the metadata's jwks_uri
	jwksStatus int
	jwksBlock  chan struct{} // when set, key set requests wait for it

	metaHits, jwksHits atomic.Int32
}

func newIssuer(t testing.TB, published ...*testKey) *issuer {
	t.Helper()
	return startIssuer(t, true, published...)
}

// newPlainIssuer is newIssuer over plain http, like a development attestd.
func newPlainIssuer(t testing.TB, published ...*testKey) *issuer {
	t.Helper()
	return startIssuer(t, false, published...)
}

func startIssuer(t testing.TB, useTLS bool, published ...*testKey) *issuer {
	t.Helper()
	is := &issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.metaHits.Add(1)
		is.mu.Lock()
		meta := map[string]any{
			"issuer":                                is.url,
			"jwks_uri":                              is.url + "/certs",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"token", "none"},
		}
		if is.metaIssuer != nil {
			meta["issuer"] = *is.metaIssuer
		}
		if is.jwksURI != "" {
			meta["jwks_uri"] = is.jwksURI
		}
		is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(mustJSON(meta))
	})
	mux.HandleFunc("GET /certs", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		is.mu.Lock()
		body, status, block := is.jwks, is.jwksStatus, is.jwksBlock
		is.mu.Unlock()
		if block != nil {
			<-block
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body)
	})
	if useTLS {
		is.srv = httptest.NewTLSServer(mux)
	} else {
		is.srv = httptest.NewServer(mux)
	}
	t.Cleanup(is.srv.Close)
	is.url = is.srv.URL
	is.publish(published...)
	return is
}

// publish replaces the served key set with MAA-style entries for keys.
func (is *issuer) publish(keys ...*testKey) {
	var entries []map[string]any
	for _, k := range keys {
		entries = append(entries, jwkOf(k, false))
	}
	is.setJWKS(jwksOf(entries...))
}

func (is *issuer) setJWKS(b []byte) {
	is.mu.Lock()
	is.jwks = b
	is.mu.Unlock()
}

// claims returns MAA-like attestation claims issued at now.
func (is *issuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":                    is.url,
		"iat":                    now.Unix(),
		"nbf":                    now.Unix(),
		"exp":                    now.Add(8 * time.Hour).Unix(),
		"jti":                    fmt.Sprintf("%064x", now.UnixNano()),
		"x-ms-ver":               "1.0",
		"x-ms-attestation-type":  "sgx",
		"x-ms-sgx-mrenclave":     "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2",
		"x-ms-sgx-product-id":    1,
		"x-ms-sgx-svn":           1,
		"x-ms-sgx-is-debuggable": false,
	}
}

// header returns an MAA-like header for k.
func (is *issuer) header(k *testKey) map[string]any {
	return map[string]any{"alg": "RS256", "jku": is.url + "/certs", "kid": k.kid, "typ": "JWT"}
}

// token is an MAA-like RS256 token from this issuer, signed by k at now.
func (is *issuer) token(k *testKey, now time.Time) string {
	return sign(is.header(k), is.claims(now), k.priv, nil)
}
