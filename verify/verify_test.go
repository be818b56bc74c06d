package verify_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/verify"
)

// newVerifier builds a discovery verifier for is with a fake clock at base.
func newVerifier(t *testing.T, is *issuer, clk *fakeClock, opts ...verify.Option) *verify.Verifier {
	t.Helper()
	all := append([]verify.Option{verify.WithHTTPClient(is.srv.Client()), verify.WithClock(clk.now)}, opts...)
	v, err := verify.New(is.url, all...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantCode(t *testing.T, name string, err error, want verify.Code) {
	t.Helper()
	if got := verify.CodeOf(err); got != want {
		t.Errorf("%s: got %v, want code %s", name, err, want)
		return
	}
	var ve *verify.Error
	if !errors.As(err, &ve) || ve.Message == "" {
		t.Errorf("%s: %v is not a *verify.Error with a message", name, err)
	}
}

func TestVerifyValid(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"], k["rsa2"])
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk)
	tok := is.token(k["rsa"], base)
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Raw != tok || got.Header.Kid != "kid-rsa" || got.Header.Alg != "RS256" || got.Header.Typ != "JWT" || got.Header.JKU != is.url+"/certs" {
		t.Errorf("token %+v", got.Header)
	}
	if got.Claims["x-ms-sgx-product-id"] != float64(1) || got.Claims["iss"] != is.url {
		t.Errorf("claims %v", got.Claims)
	}
	// The second key of the set verifies too, from the cache.
	if _, err := v.Verify(context.Background(), is.token(k["rsa2"], base)); err != nil {
		t.Fatal(err)
	}
	if m, j := is.metaHits.Load(), is.jwksHits.Load(); m != 1 || j != 1 {
		t.Errorf("metadata fetched %d times, key set %d times; want 1 and 1", m, j)
	}
	if v.Issuer() != is.url {
		t.Errorf("Issuer() = %q", v.Issuer())
	}
}

// Every rejection of a token from the self-made issuer, by code.
func TestVerifyRejections(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"], k["p256"], k["rsa1024"], k["expiredcert"], k["futurecert"])
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk)
	rsaPub := k["rsa"].priv.Public().(*rsa.PublicKey)
	good := is.token(k["rsa"], base)
	parts := strings.Split(good, ".")

	claims := func(mod func(map[string]any)) map[string]any {
		c := is.claims(base)
		mod(c)
		return c
	}
	hdr := func(mod func(map[string]any)) map[string]any {
		h := is.header(k["rsa"])
		mod(h)
		return h
	}
	attacker := k["attacker"]
	attackerJWK := jwkOf(attacker, true)
	pkixDER, _ := x509.MarshalPKIXPublicKey(rsaPub)

	cases := []struct {
		name string
		tok  string
		want verify.Code
	}{
		{"tampered payload", parts[0] + "." + b64(mustJSON(claims(func(c map[string]any) { c["x-ms-sgx-svn"] = 2 }))) + "." + parts[2], verify.CodeBadSignature},
		{"tampered header", b64(mustJSON(hdr(func(h map[string]any) { h["typ"] = "jwt" }))) + "." + parts[1] + "." + parts[2], verify.CodeBadSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(is.token(k["rsa"], base.Add(time.Second)), ".")[2], verify.CodeBadSignature},
		{"empty signature", parts[0] + "." + parts[1] + ".", verify.CodeBadSignature},
		{"alg none", sign(hdr(func(h map[string]any) { h["alg"] = "none" }), is.claims(base), nil, nil), verify.CodeUnsupportedAlgorithm},
		{"alg None", sign(hdr(func(h map[string]any) { h["alg"] = "none" }), is.claims(base), nil, nil)[0:0] + b64([]byte(`{"alg":"None","kid":"kid-rsa"}`)) + "." + parts[1] + ".", verify.CodeUnsupportedAlgorithm},
		{"alg none with the real signature", b64([]byte(`{"alg":"none","kid":"kid-rsa"}`)) + "." + parts[1] + "." + parts[2], verify.CodeUnsupportedAlgorithm},
		// The classic key-confusion attack: HMAC keyed with the public key
		// in the encodings a verifier might feed an HMAC.
		{"HS256 keyed with the certificate", sign(hdr(func(h map[string]any) { h["alg"] = "HS256" }), is.claims(base), nil, k["rsa"].der), verify.CodeUnsupportedAlgorithm},
		{"HS256 keyed with the SPKI", sign(hdr(func(h map[string]any) { h["alg"] = "HS256" }), is.claims(base), nil, pkixDER), verify.CodeUnsupportedAlgorithm},
		{"HS256 keyed with the modulus", sign(hdr(func(h map[string]any) { h["alg"] = "HS256" }), is.claims(base), nil, rsaPub.N.Bytes()), verify.CodeUnsupportedAlgorithm},
		{"ES256 not allowed by default", sign(hdr(func(h map[string]any) { h["alg"] = "ES256"; h["kid"] = "kid-p256" }), is.claims(base), k["p256"].priv, nil), verify.CodeUnsupportedAlgorithm},
		{"alg missing", sign(hdr(func(h map[string]any) { h["alg"] = "none" }), is.claims(base), nil, nil)[0:0] + b64([]byte(`{"kid":"kid-rsa"}`)) + "." + parts[1] + "." + parts[2], verify.CodeMalformedToken},
		{"kid unknown", sign(hdr(func(h map[string]any) { h["kid"] = "kid-nope" }), is.claims(base), k["rsa"].priv, nil), verify.CodeUnknownKey},
		{"kid missing", sign(hdr(func(h map[string]any) { delete(h, "kid") }), is.claims(base), k["rsa"].priv, nil), verify.CodeUnknownKey},
		{"kid empty", sign(hdr(func(h map[string]any) { h["kid"] = "" }), is.claims(base), k["rsa"].priv, nil), verify.CodeUnknownKey},
		{"kid not a string", sign(hdr(func(h map[string]any) { h["kid"] = 7 }), is.claims(base), k["rsa"].priv, nil), verify.CodeMalformedToken},
		// Self-vouching tokens: the header carries the attacker's key.
		{"jwk in header, unknown kid", sign(hdr(func(h map[string]any) { h["kid"] = attacker.kid; h["jwk"] = attackerJWK }), is.claims(base), attacker.priv, nil), verify.CodeUnknownKey},
		{"jwk in header, real kid", sign(hdr(func(h map[string]any) { h["jwk"] = attackerJWK }), is.claims(base), attacker.priv, nil), verify.CodeBadSignature},
		{"x5c in header, unknown kid", sign(hdr(func(h map[string]any) { h["kid"] = attacker.kid; h["x5c"] = attackerJWK["x5c"] }), is.claims(base), attacker.priv, nil), verify.CodeUnknownKey},
		{"x5c in header, real kid", sign(hdr(func(h map[string]any) { h["x5c"] = attackerJWK["x5c"] }), is.claims(base), attacker.priv, nil), verify.CodeBadSignature},
		{"x5u in header, real kid", sign(hdr(func(h map[string]any) { h["x5u"] = "https://evil.example/cert.pem" }), is.claims(base), attacker.priv, nil), verify.CodeBadSignature},
		{"jku elsewhere", sign(hdr(func(h map[string]any) { h["jku"] = "https://evil.example/certs" }), is.claims(base), k["rsa"].priv, nil), verify.CodeUntrustedJKU},
		{"jku with trailing slash", sign(hdr(func(h map[string]any) { h["jku"] = is.url + "/certs/" }), is.claims(base), k["rsa"].priv, nil), verify.CodeUntrustedJKU},
		{"jku empty", sign(hdr(func(h map[string]any) { h["jku"] = "" }), is.claims(base), k["rsa"].priv, nil), verify.CodeUntrustedJKU},
		{"jku elsewhere, attacker key", sign(hdr(func(h map[string]any) { h["kid"] = attacker.kid; h["jku"] = "https://evil.example/certs" }), is.claims(base), attacker.priv, nil), verify.CodeUntrustedJKU},
		{"expired", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["exp"] = base.Add(-61 * time.Second).Unix() }), k["rsa"].priv, nil), verify.CodeExpired},
		{"expired float", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["exp"] = float64(base.Unix()) - 60.5 }), k["rsa"].priv, nil), verify.CodeExpired},
		{"exp missing", sign(is.header(k["rsa"]), claims(func(c map[string]any) { delete(c, "exp") }), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"exp a string", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["exp"] = "2030-01-01" }), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"nbf in the future", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["nbf"] = base.Add(61 * time.Second).Unix() }), k["rsa"].priv, nil), verify.CodeNotYetValid},
		{"iat in the future", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["iat"] = base.Add(2 * time.Minute).Unix() }), k["rsa"].priv, nil), verify.CodeNotYetValid},
		{"nbf a bool", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["nbf"] = true }), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"wrong issuer", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["iss"] = "https://sharedwus.wus.attest.azure.net" }), k["rsa"].priv, nil), verify.CodeWrongIssuer},
		{"issuer with slash", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["iss"] = is.url + "/" }), k["rsa"].priv, nil), verify.CodeWrongIssuer},
		{"issuer missing", sign(is.header(k["rsa"]), claims(func(c map[string]any) { delete(c, "iss") }), k["rsa"].priv, nil), verify.CodeWrongIssuer},
		{"issuer not a string", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["iss"] = []string{is.url} }), k["rsa"].priv, nil), verify.CodeWrongIssuer},
		{"simulated", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["x-attestd-simulated"] = true }), k["rsa"].priv, nil), verify.CodeSimulatedEvidence},
		{"simulated as a string", sign(is.header(k["rsa"]), claims(func(c map[string]any) { c["x-attestd-simulated"] = "false" }), k["rsa"].priv, nil), verify.CodeSimulatedEvidence},
		{"key type does not fit alg", sign(hdr(func(h map[string]any) { h["kid"] = "kid-p256" }), is.claims(base), k["rsa"].priv, nil), verify.CodeBadSignature},
		{"RSA-1024 key", sign(hdr(func(h map[string]any) { h["kid"] = "kid-rsa1024" }), is.claims(base), k["rsa1024"].priv, nil), verify.CodeInvalidKey},
		{"certificate expired", sign(hdr(func(h map[string]any) { h["kid"] = "kid-expiredcert" }), is.claims(base), k["expiredcert"].priv, nil), verify.CodeInvalidKey},
		{"certificate not yet valid", sign(hdr(func(h map[string]any) { h["kid"] = "kid-futurecert" }), is.claims(base), k["futurecert"].priv, nil), verify.CodeInvalidKey},
		{"crit header", sign(hdr(func(h map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }), is.claims(base), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"b64 false", sign(hdr(func(h map[string]any) { h["b64"] = false }), is.claims(base), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"duplicate claim", sign(is.header(k["rsa"]), []byte(`{"iss":"`+is.url+`","exp":9999999999,"x-ms-sgx-svn":1,"x-ms-sgx-svn":9}`), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"duplicate header member", b64([]byte(`{"alg":"none","alg":"RS256","kid":"kid-rsa"}`)) + "." + parts[1] + "." + parts[2], verify.CodeMalformedToken},
		{"claims not an object", sign(is.header(k["rsa"]), []byte(`[1,2]`), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"claims null", sign(is.header(k["rsa"]), []byte(`null`), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"trailing data after claims", sign(is.header(k["rsa"]), []byte(`{"iss":"x"} {}`), k["rsa"].priv, nil), verify.CodeMalformedToken},
		{"two parts", parts[0] + "." + parts[1], verify.CodeMalformedToken},
		{"four parts", good + ".x", verify.CodeMalformedToken},
		{"padding", parts[0] + "." + parts[1] + "." + parts[2] + "==", verify.CodeMalformedToken},
		{"newline", parts[0] + "." + parts[1] + "\n." + parts[2], verify.CodeMalformedToken},
		{"standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good), verify.CodeMalformedToken},
		{"empty", "", verify.CodeMalformedToken},
		{"JWE-shaped", "a.b.c.d.e", verify.CodeMalformedToken},
		{"oversize", parts[0] + "." + strings.Repeat("A", verify.MaxTokenSize) + "." + parts[2], verify.CodeMalformedToken},
	}
	for _, c := range cases {
		_, err := v.Verify(context.Background(), c.tok)
		wantCode(t, c.name, err, c.want)
	}
	// None of those needed more than one discovery; the unknown kids
	// triggered at most one refetch (the refresh interval is 30 s and the
	// clock did not move).
	if m, j := is.metaHits.Load(), is.jwksHits.Load(); m != 1 || j != 2 {
		t.Errorf("metadata fetched %d times, key set %d times; want 1 and 2", m, j)
	}
}

func TestVerifyTimeLeeway(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	clk := &fakeClock{t: base}
	tok := sign(is.header(k["rsa"]), map[string]any{
		"iss": is.url, "iat": base.Unix(), "nbf": base.Unix(), "exp": base.Add(time.Hour).Unix(),
	}, k["rsa"].priv, nil)
	ctx := context.Background()
	for _, c := range []struct {
		offset time.Duration
		leeway time.Duration
		want   verify.Code
	}{
		{-59 * time.Second, verify.DefaultLeeway, ""},
		{-61 * time.Second, verify.DefaultLeeway, verify.CodeNotYetValid},
		{-time.Second, 0, verify.CodeNotYetValid},
		{0, 0, ""},
		{time.Hour - time.Second, 0, ""},
		{time.Hour, 0, verify.CodeExpired},
		{time.Hour + 59*time.Second, verify.DefaultLeeway, ""},
		{time.Hour + 60*time.Second, verify.DefaultLeeway, verify.CodeExpired},
		{time.Hour + 9*time.Minute, 10 * time.Minute, ""},
	} {
		clk.t = base.Add(c.offset)
		v := newVerifier(t, is, clk, verify.WithLeeway(c.leeway))
		_, err := v.Verify(ctx, tok)
		if verify.CodeOf(err) != c.want || (c.want == "") != (err == nil) {
			t.Errorf("at %s with leeway %s: got %v, want %q", c.offset, c.leeway, err, c.want)
		}
	}
}

func TestVerifySimulatedOptIn(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	clk := &fakeClock{t: base}
	c := is.claims(base)
	c[verify.SimulatedClaim] = true
	tok := sign(is.header(k["rsa"]), c, k["rsa"].priv, nil)
	_, err := newVerifier(t, is, clk).Verify(context.Background(), tok)
	wantCode(t, "without opt-in", err, verify.CodeSimulatedEvidence)
	got, err := newVerifier(t, is, clk, verify.WithAllowSimulated()).Verify(context.Background(), tok)
	if err != nil || got.Claims[verify.SimulatedClaim] != true {
		t.Fatalf("with opt-in: %v", err)
	}
	// An explicit false is real evidence.
	c[verify.SimulatedClaim] = false
	if _, err := newVerifier(t, is, clk).Verify(context.Background(), sign(is.header(k["rsa"]), c, k["rsa"].priv, nil)); err != nil {
		t.Fatalf("simulated false: %v", err)
	}
	// Opting in does not weaken the other checks.
	c[verify.SimulatedClaim] = true
	c["iss"] = "https://other.example"
	_, err = newVerifier(t, is, clk, verify.WithAllowSimulated()).Verify(context.Background(), sign(is.header(k["rsa"]), c, k["rsa"].priv, nil))
	wantCode(t, "simulated, wrong issuer", err, verify.CodeWrongIssuer)
}

func TestVerifyExpectedClaims(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	clk := &fakeClock{t: base}
	c := is.claims(base)
	c["x-ms-runtime"] = map[string]any{"keys": []any{map[string]any{"kid": "a", "n": 1}}}
	tok := sign(is.header(k["rsa"]), c, k["rsa"].priv, nil)
	for _, tc := range []struct {
		name     string
		expected map[string]any
		want     verify.Code
	}{
		{"match", map[string]any{"x-ms-sgx-mrenclave": "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2", "x-ms-sgx-svn": 1, "x-ms-sgx-is-debuggable": false}, ""},
		{"number types", map[string]any{"x-ms-sgx-product-id": 1.0, "x-ms-sgx-svn": uint8(1)}, ""},
		{"object", map[string]any{"x-ms-runtime": map[string]any{"keys": []map[string]any{{"n": 1, "kid": "a"}}}}, ""},
		{"struct", map[string]any{"x-ms-runtime": struct {
			Keys []struct {
				Kid string `json:"kid"`
				N   int    `json:"n"`
			} `json:"keys"`
		}{Keys: []struct {
			Kid string `json:"kid"`
			N   int    `json:"n"`
		}{{"a", 1}}}}, ""},
		{"different string", map[string]any{"x-ms-sgx-mrenclave": strings.Repeat("0", 64)}, verify.CodeClaimMismatch},
		{"different number", map[string]any{"x-ms-sgx-svn": 2}, verify.CodeClaimMismatch},
		{"string for number", map[string]any{"x-ms-sgx-svn": "1"}, verify.CodeClaimMismatch},
		{"bool", map[string]any{"x-ms-sgx-is-debuggable": true}, verify.CodeClaimMismatch},
		{"missing", map[string]any{"nonce": "abc"}, verify.CodeClaimMismatch},
		{"null is not missing", map[string]any{"nonce": nil}, verify.CodeClaimMismatch},
		{"object extra member", map[string]any{"x-ms-runtime": map[string]any{"keys": []any{map[string]any{"kid": "a", "n": 1, "e": 3}}}}, verify.CodeClaimMismatch},
	} {
		v := newVerifier(t, is, clk, verify.WithExpectedClaims(tc.expected))
		_, err := v.Verify(context.Background(), tok)
		if verify.CodeOf(err) != tc.want || (tc.want == "") != (err == nil) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := verify.New(is.url, verify.WithExpectedClaims(map[string]any{"x": make(chan int)})); err == nil {
		t.Error("a claim value that is not JSON was accepted")
	}
}

// A token signed by a newly published key triggers exactly one refetch of
// the key set and then verifies; the metadata is not fetched again.
func TestVerifyKeyRotation(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk)
	ctx := context.Background()
	if _, err := v.Verify(ctx, is.token(k["rsa"], base)); err != nil {
		t.Fatal(err)
	}
	is.publish(k["rsa"], k["rotated"])
	clk.add(time.Second)
	for i := range 5 {
		if _, err := v.Verify(ctx, is.token(k["rotated"], clk.now())); err != nil {
			t.Fatalf("rotated key, try %d: %v", i, err)
		}
	}
	if _, err := v.Verify(ctx, is.token(k["rsa"], clk.now())); err != nil {
		t.Fatal(err)
	}
	if m, j := is.metaHits.Load(), is.jwksHits.Load(); m != 1 || j != 2 {
		t.Errorf("metadata fetched %d times, key set %d times; want 1 and 2", m, j)
	}
	// The old key is withdrawn; the cached set still has it until the
	// TTL passes, then its tokens fail.
	is.publish(k["rotated"])
	if _, err := v.Verify(ctx, is.token(k["rsa"], clk.now())); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	clk.add(verify.DefaultCacheTTL)
	_, err := v.Verify(ctx, is.token(k["rsa"], clk.now()))
	wantCode(t, "withdrawn key after the TTL", err, verify.CodeUnknownKey)
	if m, j := is.metaHits.Load(), is.jwksHits.Load(); m != 2 || j != 3 {
		t.Errorf("metadata fetched %d times, key set %d times; want 2 and 3", m, j)
	}
}

// Unknown kids refetch the key set at most once per refresh interval, and
// concurrent unknown kids share one fetch.
func TestVerifyUnknownKidRateLimited(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk, verify.WithRefreshInterval(time.Minute))
	ctx := context.Background()
	bogus := func(i int) string {
		h := is.header(k["rsa"])
		h["kid"] = "made-up-" + strings.Repeat("x", i)
		return sign(h, is.claims(clk.now()), k["rsa"].priv, nil)
	}
	if _, err := v.Verify(ctx, is.token(k["rsa"], base)); err != nil {
		t.Fatal(err)
	}
	// 100 unknown kids at once: one refetch.
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Go(func() { _, errs[i] = v.Verify(ctx, bogus(i)) })
	}
	wg.Wait()
	for i, err := range errs {
		wantCode(t, "concurrent unknown kid", err, verify.CodeUnknownKey)
		if t.Failed() {
			t.Fatalf("goroutine %d", i)
		}
	}
	if j := is.jwksHits.Load(); j != 2 {
		t.Fatalf("key set fetched %d times after 100 concurrent unknown kids, want 2 (initial + 1)", j)
	}
	// More within the interval: none.
	for i := range 20 {
		clk.add(2 * time.Second)
		_, err := v.Verify(ctx, bogus(i))
		wantCode(t, "unknown kid", err, verify.CodeUnknownKey)
	}
	if j := is.jwksHits.Load(); j != 2 {
		t.Fatalf("key set fetched %d times within the interval, want 2", j)
	}
	// After the interval: one more, then quiet again.
	clk.add(21 * time.Second)
	for i := range 5 {
		_, err := v.Verify(ctx, bogus(i))
		wantCode(t, "unknown kid", err, verify.CodeUnknownKey)
	}
	if j := is.jwksHits.Load(); j != 3 {
		t.Fatalf("key set fetched %d times after the interval, want 3", j)
	}
	// A key published in the meantime is found by the first unknown kid
	// after the interval, not before.
	is.publish(k["rsa"], k["rotated"])
	_, err := v.Verify(ctx, is.token(k["rotated"], clk.now()))
	wantCode(t, "new key within the interval", err, verify.CodeUnknownKey)
	clk.add(time.Minute)
	if _, err := v.Verify(ctx, is.token(k["rotated"], clk.now())); err != nil {
		t.Fatalf("new key after the interval: %v", err)
	}
	if m, j := is.metaHits.Load(), is.jwksHits.Load(); m != 1 || j != 4 {
		t.Errorf("metadata fetched %d times, key set %d times; want 1 and 4", m, j)
	}
}

// A refetch in progress for an unknown kid does not hold up tokens whose
// kid is already cached.
func TestVerifyKnownKidDoesNotWaitForRefetch(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk)
	if _, err := v.Verify(context.Background(), is.token(k["rsa"], base)); err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	is.mu.Lock()
	is.jwksBlock = block
	is.mu.Unlock()
	defer close(block)
	h := is.header(k["rsa"])
	h["kid"] = "kid-unknown"
	go v.Verify(context.Background(), sign(h, is.claims(base), k["rsa"].priv, nil))
	for is.jwksHits.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := v.Verify(ctx, is.token(k["rsa"], base)); err != nil {
		t.Fatalf("known kid during a refetch: %v", err)
	}
}

// panicTransport panics on its first request, then serves normally.
type panicTransport struct {
	once sync.Once
	next http.RoundTripper
}

func (p *panicTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	p.once.Do(func() { panic("transport bug") })
	return p.next.RoundTrip(r)
}

// A fetch that panics ends its flight: later calls do not wait forever.
func TestVerifyFetchPanic(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	hc := &http.Client{Transport: &panicTransport{next: is.srv.Client().Transport}}
	v, err := verify.New(is.url, verify.WithHTTPClient(hc), verify.WithClock(func() time.Time { return base }))
	if err != nil {
		t.Fatal(err)
	}
	tok := is.token(k["rsa"], base)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the transport's panic did not reach the caller")
			}
		}()
		v.Verify(context.Background(), tok)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}

