package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOIDCRoles(t *testing.T) {
	e := newOIDCEnv(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		roles []string
		want  Role
	}{
		{[]string{"Attestation.Attester"}, RoleAttester},
		{[]string{"Attestation.Reader"}, RoleReader},
		{[]string{"Attestation.Contributor"}, RoleContributor},
		{[]string{"Other", "Attestation.Reader", "Attestation.Attester"}, RoleReader},
		{[]string{"Attestation.Contributor", "Attestation.Reader"}, RoleContributor},
	} {
		p, err := e.authenticate(e.token(t, e.claims(tc.roles...)))
		if err != nil {
			t.Fatalf("%v: %v", tc.roles, err)
		}
		if *p != (Principal{Name: "oidc:user-1", Role: tc.want, Method: MethodOIDC}) {
			t.Fatalf("%v: %+v", tc.roles, *p)
		}
	}

	// Authorize: each role reaches its routes and no further.
	reader := "Bearer " + e.token(t, e.claims("Attestation.Reader"))
	if _, err := e.auth.Authorize(ctx, reader, RoleReader); err != nil {
		t.Fatal(err)
	}
	_, err := e.auth.Authorize(ctx, reader, RoleContributor)
	wantReason(t, err, ReasonInsufficientRole, 403)
	attester := "Bearer " + e.token(t, e.claims("Attestation.Attester"))
	_, err = e.auth.Authorize(ctx, attester, RoleReader)
	wantReason(t, err, ReasonInsufficientRole, 403)

	// The role claim as a single string.
	c := e.claims()
	c["roles"] = "Attestation.Reader"
	p, err := e.authenticate(e.token(t, c))
	if err != nil || p.Role != RoleReader {
		t.Fatalf("string role claim: %+v, %v", p, err)
	}

	// Unmapped, missing, empty and mistyped role claims.
	for _, v := range []any{[]string{"Reader", "attestation.reader"}, "Owner", []string{}, nil, 7, map[string]any{"a": "Attestation.Reader"}, []any{1, true}} {
		c := e.claims()
		if v == nil {
			delete(c, "roles")
		} else {
			c["roles"] = v
		}
		_, err := e.authenticate(e.token(t, c))
		wantReason(t, err, ReasonNoRole, 403)
	}
	if n := e.idp.fetched.Load(); n != 1 {
		t.Errorf("%d key set fetches, want 1", n)
	}
}

func TestOIDCKeyTypes(t *testing.T) {
	e := newOIDCEnv(t, func(c *OIDCConfig) { c.Algorithms = []string{"RS256", "PS256", "ES256", "ES384", "RS512"} })
	e.idp.setKeys(
		publicJWK(rsaKeys()[0], "rsa-1", map[string]any{"use": "sig"}),
		publicJWK(ecKeys()["P-256"], "ec-1", map[string]any{"use": "sig", "alg": "ES256"}),
		publicJWK(ecKeys()["P-384"], "ec-384", nil),
	)
	for _, tc := range []struct {
		alg, kid string
		key      any
	}{
		{"RS256", "rsa-1", rsaKeys()[0]},
		{"PS256", "rsa-1", rsaKeys()[0]},
		{"RS512", "rsa-1", rsaKeys()[0]},
		{"ES256", "ec-1", ecKeys()["P-256"]},
		{"ES384", "ec-384", ecKeys()["P-384"]},
	} {
		tok := signJWS(t, mustJSON(map[string]any{"alg": tc.alg, "kid": tc.kid}), mustJSON(e.claims("Attestation.Reader")), tc.alg, tc.key)
		if p, err := e.authenticate(tok); err != nil || p.Role != RoleReader {
			t.Errorf("%s: %+v, %v", tc.alg, p, err)
		}
	}
}

