package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSignAndVerifyDocuments(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  string
	}{{"rsa", rsaKey, "RS256"}, {"p256", p256, "ES256"}, {"p384", p384, "ES384"}} {
		t.Run(tc.name, func(t *testing.T) {
			cert := selfSigned(t, tc.key, tc.name)
			payload := PolicyPayload("version=1.0; authorizationrules{=> permit();}; issuancerules{};")
			s, err := SignJWS(tc.key, []*x509.Certificate{cert}, payload)
			if err != nil {
				t.Fatal(err)
			}
			j, err := ParseJWS(s)
			if err != nil {
				t.Fatal(err)
			}
			if j.Header.Alg != tc.alg || j.Unsecured() || !j.Chain[0].Equal(cert) {
				t.Fatalf("header %+v", j.Header)
			}
			if err := j.VerifySignature(); err != nil {
				t.Fatalf("VerifySignature: %v", err)
			}
			text, err := PolicyFromPayload(j.Payload)
			if err != nil || !strings.HasPrefix(text, "version=1.0") {
				t.Fatalf("PolicyFromPayload = %q, %v", text, err)
			}
			// Any change to the signed bytes breaks the signature.
			parts := strings.Split(s, ".")
			other := base64.RawURLEncoding.EncodeToString(PolicyPayload("version=1.0; authorizationrules{=> deny();}; issuancerules{};"))
			tampered, err := ParseJWS(parts[0] + "." + other + "." + parts[2])
			if err != nil {
				t.Fatal(err)
			}
			if err := tampered.VerifySignature(); err == nil {
				t.Error("a tampered payload verified")
			}
			// A certificate swapped into x5c does not verify either.
			otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if tc.name == "rsa" {
				otherKey = nil
			}
			if otherKey != nil {
				swapped := selfSigned(t, otherKey, "other")
				h, _ := json.Marshal(map[string]any{"alg": tc.alg, "x5c": []string{base64.StdEncoding.EncodeToString(swapped.Raw)}})
				j2, err := ParseJWS(base64.RawURLEncoding.EncodeToString(h) + "." + parts[1] + "." + parts[2])
				if err == nil {
					if err := j2.VerifySignature(); err == nil {
						t.Error("a signature verified under a swapped certificate")
					}
				}
			}
		})
	}
}