// Concurrent first use fetches the metadata and key set once.
func TestVerifyConcurrentFirstUse(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	block := make(chan struct{})
	is.jwksBlock = block
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk)
	tok := is.token(k["rsa"], base)
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() { _, errs[i] = v.Verify(context.Background(), tok) })
	}
	time.Sleep(50 * time.Millisecond)
	close(block)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m, j := is.metaHits.Load(), is.jwksHits.Load(); m != 1 || j != 1 {
		t.Errorf("metadata fetched %d times, key set %d times; want 1 and 1", m, j)
	}
}

// A caller whose context ends stops waiting; others sharing the fetch are
// not affected.
func TestVerifyContext(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	block := make(chan struct{})
	is.jwksBlock = block
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk)
	tok := is.token(k["rsa"], base)

	ctx, cancel := context.WithCancel(context.Background())
	leaderDone := make(chan error)
	go func() { _, err := v.Verify(ctx, tok); leaderDone <- err }()
	for is.jwksHits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	waiterDone := make(chan error)
	go func() { _, err := v.Verify(context.Background(), tok); waiterDone <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	err := <-leaderDone
	wantCode(t, "canceled leader", err, verify.CodeKeyUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled leader: %v does not wrap context.Canceled", err)
	}
	// The waiter retries with its own context and leads a new fetch.
	close(block)
	if err := <-waiterDone; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if m := is.metaHits.Load(); m != 2 {
		t.Errorf("metadata fetched %d times, want 2", m)
	}

	// An already-ended context fails fast.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	v2 := newVerifier(t, is, clk)
	_, err = v2.Verify(ctx, tok)
	wantCode(t, "canceled context", err, verify.CodeKeyUnavailable)
}