func TestOIDCClaims(t *testing.T) {
	e := newOIDCEnv(t, nil)
	now := e.clock.Now().Unix()
	for _, tc := range []struct {
		name   string
		mod    func(map[string]any)
		reason string
		status int
	}{
		{"expired", func(c map[string]any) { c["exp"] = now - 61 }, ReasonTokenExpired, 401},
		{"expired exactly at leeway", func(c map[string]any) { c["exp"] = now - 60 }, ReasonTokenExpired, 401},
		{"not yet valid", func(c map[string]any) { c["nbf"] = now + 61 }, ReasonTokenNotYetValid, 401},
		{"issued in the future", func(c map[string]any) { c["iat"] = now + 120 }, ReasonTokenNotYetValid, 401},
		{"no exp", func(c map[string]any) { delete(c, "exp") }, ReasonInvalidToken, 401},
		{"exp string", func(c map[string]any) { c["exp"] = "tomorrow" }, ReasonMalformedToken, 401},
		{"exp huge", func(c map[string]any) { c["exp"] = 1e300 }, "", 0},
		{"nbf huge negative", func(c map[string]any) { c["nbf"] = -1e300 }, "", 0},
		{"fractional exp", func(c map[string]any) { c["exp"] = float64(now) + 0.5 }, "", 0},
		{"wrong issuer", func(c map[string]any) { c["iss"] = e.idp.srv.URL + "/" }, ReasonWrongIssuer, 401},
		{"no issuer", func(c map[string]any) { delete(c, "iss") }, ReasonWrongIssuer, 401},
		{"issuer not a string", func(c map[string]any) { c["iss"] = []string{e.idp.srv.URL} }, ReasonWrongIssuer, 401},
		{"wrong audience", func(c map[string]any) { c["aud"] = "api://other" }, ReasonWrongAudience, 401},
		{"wrong audience array", func(c map[string]any) { c["aud"] = []string{"api://other", "x"} }, ReasonWrongAudience, 401},
		{"audience array", func(c map[string]any) { c["aud"] = []any{"api://other", 3, testAudience} }, "", 0},
		{"empty audience array", func(c map[string]any) { c["aud"] = []string{} }, ReasonWrongAudience, 401},
		{"no audience", func(c map[string]any) { delete(c, "aud") }, ReasonWrongAudience, 401},
		{"audience case", func(c map[string]any) { c["aud"] = strings.ToUpper(testAudience) }, ReasonWrongAudience, 401},
		{"audience object", func(c map[string]any) { c["aud"] = map[string]any{"x": testAudience} }, ReasonMalformedToken, 401},
		{"no sub", func(c map[string]any) { delete(c, "sub") }, ReasonInvalidToken, 401},
		{"empty sub", func(c map[string]any) { c["sub"] = "" }, ReasonInvalidToken, 401},
		{"sub not a string", func(c map[string]any) { c["sub"] = 42 }, ReasonInvalidToken, 401},
		{"sub too long", func(c map[string]any) { c["sub"] = strings.Repeat("s", 2000) }, ReasonInvalidToken, 401},
		{"within leeway", func(c map[string]any) { c["exp"] = now - 30; c["nbf"] = now + 30; c["iat"] = now + 30 }, "", 0},
		{"no nbf no iat", func(c map[string]any) { delete(c, "nbf"); delete(c, "iat") }, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.claims()
			tc.mod(c)
			_, err := e.authenticate(e.token(t, c))
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantReason(t, err, tc.reason, tc.status)
		})
	}

	// The expired huge exp case must not have wrapped around: a token far
	// in the past is expired.
	c := e.claims()
	c["exp"] = -1e300
	_, err := e.authenticate(e.token(t, c))
	wantReason(t, err, ReasonTokenExpired, 401)
}

