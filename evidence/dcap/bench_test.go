package dcap_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/internal/testvectors"
)

// The benchmarks measure verification of real quotes at their vectors'
// verification time. "warm" is the steady state of a service: one
// verifier, collateral loaded and verified once, the platform's PCK chain
// and QE report already verified; what remains per quote is parsing, the
// quote signature (a fresh signature over fresh data, which no cache can
// skip), hashing and the TCB evaluation. "cold" pays for everything: a new
// verifier and collateral parsed from its files on every iteration.
// BenchmarkECDSAP256Verify is the floor: the one P-256 verification of the
// same quote's signature. docs/benchmarks.md records the figures.

// benchSet returns the first COMPLETE set of kind that verifies.
func benchSet(b *testing.B, kind string) (quote []byte, files [][]byte, at string) {
	b.Helper()
	dir, sets := testvectors.Sets(b)
	for _, s := range sets {
		if s.Kind != kind || !s.Complete() || s.Expected.Error != "" {
			continue
		}
		raw, _, err := dcap.DecodeQuote(testvectors.Read(b, dir, s.Evidence.Path))
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range s.Collateral {
			files = append(files, testvectors.Read(b, dir, c.Path))
		}
		return raw, files, s.VerificationTime
	}
	b.Fatalf("no verifiable %s vector", kind)
	return nil, nil, ""
}

func loadFiles(b *testing.B, files [][]byte) *dcap.Collateral {
	b.Helper()
	parts := make([]*dcap.Collateral, 0, len(files))
	for _, f := range files {
		c, _, err := dcap.LoadCollateral(f)
		if err != nil {
			b.Fatal(err)
		}
		parts = append(parts, c)
	}
	return dcap.MergeCollateral(parts...)
}

func benchVerify(b *testing.B, kind string) {
	quote, files, atText := benchSet(b, kind)
	at := atTime(b, atText)
	clock := dcap.WithClock(func() time.Time { return at })
	ctx := context.Background()

	b.Run("warm", func(b *testing.B) {
		col := loadFiles(b, files)
		v := dcap.NewVerifier(clock)
		if _, err := v.VerifyQuote(ctx, quote, col); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := v.VerifyQuote(ctx, quote, col); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			col := loadFiles(b, files)
			v := dcap.NewVerifier(clock)
			if _, err := v.VerifyQuote(ctx, quote, col); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifySGX(b *testing.B) { benchVerify(b, "sgx") }
func BenchmarkVerifyTDX(b *testing.B) { benchVerify(b, "tdx") }

// BenchmarkECDSAP256Verify verifies the SGX vector's quote signature with
// its attestation key, already parsed: the cost warm verification cannot
// avoid.
func BenchmarkECDSAP256Verify(b *testing.B) {
	raw, _, _ := benchSet(b, "sgx")
	q, err := dcap.ParseQuote(raw)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, q.AttestationKey[:]...))
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256(q.SignedData)
	r := new(big.Int).SetBytes(q.Signature[:32])
	s := new(big.Int).SetBytes(q.Signature[32:])
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(pub, digest[:], r, s) {
			b.Fatal("signature does not verify")
		}
	}
}