func TestVerifyDiscoveryFailures(t *testing.T) {
	k := keys(t)
	clk := &fakeClock{t: base}
	ctx := context.Background()
	str := func(s string) *string { return &s }

	for _, c := range []struct {
		name  string
		setup func(is *issuer)
		want  verify.Code
	}{
		{"metadata issuer mismatch", func(is *issuer) { is.metaIssuer = str("https://evil.example") }, verify.CodeWrongIssuer},
		{"metadata issuer with slash", func(is *issuer) { is.metaIssuer = str(is.url + "/") }, verify.CodeWrongIssuer},
		{"metadata issuer empty", func(is *issuer) { is.metaIssuer = str("") }, verify.CodeWrongIssuer},
		{"jwks_uri over http", func(is *issuer) { is.jwksURI = strings.Replace(is.url, "https:", "http:", 1) + "/certs" }, verify.CodeKeyUnavailable},
		{"jwks_uri not a URL", func(is *issuer) { is.jwksURI = "certs" }, verify.CodeKeyUnavailable},
		{"jwks_uri file", func(is *issuer) { is.jwksURI = "file:///etc/passwd" }, verify.CodeKeyUnavailable},
		{"key set 500", func(is *issuer) { is.jwksStatus = 500 }, verify.CodeKeyUnavailable},
		{"key set 404", func(is *issuer) { is.jwksURI = is.url + "/nothing" }, verify.CodeKeyUnavailable},
		{"key set not JSON", func(is *issuer) { is.jwks = []byte("<html>") }, verify.CodeKeyUnavailable},
		{"key set without keys", func(is *issuer) { is.jwks = []byte(`{"kid":"x"}`) }, verify.CodeKeyUnavailable},
		{"key set oversize", func(is *issuer) {
			is.jwks = []byte(`{"keys":[],"pad":"` + strings.Repeat("a", verify.MaxBodySize) + `"}`)
		}, verify.CodeKeyUnavailable},
	} {
		is := newIssuer(t, k["rsa"])
		c.setup(is)
		v := newVerifier(t, is, clk)
		_, err := v.Verify(ctx, is.token(k["rsa"], base))
		wantCode(t, c.name, err, c.want)
	}

	// No server at all.
	is := newIssuer(t, k["rsa"])
	tok := is.token(k["rsa"], base)
	is.srv.Close()
	_, err := newVerifier(t, is, clk).Verify(ctx, tok)
	wantCode(t, "server down", err, verify.CodeKeyUnavailable)

	// The issuer's TLS certificate is not trusted by the default client.
	is = newIssuer(t, k["rsa"])
	v, err := verify.New(is.url, verify.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, is.token(k["rsa"], base))
	wantCode(t, "untrusted TLS", err, verify.CodeKeyUnavailable)
}