func TestParseJWSRejects(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	hdr := func(s string) string { return enc([]byte(s)) }
	p := enc(PolicyPayload("x"))
	for _, tc := range []struct{ name, jws, want string }{
		{"two parts", hdr(`{"alg":"none"}`) + "." + p, "three"},
		{"four parts", hdr(`{"alg":"none"}`) + "." + p + "..", "three"},
		{"padded header", enc([]byte(`{"alg":"none"}`)) + "=." + p + ".", "base64url"},
		{"header not JSON", hdr(`alg`) + "." + p + ".", "JSON"},
		{"header array", hdr(`["alg"]`) + "." + p + ".", "object"},
		{"duplicate alg", hdr(`{"alg":"none","alg":"RS256"}`) + "." + p + ".", "twice"},
		{"none with signature", hdr(`{"alg":"none"}`) + "." + p + "." + enc([]byte("sig")), "empty signature"},
		{"none with x5c", hdr(`{"alg":"none","x5c":["AA=="]}`) + "." + p + ".", "x5c"},
		{"HS256", hdr(`{"alg":"HS256"}`) + "." + p + "." + enc([]byte("sig")), "not accepted"},
		{"signed without x5c", hdr(`{"alg":"RS256"}`) + "." + p + "." + enc([]byte("sig")), "x5c"},
		{"jwk header", hdr(`{"alg":"RS256","jwk":{"kty":"RSA"}}`) + "." + p + "." + enc([]byte("sig")), "jwk"},
		{"crit", hdr(`{"alg":"RS256","crit":["b64"]}`) + "." + p + "." + enc([]byte("sig")), "critical"},
		{"bad x5c", hdr(`{"alg":"RS256","x5c":["!!"]}`) + "." + p + "." + enc([]byte("sig")), "base64"},
		{"x5c not a cert", hdr(`{"alg":"RS256","x5c":["AAAA"]}`) + "." + p + "." + enc([]byte("sig")), "X.509"},
		{"too big", strings.Repeat("a", MaxJWSBytes+1), "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJWS(tc.jws)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseJWS: got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestUnsecuredDocuments(t *testing.T) {
	if got := UnsecuredDocument(nil); got != "eyJhbGciOiJub25lIn0.." {
		t.Errorf("reset document = %q", got)
	}
	j, err := ParseJWS(UnsecuredDocument(PolicyPayload("hello")))
	if err != nil || !j.Unsecured() {
		t.Fatal(err)
	}
	if err := j.VerifySignature(); err == nil {
		t.Error("an unsigned JWS verified")
	}
	// The recorded unsigned PUT of the AAD instance (maa-compat.md §2.2):
	// its hash is the recorded x-ms-policy-token-hash.
	const recorded = "eyJhbGciOiJub25lIn0.eyJBdHRlc3RhdGlvblBvbGljeSI6ImRtVnljMmx2YmoweExqQTdJR0YxZEdodmNtbDZZWFJwYjI1eWRXeGxjM3M5UGlCd1pYSnRhWFFvS1R0OU95QnBjM04xWVc1alpYSjFiR1Z6ZTMwNyJ9."
	if got := DocumentHash(recorded); got != "c6sEJQItV50OeP9IrP_bzywAMOVvj5uDPbklA_bwdYQ" {
		t.Errorf("DocumentHash(recorded PUT) = %s", got)
	}
	if UnsecuredDocument(PolicyPayload("version=1.0; authorizationrules{=> permit();}; issuancerules{};")) != recorded {
		t.Error("UnsecuredDocument(PolicyPayload) differs from the JS SDK's recorded body")
	}
	rj, err := ParseJWS(recorded)
	if err != nil {
		t.Fatal(err)
	}
	if text, err := PolicyFromPayload(rj.Payload); err != nil || text != "version=1.0; authorizationrules{=> permit();}; issuancerules{};" {
		t.Errorf("recorded policy = %q, %v", text, err)
	}
}

func TestCertificateDocuments(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := selfSigned(t, key, "signer")
	got, err := CertificateFromPayload(CertificatePayload(cert))
	if err != nil || !got.Equal(cert) {
		t.Fatalf("round trip: %v", err)
	}
	jwk := NewCertificateJWK(cert)
	for _, name := range []string{"maa-policyCertificate", "x-ms-policyCertificate"} {
		b, _ := json.Marshal(map[string]any{name: jwk})
		if c, err := CertificateFromPayload(b); err != nil || !c.Equal(cert) {
			t.Errorf("claim name %s: %v", name, err)
		}
	}
	for _, bad := range []string{`{}`, `[]`, `{"policyCertificate":{"kty":"EC"}}`, `{"policyCertificate":{"x5c":["AA"]}}`,
		`{"policyCertificate":{"x5c":[]}}`, `{"policyCertificate":1}`} {
		if _, err := CertificateFromPayload([]byte(bad)); err == nil {
			t.Errorf("CertificateFromPayload(%s) accepted", bad)
		}
	}
	if len(Thumbprint(cert)) != 40 || strings.ToUpper(Thumbprint(cert)) != Thumbprint(cert) {
		t.Errorf("Thumbprint = %s", Thumbprint(cert))
	}
}

func FuzzParseJWS(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0..")
	f.Add("eyJhbGciOiJub25lIn0.eyJBdHRlc3RhdGlvblBvbGljeSI6ImRtVnljMmx2YmoweExqQTdJR0YxZEdodmNtbDZZWFJwYjI1eWRXeGxjM3M5UGlCd1pYSnRhWFFvS1R0OU95QnBjM04xWVc1alpYSjFiR1Z6ZTMwNyJ9.")
	f.Add("eyJhbGciOiJSUzI1NiIsIng1YyI6WyJBQUFBIl19.e30.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseJWS(s)
		if err != nil {
			return
		}
		if !j.Unsecured() {
			_ = j.VerifySignature()
		}
		_, _ = PolicyFromPayload(j.Payload)
		_, _ = CertificateFromPayload(j.Payload)
	})
}

// TestCaseVariantMembers: a member that differs only in case is refused,
// in the header and in both payloads, so that what attestd reads is what
// any other parser shows the signer.
func TestCaseVariantMembers(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	p := enc(PolicyPayload("x"))
	for _, h := range []string{`{"alg":"none","ALG":"RS256"}`, `{"ALG":"none"}`, `{"Alg":"none"}`} {
		if _, err := ParseJWS(enc([]byte(h)) + "." + p + "."); err == nil {
			t.Errorf("header %s accepted", h)
		}
	}
	good := base64.RawURLEncoding.EncodeToString([]byte("benign"))
	evil := base64.RawURLEncoding.EncodeToString([]byte("evil"))
	for _, body := range []string{
		`{"AttestationPolicy":"` + good + `","attestationpolicy":"` + evil + `"}`,
		`{"attestationpolicy":"` + evil + `"}`,
		`{"AttestationPolicy":"` + good + `","extra":"` + strings.Repeat("a", 100) + `"}`,
		`{"AttestationPolicy":1}`,
	} {
		if text, err := PolicyFromPayload([]byte(body)); err == nil {
			t.Errorf("policy payload %s accepted as %q", body, text)
		}
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a := base64.StdEncoding.EncodeToString(selfSigned(t, key, "a").Raw)
	for _, body := range []string{
		`{"policyCertificate":{"kty":"EC","x5c":["` + a + `"],"X5C":["` + a + `"]}}`,
		`{"policyCertificate":{"kty":"EC","X5C":["` + a + `"]}}`,
		`{"PolicyCertificate":{"kty":"EC","x5c":["` + a + `"]}}`,
	} {
		if _, err := CertificateFromPayload([]byte(body)); err == nil {
			t.Errorf("certificate payload %.60s accepted", body)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if j := NewCertificateJWK(selfSigned(t, p384, "p384")); j.Alg != "ES384" {
		t.Errorf("P-384 JWK alg %s", j.Alg)
	}
}
