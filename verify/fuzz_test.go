package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"github.com/attestd/attestd/internal/testvectors"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/verify"
)

const fuzzIssuer = "https://fuzz.attestd.example"

// fuzzKeySet holds fixed keys, the same in every fuzz worker process, so that
// seed tokens signed in one process verify in the others.
type fuzzKeySet struct {
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
	jwks []byte
}

var (
	fuzzOnce sync.Once
	fuzzKS   fuzzKeySet
)

func fuzzKeys() *fuzzKeySet {
	fuzzOnce.Do(func() {
		b, err := os.ReadFile("testdata/fuzz-rsa-key.pem")
		if err != nil {
			panic(err)
		}
		block, _ := pem.Decode(b)
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			panic(err)
		}
		fuzzKS.rsa = k.(*rsa.PrivateKey)
		scalar := sha256.Sum256([]byte("attestd fuzz P-256 key"))
		fuzzKS.ec, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar[:])
		if err != nil {
			panic(err)
		}
		seed := sha256.Sum256([]byte("attestd fuzz Ed25519 key"))
		fuzzKS.ed = ed25519.NewKeyFromSeed(seed[:])
		ecX, ecY := ecXY(&fuzzKS.ec.PublicKey)
		fuzzKS.jwks = jwksOf(
			map[string]any{"kid": "fuzz-rsa", "kty": "RSA", "n": b64(fuzzKS.rsa.N.Bytes()), "e": b64(big.NewInt(int64(fuzzKS.rsa.E)).Bytes())},
			map[string]any{"kid": "fuzz-ec", "kty": "EC", "crv": "P-256", "x": b64(ecX), "y": b64(ecY)},
			map[string]any{"kid": "fuzz-ed", "kty": "OKP", "crv": "Ed25519", "x": b64(fuzzKS.ed.Public().(ed25519.PublicKey))},
		)
	})
	return &fuzzKS
}

func fuzzClaims() map[string]any {
	return map[string]any{
		"iss": fuzzIssuer, "iat": base.Unix(), "nbf": base.Unix(), "exp": base.Add(8 * time.Hour).Unix(),
		"x-ms-attestation-type": "sgx", "x-ms-sgx-svn": 1,
	}
}

// independentlySigned checks, without package verify, that token's
// signature is valid under the fuzz key its kid names.
func independentlySigned(ks *fuzzKeySet, token string) bool {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return false
	}
	input, sig64 := token[:i], token[i+1:]
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if err != nil {
		return false
	}
	h64, _, _ := strings.Cut(input, ".")
	hb, err := base64.RawURLEncoding.DecodeString(h64)
	if err != nil {
		return false
	}
	var hdr struct{ Alg, Kid string }
	if json.Unmarshal(hb, &hdr) != nil {
		return false
	}
	d := sha256.Sum256([]byte(input))
	switch {
	case hdr.Alg == "RS256" && hdr.Kid == "fuzz-rsa":
		return rsa.VerifyPKCS1v15(&ks.rsa.PublicKey, crypto.SHA256, d[:], sig) == nil
	case hdr.Alg == "PS256" && hdr.Kid == "fuzz-rsa":
		return rsa.VerifyPSS(&ks.rsa.PublicKey, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case hdr.Alg == "ES256" && hdr.Kid == "fuzz-ec" && len(sig) == 64:
		return ecdsa.Verify(&ks.ec.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case hdr.Alg == "EdDSA" && hdr.Kid == "fuzz-ed":
		return ed25519.Verify(ks.ed.Public().(ed25519.PublicKey), []byte(input), sig)
	}
	return false
}

// FuzzVerify feeds arbitrary strings to Verify against a static key set.
// Verify must never panic, and anything it accepts must be signed by one of
// the test keys (checked with the crypto packages directly), be from the
// configured issuer and be unexpired.
func FuzzVerify(f *testing.F) {
	ks := fuzzKeys()
	for _, alg := range []struct {
		alg, kid string
		key      crypto.Signer
	}{
		{"RS256", "fuzz-rsa", ks.rsa}, {"PS256", "fuzz-rsa", ks.rsa},
		{"ES256", "fuzz-ec", ks.ec}, {"EdDSA", "fuzz-ed", ks.ed},
	} {
		hdr := map[string]any{"alg": alg.alg, "kid": alg.kid, "typ": "JWT", "jku": fuzzIssuer + "/certs"}
		good := sign(hdr, fuzzClaims(), alg.key, nil)
		f.Add(good)
		c := fuzzClaims()
		c[verify.SimulatedClaim] = true
		f.Add(sign(hdr, c, alg.key, nil))
		c = fuzzClaims()
		c["exp"] = 1.5
		f.Add(sign(hdr, c, alg.key, nil))
		hdr["kid"] = "fuzz-unknown"
		f.Add(sign(hdr, fuzzClaims(), alg.key, nil))
	}
	f.Add(sign(map[string]any{"alg": "none", "kid": "fuzz-rsa"}, fuzzClaims(), nil, nil))
	f.Add(sign(map[string]any{"alg": "HS256", "kid": "fuzz-rsa"}, fuzzClaims(), nil, ks.rsa.N.Bytes()))
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	if dir, ok := testvectors.LookupRecordings(); ok {
		for _, rt := range loadRecordedTokens(f, dir) {
			f.Add(rt.token)
		}
	}

	v, err := verify.New(fuzzIssuer,
		verify.WithKeySet(ks.jwks),
		verify.WithAlgorithms("RS256", "PS256", "ES256", "EdDSA"),
		verify.WithClock(func() time.Time { return base }),
		verify.WithExpectedClaims(map[string]any{"x-ms-attestation-type": "sgx"}))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		tok, err := v.Verify(ctx, token)
		if err != nil {
			var ve *verify.Error
			if !errors.As(err, &ve) || verify.CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if !independentlySigned(ks, token) {
			t.Fatalf("accepted a token not signed by the test keys: %q", token)
		}
		if tok.Raw != token || tok.Claims["iss"] != fuzzIssuer || tok.Claims[verify.SimulatedClaim] != nil && tok.Claims[verify.SimulatedClaim] != false {
			t.Fatalf("accepted claims %v", tok.Claims)
		}
		exp, ok := tok.Claims["exp"].(float64)
		if !ok || exp+60 <= float64(base.Unix()) {
			t.Fatalf("accepted exp %v", tok.Claims["exp"])
		}
	})
}