// A cache TTL shorter than a fetch still makes progress: each call
// fetches once and uses what it fetched.
func TestVerifyTinyTTL(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	// Every reading of this clock is a millisecond later, so every fetch
	// is stale by the time it is stored.
	clk := &fakeClock{t: base}
	tick := func() time.Time { clk.add(time.Millisecond); return clk.now() }
	v, err := verify.New(is.url, verify.WithHTTPClient(is.srv.Client()), verify.WithCacheTTL(time.Nanosecond), verify.WithClock(tick))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := v.Verify(context.Background(), is.token(k["rsa"], base)); err != nil {
			t.Fatal(err)
		}
	}
	if m, j := is.metaHits.Load(), is.jwksHits.Load(); m != 3 || j != 3 {
		t.Errorf("metadata fetched %d times, key set %d times; want 3 and 3", m, j)
	}
	//lint:ignore SA1012 a nil context is what this checks
	if _, err := v.Verify(nil, is.token(k["rsa"], base)); err != nil {
		t.Errorf("nil context: %v", err)
	}
}

// A failed fetch is not cached: the next call tries again and succeeds.
func TestVerifyRecoversAfterFailure(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	is.jwksStatus = 503
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk)
	tok := is.token(k["rsa"], base)
	_, err := v.Verify(context.Background(), tok)
	wantCode(t, "503", err, verify.CodeKeyUnavailable)
	is.mu.Lock()
	is.jwksStatus = 0
	is.mu.Unlock()
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