func TestOIDCLeewayAndClock(t *testing.T) {
	e := newOIDCEnv(t, func(c *OIDCConfig) { c.Leeway = 5 * time.Second })
	tok := e.token(t, e.claims())
	if _, err := e.authenticate(tok); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(3600*time.Second + 4*time.Second)
	if _, err := e.authenticate(tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	e.clock.Advance(time.Second)
	_, err := e.authenticate(tok)
	wantReason(t, err, ReasonTokenExpired, 401)
}

func TestOIDCHeaderAttacks(t *testing.T) {
	e := newOIDCEnv(t, nil)
	claims := mustJSON(e.claims())
	rsaPub := rsaKeys()[0].Public()
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	attacker := rsaKeys()[2]
	attackerJWK := publicJWK(attacker, "evil", nil)

	// A provider the attacker controls; no request may reach it.
	evilCount := 0
	var evilMu sync.Mutex
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilMu.Lock()
		evilCount++
		evilMu.Unlock()
		w.Write(mustJSON(map[string]any{"keys": []any{attackerJWK}}))
	}))
	defer evil.Close()

	hdr := func(m map[string]any) []byte { return mustJSON(m) }
	for _, tc := range []struct {
		name   string
		tok    string
		reason string
	}{
		{"alg none", signJWS(t, hdr(map[string]any{"alg": "none", "kid": "rsa-1"}), claims, "none", nil), ReasonUnsupportedAlgorithm},
		{"alg None", signJWS(t, hdr(map[string]any{"alg": "None", "kid": "rsa-1"}), claims, "none", nil) + "AAAA", ReasonUnsupportedAlgorithm},
		{"HS256 keyed with the RSA public key (DER)", signJWS(t, hdr(map[string]any{"alg": "HS256", "kid": "rsa-1"}), claims, "HS256", der), ReasonUnsupportedAlgorithm},
		{"HS256 keyed with the RSA modulus", signJWS(t, hdr(map[string]any{"alg": "HS256"}), claims, "HS256", rsaKeys()[0].N.Bytes()), ReasonUnsupportedAlgorithm},
		{"alg not allowed (RS512)", signJWS(t, hdr(map[string]any{"alg": "RS512", "kid": "rsa-1"}), claims, "RS512", rsaKeys()[0]), ReasonUnsupportedAlgorithm},
		{"alg lowercase", signJWS(t, hdr(map[string]any{"alg": "rs256", "kid": "rsa-1"}), claims, "RS256", rsaKeys()[0]), ReasonUnsupportedAlgorithm},
		{"ES256 on the RSA key", signJWS(t, hdr(map[string]any{"alg": "ES256", "kid": "rsa-1"}), claims, "ES256", ecKeys()["P-256"]), ReasonInvalidToken},
		{"RS256 on the EC key", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "ec-1"}), claims, "RS256", rsaKeys()[0]), ReasonInvalidToken},
		{"PS256 on a key whose JWK says RS256", signJWS(t, hdr(map[string]any{"alg": "PS256", "kid": "rsa-1"}), claims, "PS256", rsaKeys()[0]), ReasonInvalidToken},
		{"key only in its own jwk header", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "evil", "jwk": attackerJWK}), claims, "RS256", attacker), ReasonUnknownKey},
		{"jwk header with the provider's kid", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "rsa-1", "jwk": attackerJWK}), claims, "RS256", attacker), ReasonInvalidToken},
		{"jwk header without kid", signJWS(t, hdr(map[string]any{"alg": "RS256", "jwk": attackerJWK}), claims, "RS256", attacker), ReasonUnknownKey},
		{"x5c header", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "rsa-1", "x5c": []string{base64.StdEncoding.EncodeToString(der)}}), claims, "RS256", attacker), ReasonInvalidToken},
		{"jku header", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "evil", "jku": evil.URL}), claims, "RS256", attacker), ReasonUnknownKey},
		{"x5u header", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "evil", "x5u": evil.URL}), claims, "RS256", attacker), ReasonUnknownKey},
		{"crit header", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "rsa-1", "crit": []string{"exp"}, "exp": 1}), claims, "RS256", rsaKeys()[0]), ReasonInvalidToken},
		{"b64 false", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "rsa-1", "b64": false}), claims, "RS256", rsaKeys()[0]), ReasonInvalidToken},
		{"duplicate alg", signJWS(t, []byte(`{"alg":"none","kid":"rsa-1","alg":"RS256"}`), claims, "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"duplicate kid (escaped)", signJWS(t, []byte(`{"alg":"RS256","kid":"rsa-1","\u006bid":"ec-1"}`), claims, "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"duplicate claim", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "rsa-1"}), []byte(`{"sub":"a","sub":"b"}`), "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"duplicate nested claim", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "rsa-1"}), []byte(`{"x":[{"a":1,"a":2}]}`), "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"header not an object", signJWS(t, []byte(`["RS256"]`), claims, "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"header trailing data", signJWS(t, []byte(`{"alg":"RS256","kid":"rsa-1"}{}`), claims, "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"header invalid UTF-8", signJWS(t, []byte("{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"x\":\"\xff\"}"), claims, "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"no alg", signJWS(t, hdr(map[string]any{"kid": "rsa-1"}), claims, "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"alg not a string", signJWS(t, hdr(map[string]any{"alg": []string{"RS256"}, "kid": "rsa-1"}), claims, "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"kid not a string", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": 1}), claims, "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"no kid, several keys", signJWS(t, hdr(map[string]any{"alg": "RS256"}), claims, "RS256", rsaKeys()[0]), ReasonUnknownKey},
		{"claims not an object", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "rsa-1"}), []byte(`"sub"`), "RS256", rsaKeys()[0]), ReasonMalformedToken},
		{"claims deeply nested", signJWS(t, hdr(map[string]any{"alg": "RS256", "kid": "rsa-1"}), []byte(`{"a":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`), "RS256", rsaKeys()[0]), ReasonMalformedToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.authenticate(tc.tok)
			wantReason(t, err, tc.reason, 401)
		})
	}
	evilMu.Lock()
	defer evilMu.Unlock()
	if evilCount != 0 {
		t.Fatalf("the verifier fetched from a URL in a token header (%d requests)", evilCount)
	}
}

