package auth

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

// FuzzAuthenticate feeds arbitrary Authorization values to an
// Authenticator with admin tokens and OIDC both on. Whatever the input, it
// answers with a principal or an *Error of a known reason and status,
// never panics, and accepts nothing it was not given: no signature can be
// forged, so an accepted JWT has the signed content of a seed token, and an
// accepted admin token is one of the file's.
func FuzzAuthenticate(f *testing.F) {
	e := newOIDCEnv(f, func(c *OIDCConfig) { c.Algorithms = []string{"RS256", "PS256", "ES256", "ES384"} })
	e.idp.setKeys(
		publicJWK(rsaKeys()[0], "rsa-1", map[string]any{"use": "sig"}),
		publicJWK(ecKeys()["P-256"], "ec-1", nil),
		publicJWK(ecKeys()["P-384"], "ec-384", map[string]any{"alg": "ES384"}),
	)
	adminTokens := []string{testToken(1), testToken(2)}
	at, err := ParseAdminTokens(strings.NewReader(hashLine("ci", "contributor", adminTokens[0]) + "\n" + hashLine("ro", "reader", adminTokens[1]) + "\n"))
	if err != nil {
		f.Fatal(err)
	}
	// One Authenticator with both sources, sharing the env's provider.
	a, err := New(Config{AdminTokens: at, OIDC: &OIDCConfig{Issuer: e.idp.srv.URL, Audience: testAudience, RoleMap: testRoleMap, Algorithms: []string{"RS256", "PS256", "ES256", "ES384"}}, Clock: e.clock.Now, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}

	claims := e.claims("Attestation.Reader", "x")
	hdr := func(alg, kid string) []byte { return mustJSON(map[string]any{"alg": alg, "kid": kid, "typ": "JWT"}) }
	valid := []string{
		e.token(f, claims),
		signJWS(f, hdr("PS256", "rsa-1"), mustJSON(claims), "PS256", rsaKeys()[0]),
		signJWS(f, hdr("ES256", "ec-1"), mustJSON(e.claims("Attestation.Contributor")), "ES256", ecKeys()["P-256"]),
		signJWS(f, hdr("ES384", "ec-384"), mustJSON(e.claims("Attestation.Attester")), "ES384", ecKeys()["P-384"]),
	}
	var signed []string // header.payload of every valid seed
	for _, tok := range valid {
		signed = append(signed, tok[:strings.LastIndexByte(tok, '.')])
		f.Add("Bearer " + tok)
	}
	for _, tok := range adminTokens {
		f.Add("Bearer " + tok)
	}
	c := e.claims()
	c["exp"] = 1
	for _, s := range []string{
		"",
		"Bearer",
		"Basic YTpi",
		"bearer " + testToken(3),
		"Bearer " + signJWS(f, []byte(`{"alg":"none"}`), mustJSON(claims), "none", nil),
		"Bearer " + signJWS(f, []byte(`{"alg":"RS256","kid":"rsa-1","kid":"ec-1"}`), mustJSON(claims), "RS256", rsaKeys()[0]),
		"Bearer " + signJWS(f, []byte(`{"alg":"HS256","kid":"rsa-1"}`), mustJSON(claims), "HS256", []byte("secret")),
		"Bearer " + signJWS(f, []byte(`{"alg":"RS256","kid":"rsa-1","crit":["x"]}`), mustJSON(claims), "RS256", rsaKeys()[0]),
		"Bearer " + e.token(f, c),
		"Bearer " + valid[0][:len(valid[0])-5],
		"Bearer e30.e30.e30",
		"Bearer a.b.c",
		"Bearer ...",
	} {
		f.Add(s)
	}

	reasons := []string{ReasonMissingToken, ReasonMalformedToken, ReasonInvalidToken, ReasonTokenExpired, ReasonTokenNotYetValid,
		ReasonWrongIssuer, ReasonWrongAudience, ReasonUnknownKey, ReasonUnsupportedAlgorithm, ReasonNoRole}
	f.Fuzz(func(t *testing.T, authorization string) {
		p, err := a.Authenticate(context.Background(), authorization)
		if err != nil {
			if p != nil {
				t.Fatal("a principal and an error")
			}
			var ae *Error
			if !asError(err, &ae) {
				t.Fatalf("%T %v", err, err)
			}
			if !slices.Contains(reasons, ae.Reason) {
				t.Fatalf("reason %q: %v", ae.Reason, err)
			}
			if want := 401; ae.Reason == ReasonNoRole {
				if ae.Status != 403 {
					t.Fatalf("status %d: %v", ae.Status, err)
				}
			} else if ae.Status != want {
				t.Fatalf("status %d: %v", ae.Status, err)
			}
			if h := ae.WWWAuthenticate(); strings.ContainsAny(h, "\r\n\x00") {
				t.Fatalf("header %q", h)
			}
			return
		}
		if p == nil || p.Role < RoleAttester || p.Role > RoleContributor {
			t.Fatalf("principal %+v", p)
		}
		_, tok, _ := strings.Cut(authorization, " ")
		tok = strings.Trim(tok, " \t")
		switch p.Method {
		case MethodAdminToken:
			if !slices.Contains(adminTokens, tok) {
				t.Fatalf("accepted admin token %q", tok)
			}
		case MethodOIDC:
			i := strings.LastIndexByte(tok, '.')
			if i < 0 || !slices.Contains(signed, tok[:i]) {
				t.Fatalf("accepted a JWT whose signed content is no seed's: %q", tok)
			}
		default:
			t.Fatalf("method %q", p.Method)
		}
	})
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

// FuzzParseAdminTokens checks that the admin token parser never panics and
// that what it accepts is well-formed.
func FuzzParseAdminTokens(f *testing.F) {
	f.Add([]byte(hashLine("ci", "contributor", testToken(1)) + "\n# c\n\n" + hashLine("r", "reader", testToken(2))))
	f.Add([]byte("ci reader sha256:00\n"))
	f.Add([]byte("#\r\n\tx  y   z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		at, err := ParseAdminTokens(bytes.NewReader(data))
		if err != nil {
			if at != nil {
				t.Fatal("tokens and an error")
			}
			return
		}
		names := map[string]bool{}
		for _, e := range at.Entries() {
			if checkTokenName(e.Name) != nil || e.Role < RoleAttester || e.Role > RoleContributor || names[e.Name] {
				t.Fatalf("entry %+v", e)
			}
			names[e.Name] = true
		}
	})
}

// FuzzParseJWKS checks that key set parsing never panics and keeps only
// usable keys.
func FuzzParseJWKS(f *testing.F) {
	f.Add(mustJSON(map[string]any{"keys": []any{publicJWK(rsaKeys()[0], "a", nil), publicJWK(ecKeys()["P-384"], "b", nil)}}))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"},{"kty":"RSA","n":"AQ","e":"AQAB"}]}`))
	log := discardLogger()
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseJWKS(data, log)
		if err != nil {
			return
		}
		for _, k := range ks.keys {
			if k.pub == nil || (k.kty != "RSA" && k.kty != "EC") {
				t.Fatalf("key %+v", k)
			}
		}
	})
}