// Other algorithms verify once allowed, and only with keys of their type.
func TestVerifyAlgorithms(t *testing.T) {
	k := keys(t)
	var entries []map[string]any
	for _, name := range []string{"rsa", "p256", "p384", "p521", "ed25519"} {
		entries = append(entries, jwkOf(k[name], true))
	}
	// One key published without x5c, with members only.
	rsa2 := jwkOf(k["rsa2"], true)
	delete(rsa2, "x5c")
	entries = append(entries, rsa2)
	is := newIssuer(t)
	is.setJWKS(jwksOf(entries...))
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk, verify.WithAlgorithms("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"))
	for _, c := range []struct {
		alg, key string
		ok       bool
	}{
		{"RS256", "rsa", true},
		{"RS256", "rsa2", true},
		{"RS384", "rsa", true},
		{"RS512", "rsa", true},
		{"PS256", "rsa", true},
		{"PS384", "rsa", true},
		{"PS512", "rsa2", true},
		{"ES256", "p256", true},
		{"ES384", "p384", true},
		{"ES512", "p521", true},
		{"EdDSA", "ed25519", true},
	} {
		h := map[string]any{"alg": c.alg, "kid": k[c.key].kid}
		tok := sign(h, is.claims(base), k[c.key].priv, nil)
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s with %s: %v", c.alg, c.key, err)
		}
	}
	// The same signatures relabelled with another alg or a key of another
	// type fail.
	if _, err := newVerifier(t, is, clk, verify.WithAlgorithms("ES256")).Verify(context.Background(),
		sign(map[string]any{"alg": "RS512", "kid": "kid-rsa"}, is.claims(base), k["rsa"].priv, nil)); verify.CodeOf(err) != verify.CodeUnsupportedAlgorithm {
		t.Errorf("RS512 outside the allow-list: %v", err)
	}
	for _, c := range []struct {
		name string
		hdr  map[string]any
		alg  string
		key  string
		want verify.Code
	}{
		{"ES256 sig labelled ES384", map[string]any{"alg": "ES384", "kid": "kid-p256"}, "ES256", "p256", verify.CodeBadSignature},
		{"ES256 against P-384 key", map[string]any{"alg": "ES256", "kid": "kid-p384"}, "ES256", "p256", verify.CodeBadSignature},
		{"RS256 sig labelled PS256", map[string]any{"alg": "PS256", "kid": "kid-rsa"}, "RS256", "rsa", verify.CodeBadSignature},
		{"EdDSA against RSA key", map[string]any{"alg": "EdDSA", "kid": "kid-rsa"}, "EdDSA", "ed25519", verify.CodeBadSignature},
		{"RS256 against Ed25519 key", map[string]any{"alg": "RS256", "kid": "kid-ed25519"}, "RS256", "rsa", verify.CodeBadSignature},
		{"RS256 sig labelled RS512", map[string]any{"alg": "RS512", "kid": "kid-rsa"}, "RS256", "rsa", verify.CodeBadSignature},
		{"PS384 sig labelled PS512", map[string]any{"alg": "PS512", "kid": "kid-rsa"}, "PS384", "rsa", verify.CodeBadSignature},
		{"ES512 against P-256 key", map[string]any{"alg": "ES512", "kid": "kid-p256"}, "ES512", "p521", verify.CodeBadSignature},
	} {
		real := sign(map[string]any{"alg": c.alg, "kid": c.hdr["kid"]}, is.claims(base), k[c.key].priv, nil)
		sig := real[strings.LastIndex(real, ".")+1:]
		forged := b64(mustJSON(c.hdr)) + "." + b64(mustJSON(is.claims(base))) + "." + sig
		_, err := v.Verify(context.Background(), forged)
		wantCode(t, c.name, err, c.want)
	}
}