func TestOIDCSyntax(t *testing.T) {
	e := newOIDCEnv(t, nil)
	good := e.token(t, e.claims())
	parts := strings.Split(good, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[10] == 'A' {
			b[10] = 'B'
		} else {
			b[10] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, tok, reason string
	}{
		{"bad signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), ReasonInvalidToken},
		{"changed payload", parts[0] + "." + flip(parts[1]) + "." + parts[2], ""},
		{"empty signature", parts[0] + "." + parts[1] + ".", ReasonInvalidToken},
		{"short signature", parts[0] + "." + parts[1] + ".AAAA", ReasonInvalidToken},
		{"padded", parts[0] + "." + parts[1] + "." + parts[2] + "==", ReasonMalformedToken},
		{"header not base64url", "e!." + parts[1] + "." + parts[2], ReasonMalformedToken},
		{"header base64 std alphabet", strings.ReplaceAll(parts[0], "J", "+") + "." + parts[1] + "." + parts[2], ReasonMalformedToken},
		{"payload non-canonical base64", parts[0] + "." + parts[1][:len(parts[1])-1] + "_" + "." + parts[2], ""},
		{"header length 1 mod 4", parts[0] + "A." + parts[1] + "." + parts[2], ReasonMalformedToken},
		{"empty header", "." + parts[1] + "." + parts[2], ReasonMalformedToken},
		{"empty payload", parts[0] + ".." + parts[2], ReasonMalformedToken},
		{"dots only", "..", ReasonMalformedToken},
		{"four parts", good + ".x", ReasonMalformedToken},
		{"JWE-like five parts", "a.b.c.d.e", ReasonMalformedToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.authenticate(tc.tok)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.reason != "" {
				wantReason(t, err, tc.reason, 401)
			}
		})
	}
	if _, err := e.authenticate(good); err != nil {
		t.Fatal(err)
	}
}

func TestOIDCUnknownKidAndRotation(t *testing.T) {
	e := newOIDCEnv(t, nil)
	if _, err := e.authenticate(e.token(t, e.claims())); err != nil {
		t.Fatal(err)
	}
	if n := e.idp.fetched.Load(); n != 1 {
		t.Fatalf("%d fetches", n)
	}

	newKey := rsaKeys()[1]
	rotated := signJWS(t, mustJSON(map[string]any{"alg": "RS256", "kid": "rsa-2"}), mustJSON(e.claims()), "RS256", newKey)

	// Right after a fetch, an unknown kid does not refetch.
	_, err := e.authenticate(rotated)
	wantReason(t, err, ReasonUnknownKey, 401)
	if n := e.idp.fetched.Load(); n != 1 {
		t.Fatalf("%d fetches after an early kid miss, want 1", n)
	}

	// After MinRefreshInterval, a kid miss refetches once; the key is
	// still unknown.
	e.clock.Advance(DefaultMinRefreshInterval)
	rotated = signJWS(t, mustJSON(map[string]any{"alg": "RS256", "kid": "rsa-2"}), mustJSON(e.claims()), "RS256", newKey)
	_, err = e.authenticate(rotated)
	wantReason(t, err, ReasonUnknownKey, 401)
	if n := e.idp.fetched.Load(); n != 2 {
		t.Fatalf("%d fetches after a late kid miss, want 2", n)
	}
	for range 5 {
		_, err = e.authenticate(rotated)
		wantReason(t, err, ReasonUnknownKey, 401)
	}
	if n := e.idp.fetched.Load(); n != 2 {
		t.Fatalf("%d fetches after repeated kid misses, want 2", n)
	}

	// The provider rotates: the new key is picked up on the next kid miss
	// after MinRefreshInterval, and the old key stops verifying.
	e.idp.setKeys(publicJWK(newKey, "rsa-2", nil), publicJWK(ecKeys()["P-256"], "ec-1", nil))
	e.clock.Advance(10 * time.Second)
	_, err = e.authenticate(rotated)
	wantReason(t, err, ReasonUnknownKey, 401)
	e.clock.Advance(DefaultMinRefreshInterval)
	if _, err := e.authenticate(rotated); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := e.idp.fetched.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	_, err = e.authenticate(e.token(t, e.claims()))
	wantReason(t, err, ReasonUnknownKey, 401)
	if n := e.idp.discovered.Load(); n != 1 {
		t.Fatalf("%d discoveries, want 1", n)
	}
}

func TestOIDCMaxKeyAge(t *testing.T) {
	e := newOIDCEnv(t, func(c *OIDCConfig) { c.MaxKeyAge = 10 * time.Minute })
	tok := func() string { return e.token(t, e.claims()) }
	if _, err := e.authenticate(tok()); err != nil {
		t.Fatal(err)
	}
	// The provider withdraws rsa-1. Until the key set is old, the cached
	// key still verifies.
	e.idp.setKeys(publicJWK(ecKeys()["P-256"], "ec-1", nil))
	e.clock.Advance(9 * time.Minute)
	if _, err := e.authenticate(tok()); err != nil {
		t.Fatal(err)
	}
	// Once it is old, a call starts a background fetch (and is served from
	// the old keys); after it lands, rsa-1 is gone.
	e.clock.Advance(2 * time.Minute)
	if _, err := e.authenticate(tok()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.authenticate(tok())
		if err != nil {
			wantReason(t, err, ReasonUnknownKey, 401)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("withdrawn key still verifies")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.idp.fetched.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestOIDCDiscovery(t *testing.T) {
	t.Run("issuer mismatch", func(t *testing.T) {
		e := newOIDCEnv(t, nil)
		e.idp.issuer = e.idp.srv.URL + "/other"
		_, err := e.authenticate(e.token(t, e.claims()))
		wantReason(t, err, ReasonOIDCUnavailable, 503)
		if !strings.Contains(err.Error(), "names issuer") || !strings.Contains(e.logs.String(), "another issuer") {
			t.Fatalf("error %v; logs %s", err, e.logs)
		}
		if n := e.idp.fetched.Load(); n != 0 {
			t.Fatalf("key set fetched from a mismatched provider")
		}
	})
	t.Run("http jwks_uri off loopback", func(t *testing.T) {
		e := newOIDCEnv(t, nil)
		e.idp.jwksURI = "http://idp.example.com/keys"
		_, err := e.authenticate(e.token(t, e.claims()))
		wantReason(t, err, ReasonOIDCUnavailable, 503)
		if !strings.Contains(err.Error(), "not an https URL") {
			t.Fatal(err)
		}
	})
	t.Run("discovery URL override", func(t *testing.T) {
		e := newOIDCEnv(t, nil)
		// Serve discovery elsewhere on the same host; issuer still checked.
		e2 := newOIDCEnv(t, func(c *OIDCConfig) {
			c.Issuer = e.idp.srv.URL
			c.DiscoveryURL = e.idp.srv.URL + "/.well-known/openid-configuration"
		})
		if _, err := e2.authenticate(e.token(t, e.claims())); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad documents", func(t *testing.T) {
		for name, h := range map[string]http.HandlerFunc{
			"404":       func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			"not JSON":  func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) },
			"too large": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(strings.Repeat(" ", 2<<20))) },
			"no jwks": func(w http.ResponseWriter, r *http.Request) {
				w.Write(mustJSON(map[string]any{"issuer": "http://" + r.Host}))
			},
			"keys wrong": nil,
		} {
			t.Run(name, func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if h != nil {
						h(w, r)
						return
					}
					if r.URL.Path == "/keys" {
						w.Write([]byte(`{"keys":{"kty":"RSA"}}`))
						return
					}
					w.Write(mustJSON(map[string]any{"issuer": "http://" + r.Host, "jwks_uri": "http://" + r.Host + "/keys"}))
				}))
				defer srv.Close()
				a, err := New(Config{OIDC: &OIDCConfig{Issuer: srv.URL, Audience: "a", RoleMap: testRoleMap}, Clock: newClock().Now})
				if err != nil {
					t.Fatal(err)
				}
				e := newOIDCEnv(t, nil)
				_, err = a.Authenticate(context.Background(), "Bearer "+e.token(t, e.claims()))
				wantReason(t, err, ReasonOIDCUnavailable, 503)
				if err := a.Prefetch(context.Background()); err == nil {
					t.Fatal("Prefetch succeeded")
				}
			})
		}
	})
}

