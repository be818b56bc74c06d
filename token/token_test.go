package token

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestSignAndPublish(t *testing.T) {
	k, err := GenerateKey(nil, "https://attest.example", now)
	if err != nil {
		t.Fatal(err)
	}
	if k.Certificate.Subject.String() != "CN=https://attest.example" || k.Certificate.Issuer.String() != "CN=https://attest.example" ||
		k.Certificate.CheckSignature(k.Certificate.SignatureAlgorithm, k.Certificate.RawTBSCertificate, k.Certificate.Signature) != nil || k.Private.N.BitLen() != 2048 || len(k.KID) != 44 {
		t.Fatalf("key %s: subject %s issuer %s bits %d", k.KID, k.Certificate.Subject, k.Certificate.Issuer, k.Private.N.BitLen())
	}
	tok, err := Sign(k, JWKSURL("https://attest.example"), map[string]any{"b": 1, "a": "x"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	// MAA's header, member for member and in MAA's order.
	if want := `{"alg":"RS256","jku":"https://attest.example/certs","kid":"` + k.KID + `","typ":"JWT"}`; string(h) != want {
		t.Errorf("header %s, want %s", h, want)
	}
	if b, _ := base64.RawURLEncoding.DecodeString(parts[1]); string(b) != `{"a":"x","b":1}` {
		t.Errorf("payload %s", b)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&k.Private.PublicKey, crypto.SHA256, d[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	set, _ := json.Marshal(KeySet([]*Key{k}))
	if want := `{"keys":[{"x5c":["` + base64.StdEncoding.EncodeToString(k.Certificate.Raw) + `"],"kid":"` + k.KID + `","kty":"RSA"}]}`; string(set) != want {
		t.Errorf("JWKS %s", set)
	}
	md := Metadata("https://attest.example", []string{"x-ms-ver"})
	if md.JWKSURI != "https://attest.example/certs" || md.Issuer != "https://attest.example" || md.RevocationEndpoint != "https://attest.example/revoke" {
		t.Errorf("metadata %+v", md)
	}
}

func TestParseKey(t *testing.T) {
	a, err := GenerateKey(nil, "https://a.example", now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey(nil, "https://a.example", now)
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := a.PKCS8()
	got, err := ParseKey(a.KID, AlgRS256, pa, a.Certificate.Raw, now, time.Time{})
	if err != nil || got.KID != a.KID || !got.Private.Equal(a.Private) {
		t.Fatalf("round trip: %v", err)
	}
	for name, call := range map[string]func() error{
		"cert of another key": func() error { _, err := ParseKey(a.KID, AlgRS256, pa, b.Certificate.Raw, now, time.Time{}); return err },
		"wrong kid":           func() error { _, err := ParseKey(b.KID, AlgRS256, pa, a.Certificate.Raw, now, time.Time{}); return err },
		"alg":                 func() error { _, err := ParseKey(a.KID, "ES256", pa, a.Certificate.Raw, now, time.Time{}); return err },
		"garbage key": func() error {
			_, err := ParseKey(a.KID, AlgRS256, []byte("x"), a.Certificate.Raw, now, time.Time{})
			return err
		},
		"garbage cert": func() error { _, err := ParseKey(a.KID, AlgRS256, pa, []byte("x"), now, time.Time{}); return err },
	} {
		if call() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Sign(nil, "", nil); err == nil {
		t.Error("Sign without a key")
	}
}

func TestUnsecuredJWS(t *testing.T) {
	s, err := UnsecuredJWS(map[string]string{"AttestationPolicy": "x"})
	if err != nil || s != "eyJhbGciOiJub25lIn0.eyJBdHRlc3RhdGlvblBvbGljeSI6IngifQ." {
		t.Fatalf("%q %v", s, err)
	}
}