func TestVerifyJWKAlgAndUse(t *testing.T) {
	k := keys(t)
	withAlg := jwkOf(k["rsa"], false)
	withAlg["alg"] = "PS256"
	enc := jwkOf(k["rsa2"], false)
	enc["use"] = "enc"
	is := newIssuer(t)
	is.setJWKS(jwksOf(withAlg, enc))
	clk := &fakeClock{t: base}
	v := newVerifier(t, is, clk, verify.WithAlgorithms("RS256", "PS256"))
	_, err := v.Verify(context.Background(), is.token(k["rsa"], base))
	wantCode(t, "RS256 with a PS256 key", err, verify.CodeBadSignature)
	h := is.header(k["rsa"])
	h["alg"] = "PS256"
	if _, err := v.Verify(context.Background(), sign(h, is.claims(base), k["rsa"].priv, nil)); err != nil {
		t.Errorf("PS256 with a PS256 key: %v", err)
	}
	_, err = v.Verify(context.Background(), is.token(k["rsa2"], base))
	wantCode(t, "encryption key", err, verify.CodeInvalidKey)
}

// Key set entries: members must agree with x5c[0]; entries that cannot be
// parsed are ignored unless selected.
func TestVerifyKeySetEntries(t *testing.T) {
	k := keys(t)
	good := jwkOf(k["rsa"], true) // n/e and x5c, agreeing
	mismatch := jwkOf(k["rsa2"], false)
	other := jwkOf(k["rsa"], true)
	mismatch["n"], mismatch["e"] = other["n"], other["e"] // rsa's n/e, rsa2's cert
	ecMismatch := jwkOf(k["p256"], false)
	ecOther := jwkOf(k["p384"], true)
	ecMismatch["crv"], ecMismatch["x"], ecMismatch["y"] = ecOther["crv"], ecOther["x"], ecOther["y"]
	wrongKty := jwkOf(k["rotated"], false)
	wrongKty["kty"] = "EC"
	badCert := map[string]any{"kid": "kid-badcert", "kty": "RSA", "x5c": []string{"AAAA"}}
	notB64 := map[string]any{"kid": "kid-notb64", "kty": "RSA", "x5c": []string{"!!"}}
	private := jwkOf(k["attacker"], true)
	private["d"] = "AQAB"
	raw := `{"keys":[` +
		string(mustJSON(good)) + "," + string(mustJSON(mismatch)) + "," + string(mustJSON(ecMismatch)) + "," +
		string(mustJSON(wrongKty)) + "," + string(mustJSON(badCert)) + "," + string(mustJSON(notB64)) + "," +
		string(mustJSON(private)) + "," +
		`"junk", 7, null, [], {"kid":5,"kty":"RSA"}, {"kty":"RSA","x5c":"notalist","kid":"kid-x5cstring"},` +
		`{"kid":"kid-oct","kty":"oct","k":"c2VjcmV0"}, {"kid":"kid-empty","kty":"RSA"}` + `]}`

	static, err := verify.New("https://issuer.example", verify.WithKeySet([]byte(raw)), verify.WithClock(func() time.Time { return base }))
	if err != nil {
		t.Fatal(err)
	}
	tok := func(key *testKey, kid string) string {
		c := map[string]any{"iss": "https://issuer.example", "exp": base.Add(time.Hour).Unix()}
		return sign(map[string]any{"alg": "RS256", "kid": kid}, c, key.priv, nil)
	}
	if _, err := static.Verify(context.Background(), tok(k["rsa"], "kid-rsa")); err != nil {
		t.Fatalf("good entry beside junk: %v", err)
	}
	for _, c := range []struct {
		name string
		tok  string
		want verify.Code
	}{
		{"n/e disagree with x5c (signed by x5c key)", tok(k["rsa2"], "kid-rsa2"), verify.CodeInvalidKey},
		{"n/e disagree with x5c (signed by n/e key)", tok(k["rsa"], "kid-rsa2"), verify.CodeInvalidKey},
		{"kty disagrees with certificate", tok(k["rotated"], "kid-rotated"), verify.CodeInvalidKey},
		{"bad certificate", tok(k["rsa"], "kid-badcert"), verify.CodeInvalidKey},
		{"x5c not base64", tok(k["rsa"], "kid-notb64"), verify.CodeInvalidKey},
		{"private key published", tok(k["attacker"], "kid-attacker"), verify.CodeInvalidKey},
		{"x5c not a list", tok(k["rsa"], "kid-x5cstring"), verify.CodeInvalidKey},
		{"symmetric key", tok(k["rsa"], "kid-oct"), verify.CodeInvalidKey},
		{"no key material", tok(k["rsa"], "kid-empty"), verify.CodeInvalidKey},
		{"kid absent", tok(k["rsa"], "kid-nothere"), verify.CodeUnknownKey},
	} {
		_, err := static.Verify(context.Background(), c.tok)
		wantCode(t, c.name, err, c.want)
	}
	// The EC mismatch, verified as ES256.
	ec, err := verify.New("https://issuer.example", verify.WithKeySet([]byte(raw)), verify.WithAlgorithms("ES256"), verify.WithClock(func() time.Time { return base }))
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"iss": "https://issuer.example", "exp": base.Add(time.Hour).Unix()}
	_, err = ec.Verify(context.Background(), sign(map[string]any{"alg": "ES256", "kid": "kid-p256"}, c, k["p256"].priv, nil))
	wantCode(t, "EC members disagree with x5c", err, verify.CodeInvalidKey)

	// Two entries under one kid: the one that verifies wins.
	dup := jwksOf(jwkOf(k["rsa2"], false), func() map[string]any { m := jwkOf(k["rsa"], false); m["kid"] = "kid-rsa2"; return m }())
	v, err := verify.New("https://issuer.example", verify.WithKeySet(dup), verify.WithClock(func() time.Time { return base }))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []*testKey{k["rsa"], k["rsa2"]} {
		if _, err := v.Verify(context.Background(), tok(key, "kid-rsa2")); err != nil {
			t.Errorf("shared kid: %v", err)
		}
	}
	_, err = v.Verify(context.Background(), tok(k["attacker"], "kid-rsa2"))
	wantCode(t, "shared kid, neither key", err, verify.CodeBadSignature)
}