func TestOIDCProviderDownAndRecovery(t *testing.T) {
	e := newOIDCEnv(t, nil)
	e.idp.setDown(true)
	tok := e.token(t, e.claims())
	for range 3 {
		_, err := e.authenticate(tok)
		wantReason(t, err, ReasonOIDCUnavailable, 503)
	}
	if n := e.idp.discovered.Load(); n != 3 {
		t.Fatalf("%d discovery attempts, want one per call (3)", n)
	}
	// Malformed tokens are judged without the provider.
	_, err := e.authenticate("e30.e30.")
	wantReason(t, err, ReasonMalformedToken, 401)

	e.idp.setDown(false)
	if _, err := e.authenticate(tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// Down again: cached keys keep working, and a kid miss that cannot
	// refetch is 503, not a verdict on the token.
	e.idp.setDown(true)
	if _, err := e.authenticate(tok); err != nil {
		t.Fatalf("cached keys: %v", err)
	}
	e.clock.Advance(time.Minute)
	other := signJWS(t, mustJSON(map[string]any{"alg": "RS256", "kid": "rsa-9"}), mustJSON(e.claims()), "RS256", rsaKeys()[1])
	_, err = e.authenticate(other)
	wantReason(t, err, ReasonOIDCUnavailable, 503)

	// A provider that is gone for good.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: url, Audience: "a", RoleMap: testRoleMap}, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), "Bearer "+tok)
	wantReason(t, err, ReasonOIDCUnavailable, 503)
}

func TestOIDCSingleFlight(t *testing.T) {
	e := newOIDCEnv(t, nil)
	gate := make(chan struct{})
	e.idp.mu.Lock()
	e.idp.gate = gate
	e.idp.mu.Unlock()

	run := func(tok string, n int) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = e.authenticate(tok) })
		}
		// Let the callers pile up behind the held fetch, then release it.
		deadline := time.Now().Add(5 * time.Second)
		for e.idp.fetched.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		close(gate)
		wg.Wait()
		return errs
	}
	for i, err := range run(e.token(t, e.claims()), 50) {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if d, f := e.idp.discovered.Load(), e.idp.fetched.Load(); d != 1 || f != 1 {
		t.Fatalf("%d discoveries and %d key set fetches for 50 concurrent callers, want 1 and 1", d, f)
	}

	// Concurrent kid misses after MinRefreshInterval share one refetch.
	gate = make(chan struct{})
	e.idp.mu.Lock()
	e.idp.gate = gate
	e.idp.mu.Unlock()
	e.idp.fetched.Store(0)
	e.clock.Advance(DefaultMinRefreshInterval)
	e.idp.setKeys(publicJWK(rsaKeys()[1], "rsa-2", nil))
	rotated := signJWS(t, mustJSON(map[string]any{"alg": "RS256", "kid": "rsa-2"}), mustJSON(e.claims()), "RS256", rsaKeys()[1])
	for i, err := range run(rotated, 50) {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if f := e.idp.fetched.Load(); f != 1 {
		t.Fatalf("%d refetches for 50 concurrent kid misses, want 1", f)
	}
}

func TestOIDCCallerCancel(t *testing.T) {
	e := newOIDCEnv(t, nil)
	gate := make(chan struct{})
	e.idp.mu.Lock()
	e.idp.gate = gate
	e.idp.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	tok := e.token(t, e.claims())
	go func() {
		_, err := e.auth.Authenticate(ctx, "Bearer "+tok)
		done <- err
	}()
	for e.idp.fetched.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wantReason(t, <-done, ReasonOIDCUnavailable, 503)
	// The shared fetch was not cancelled with the first caller.
	close(gate)
	if _, err := e.authenticate(tok); err != nil {
		t.Fatal(err)
	}
	if f := e.idp.fetched.Load(); f != 1 {
		t.Fatalf("%d fetches, want 1", f)
	}
}

func TestJWKSParsing(t *testing.T) {
	rsa1 := rsaKeys()[0]
	ec := ecKeys()["P-256"]
	raw, _ := ec.PublicKey.Bytes()
	offCurve := publicJWK(ec, "off", nil)
	y := append([]byte(nil), raw[33:]...)
	y[31] ^= 1
	offCurve["y"] = b64(y)
	small := publicJWK(rsa1, "small", nil)
	small["n"] = b64(rsa1.N.Bytes()[:128])
	evenE := publicJWK(rsa1, "even-e", nil)
	evenE["e"] = b64([]byte{1, 0, 0})
	withPrivate := publicJWK(ec, "private", nil)
	withPrivate["d"] = b64(make([]byte, 32))

	keys := []any{
		publicJWK(rsa1, "ok-rsa", nil),
		publicJWK(ec, "ok-ec", map[string]any{"key_ops": []string{"verify"}}),
		publicJWK(ec, "enc", map[string]any{"use": "enc"}),
		publicJWK(ec, "ops", map[string]any{"key_ops": []string{"encrypt"}}),
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		map[string]any{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(make([]byte, 32))},
		map[string]any{"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
		offCurve, small, evenE, withPrivate,
		map[string]any{"kty": "RSA", "kid": "no-n", "e": "AQAB"},
		map[string]any{"kty": 5},
		"not an object",
	}
	ks, err := parseJWKS(mustJSON(map[string]any{"keys": keys}), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range ks.keys {
		kids = append(kids, k.kid)
	}
	if strings.Join(kids, ",") != "ok-rsa,ok-ec" {
		t.Fatalf("usable keys %v, want ok-rsa, ok-ec", kids)
	}
	if _, ok := ks.keys[1].pub.(*ecdsa.PublicKey); !ok {
		t.Fatal("EC key type")
	}
	for _, doc := range []string{`[]`, `{}`, `{"keys":"x"}`, `nope`} {
		if _, err := parseJWKS([]byte(doc), discardLogger()); err == nil {
			t.Errorf("%s: parsed", doc)
		}
	}
}

func TestOIDCConfigErrors(t *testing.T) {
	base := func() OIDCConfig {
		return OIDCConfig{Issuer: "https://idp.example.com", Audience: "a", RoleMap: map[string]Role{"r": RoleReader}}
	}
	if _, err := New(Config{OIDC: ptr(base())}); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*OIDCConfig){
		"no issuer":        func(c *OIDCConfig) { c.Issuer = "" },
		"http issuer":      func(c *OIDCConfig) { c.Issuer = "http://idp.example.com" },
		"relative issuer":  func(c *OIDCConfig) { c.Issuer = "idp.example.com" },
		"issuer query":     func(c *OIDCConfig) { c.Issuer = "https://idp.example.com/?x=1" },
		"no audience":      func(c *OIDCConfig) { c.Audience = "" },
		"no role map":      func(c *OIDCConfig) { c.RoleMap = nil },
		"role none mapped": func(c *OIDCConfig) { c.RoleMap = map[string]Role{"r": RoleNone} },
		"alg none":         func(c *OIDCConfig) { c.Algorithms = []string{"RS256", "none"} },
		"alg HS256":        func(c *OIDCConfig) { c.Algorithms = []string{"HS256"} },
		"alg EdDSA":        func(c *OIDCConfig) { c.Algorithms = []string{"EdDSA"} },
		"negative leeway":  func(c *OIDCConfig) { c.Leeway = -time.Second },
		"negative refresh": func(c *OIDCConfig) { c.MinRefreshInterval = -time.Second },
		"http discovery":   func(c *OIDCConfig) { c.DiscoveryURL = "http://idp.example.com/.well-known/openid-configuration" },
	} {
		c := base()
		mod(&c)
		if _, err := New(Config{OIDC: &c}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, iss := range []string{"http://127.0.0.1:9", "http://localhost:9/realms/x", "http://[::1]:9"} {
		c := base()
		c.Issuer = iss
		if _, err := New(Config{OIDC: &c}); err != nil {
			t.Errorf("%s: %v", iss, err)
		}
	}
}

func TestErrorValues(t *testing.T) {
	e := &Error{Status: 401, Reason: ReasonInvalidToken, Msg: `bad "x"`, Err: context.Canceled}
	if e.Error() != `auth: invalid_token: bad "x": context canceled` {
		t.Fatal(e.Error())
	}
	if e.Unwrap() != context.Canceled || ReasonOf(e) != ReasonInvalidToken || ReasonOf(context.Canceled) != "" {
		t.Fatal("Unwrap/ReasonOf")
	}
	for _, tc := range []struct {
		e    *Error
		want string
	}{
		{&Error{Status: 401, Reason: ReasonMissingToken}, "Bearer"},
		{e, `Bearer error="invalid_token", error_description="bad ?x?"`},
		{&Error{Status: 403, Reason: ReasonNoRole, Msg: "m"}, `Bearer error="insufficient_scope", error_description="m"`},
		{&Error{Status: 503, Reason: ReasonOIDCUnavailable}, ""},
	} {
		if got := tc.e.WWWAuthenticate(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.e, got, tc.want)
		}
	}
	// Authenticate never returns a non-nil error holding a nil *Error.
	at, _ := ParseAdminTokens(strings.NewReader(hashLine("a", "reader", testToken(1))))
	a, _ := New(Config{AdminTokens: at})
	p, err := a.Authenticate(context.Background(), "Bearer "+testToken(1))
	if err != nil || p == nil {
		t.Fatalf("%v %v", p, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestPrefetch(t *testing.T) {
	e := newOIDCEnv(t, nil)
	if err := e.auth.Prefetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, f := e.idp.discovered.Load(), e.idp.fetched.Load(); d != 1 || f != 1 {
		t.Fatalf("%d discoveries, %d fetches", d, f)
	}
	if _, err := e.authenticate(e.token(t, e.claims())); err != nil {
		t.Fatal(err)
	}
	if f := e.idp.fetched.Load(); f != 1 {
		t.Fatalf("%d fetches after Prefetch, want 1", f)
	}
	var none *Authenticator
	if none.Enabled() || none.Prefetch(context.Background()) != nil {
		t.Fatal("nil Authenticator")
	}
	_, err := none.Authenticate(context.Background(), "Bearer "+testToken(1))
	wantReason(t, err, ReasonInvalidToken, 401)
}
