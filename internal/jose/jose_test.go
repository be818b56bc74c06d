package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// sign makes a JWS-shaped signature of msg (R ‖ S for EC).
func sign(t *testing.T, a Algorithm, key crypto.Signer, msg []byte) []byte {
	t.Helper()
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg)
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest(a.Hash, msg))
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 2*a.size)
		r.FillBytes(out[:a.size])
		s.FillBytes(out[a.size:])
		return out
	case *rsa.PrivateKey:
		var opts crypto.SignerOpts = a.Hash
		if a.pss {
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.Hash}
		}
		sig, err := k.Sign(rand.Reader, digest(a.Hash, msg), opts)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("key %T", key)
	return nil
}

func TestVerify(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[string]crypto.Signer{"RS256": rsaKey, "RS384": rsaKey, "RS512": rsaKey, "PS256": rsaKey, "PS384": rsaKey,
		"PS512": rsaKey, "ES256": p256, "ES384": p384, "ES512": p521, "EdDSA": ed}
	msg := []byte("header.payload")
	for name, key := range keys {
		a, ok := Lookup(name)
		if !ok {
			t.Fatalf("%s unknown", name)
		}
		sig := sign(t, a, key, msg)
		if valid, fits := a.Verify(key.Public(), msg, sig); !valid || !fits {
			t.Errorf("%s: valid %v fits %v", name, valid, fits)
		}
		if valid, _ := a.Verify(key.Public(), []byte("header.other"), sig); valid {
			t.Errorf("%s: verified another message", name)
		}
		for other, okey := range keys {
			if oa, _ := Lookup(other); oa.KeyType == a.KeyType && oa.Curve == a.Curve {
				continue // the same kind of key
			}
			if valid, fits := a.Verify(okey.Public(), msg, sig); valid || fits {
				t.Errorf("%s under a %s key: valid %v fits %v", name, other, valid, fits)
			}
		}
		if valid, _ := a.Verify(key.Public(), msg, sig[:len(sig)-1]); valid {
			t.Errorf("%s: a truncated signature verified", name)
		}
	}
	for _, bad := range []string{"none", "HS256", "rs256", ""} {
		if _, ok := Lookup(bad); ok {
			t.Errorf("Lookup(%q) succeeded", bad)
		}
	}
	if valid, fits := (Algorithm{}).Verify(nil, msg, nil); valid || fits {
		t.Error("zero algorithm with a nil key")
	}
}