// A static key set never touches the network and ignores jku.
func TestVerifyStaticKeySet(t *testing.T) {
	k := keys(t)
	is := newIssuer(t, k["rsa"])
	v, err := verify.New(is.url,
		verify.WithKeySet(jwksOf(jwkOf(k["rsa"], false))),
		verify.WithHTTPClient(is.srv.Client()),
		verify.WithClock(func() time.Time { return base }))
	if err != nil {
		t.Fatal(err)
	}
	h := is.header(k["rsa"])
	h["jku"] = "https://evil.example/certs"
	if _, err := v.Verify(context.Background(), sign(h, is.claims(base), k["rsa"].priv, nil)); err != nil {
		t.Fatal(err)
	}
	h["kid"] = "kid-unknown"
	_, err = v.Verify(context.Background(), sign(h, is.claims(base), k["rsa"].priv, nil))
	wantCode(t, "unknown kid, static", err, verify.CodeUnknownKey)
	if m, j := is.metaHits.Load(), is.jwksHits.Load(); m != 0 || j != 0 {
		t.Errorf("static verifier made %d+%d requests", m, j)
	}
}

// An http issuer (a development attestd) may publish an http jwks_uri; an
// https issuer may not (TestVerifyDiscoveryFailures).
func TestVerifyHTTPIssuer(t *testing.T) {
	k := keys(t)
	is := newPlainIssuer(t, k["rsa"])
	clk := &fakeClock{t: base}
	v, err := verify.New(is.url, verify.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), is.token(k["rsa"], base)); err != nil {
		t.Fatal(err)
	}
}

func TestNewOptions(t *testing.T) {
	for _, c := range []struct {
		name   string
		issuer string
		opts   []verify.Option
	}{
		{"none listed", "https://a.example", []verify.Option{verify.WithAlgorithms("RS256", "none")}},
		{"HS256 listed", "https://a.example", []verify.Option{verify.WithAlgorithms("HS256")}},
		{"unknown alg", "https://a.example", []verify.Option{verify.WithAlgorithms("RS257")}},
		{"empty allow-list", "https://a.example", []verify.Option{verify.WithAlgorithms()}},
		{"negative leeway", "https://a.example", []verify.Option{verify.WithLeeway(-time.Second)}},
		{"zero TTL", "https://a.example", []verify.Option{verify.WithCacheTTL(0)}},
		{"negative refresh", "https://a.example", []verify.Option{verify.WithRefreshInterval(-1)}},
		{"nil client", "https://a.example", []verify.Option{verify.WithHTTPClient(nil)}},
		{"nil clock", "https://a.example", []verify.Option{verify.WithClock(nil)}},
		{"bad key set", "https://a.example", []verify.Option{verify.WithKeySet([]byte("{"))}},
		{"nil key set", "https://a.example", []verify.Option{verify.WithKeySet(nil)}},
		{"trailing slash", "https://a.example/", nil},
		{"not a URL", "a.example", nil},
		{"ftp", "ftp://a.example", nil},
		{"query", "https://a.example?x=1", nil},
		{"user", "https://u@a.example", nil},
		{"empty", "", nil},
	} {
		if _, err := verify.New(c.issuer, c.opts...); err == nil {
			t.Errorf("%s: New succeeded", c.name)
		}
	}
	if _, err := verify.New("https://a.example/tenant1", verify.WithAlgorithms("RS256", "PS256", "ES256", "ES384", "RS384", "RS512"), verify.WithCacheTTL(time.Minute), verify.WithRefreshInterval(0), verify.WithLeeway(0)); err != nil {
		t.Errorf("valid options: %v", err)
	}
	if len(verify.Codes()) != 12 {
		t.Errorf("Codes() has %d entries", len(verify.Codes()))
	}
}

// Error texts name the code, and wrapped causes stay reachable.
func TestErrorText(t *testing.T) {
	v, err := verify.New("https://a.example", verify.WithKeySet([]byte(`{"keys":[]}`)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), "x.y")
	if err == nil || !strings.HasPrefix(err.Error(), "verify: malformed_token: ") {
		t.Fatalf("error text %q", err)
	}
	wrapped := &verify.Error{Code: verify.CodeKeyUnavailable, Message: "m", Err: context.DeadlineExceeded}
	if !errors.Is(wrapped, context.DeadlineExceeded) || !strings.Contains(wrapped.Error(), "deadline") {
		t.Errorf("wrapped error %q", wrapped)
	}
	if verify.CodeOf(errors.New("x")) != "" || verify.CodeOf(nil) != "" {
		t.Error("CodeOf of a foreign error")
	}
}
