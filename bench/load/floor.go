package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/token"
)

// ecdsaPerAttestation is the number of ECDSA P-256 verifications a warm
// attestation performs. See evidence/dcap/verify.go (Verifier.Verify): the
// PCK chain is cached by its PEM bytes (pckChain), the collateral's
// signatures by the collateral's fingerprint (collateralState), the PCK CA
// CRL check per CA (pckCRL) and the QE report signature per PCK leaf and
// SHA-256(QE report || signature) (checkQEReport). Only the quote signature
// by the attestation key (verifyQuoteSignature) covers bytes that are new
// on every quote, so only it is verified every time.
const ecdsaPerAttestation = 1

// floorResult is the cost of the cryptography no attestation can avoid,
// measured on this machine in this run.
type floorResult struct {
	Workers   int     `json:"workers"`
	DurationS float64 `json:"duration_s"`
	// Ops and PerSec are for the combined unit of work: one RS256 token
	// signature and ECDSAPerAttestation P-256 verifications.
	Ops                 int64   `json:"ops"`
	PerSec              float64 `json:"attestations_per_s"`
	ECDSAPerAttestation int     `json:"ecdsa_verifications_per_attestation"`
	// The two parts measured alone, with the same number of workers;
	// the µs figures are per operation per core.
	RSASignPerSec     float64 `json:"rsa2048_sign_per_s"`
	ECDSAVerifyPerSec float64 `json:"p256_verify_per_s"`
	RSASignUS         float64 `json:"rsa2048_sign_us_per_core"`
	ECDSAVerifyUS     float64 `json:"p256_verify_us_per_core"`
	// OtherCPUS is CPU time other processes used during the combined
	// measurement (it should be near 0); StealCPUS is hypervisor steal.
	OtherCPUS float64 `json:"other_cpu_s"`
	StealCPUS float64 `json:"steal_cpu_s"`
}

// floorWork holds the inputs of the floor's operations: a fresh RSA-2048
// key (as attestd generates its token keys) and a real quote's
// attestation key, signed data and signature.
type floorWork struct {
	rsaKey      *rsa.PrivateKey
	tokenDigest [32]byte
	point       []byte
	quoteDigest [32]byte
	r, s        *big.Int
}

func newFloorWork(quote []byte) (*floorWork, error) {
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, token.RSAKeyBits)
	if err != nil {
		return nil, err
	}
	w := &floorWork{rsaKey: key}
	w.tokenDigest = sha256.Sum256([]byte("header.payload"))
	w.point = append([]byte{4}, q.AttestationKey[:]...)
	w.quoteDigest = sha256.Sum256(q.SignedData)
	w.r = new(big.Int).SetBytes(q.Signature[:32])
	w.s = new(big.Int).SetBytes(q.Signature[32:])
	if !w.verify() {
		return nil, errors.New("the sample quote's signature does not verify")
	}
	if err := w.sign(); err != nil {
		return nil, err
	}
	return w, nil
}

// sign is what token.Sign does besides encoding: RSASSA-PKCS1-v1_5 with
// SHA-256 (RS256).
func (w *floorWork) sign() error {
	_, err := rsa.SignPKCS1v15(nil, w.rsaKey, crypto.SHA256, w.tokenDigest[:])
	return err
}

// verify is what verifyQuoteSignature in evidence/dcap does besides
// hashing: parse the raw attestation key and verify the r||s signature.
func (w *floorWork) verify() bool {
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), w.point)
	if err != nil {
		return false
	}
	return ecdsa.Verify(pub, w.quoteDigest[:], w.r, w.s)
}

func (w *floorWork) attestation() error {
	if err := w.sign(); err != nil {
		return err
	}
	for range ecdsaPerAttestation {
		if !w.verify() {
			return errors.New("P-256 verification failed")
		}
	}
	return nil
}

// measureFloor runs the floor's work in workers goroutines: the combined
// unit for dur, then each part alone for a third of dur.
func measureFloor(ctx context.Context, quote []byte, workers int, dur time.Duration) (*floorResult, error) {
	w, err := newFloorWork(quote)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	res := &floorResult{Workers: workers, DurationS: dur.Seconds(), ECDSAPerAttestation: ecdsaPerAttestation}
	var perSec float64
	before := takeCPU(0)
	if res.Ops, perSec, err = rate(ctx, workers, dur, w.attestation); err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	use := before.until(takeCPU(0))
	res.PerSec, res.OtherCPUS, res.StealCPUS = perSec, use.Other, use.Steal
	part := max(dur/3, 200*time.Millisecond)
	if _, res.RSASignPerSec, err = rate(ctx, workers, part, w.sign); err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	verify := func() error {
		if !w.verify() {
			return errors.New("P-256 verification failed")
		}
		return nil
	}
	if _, res.ECDSAVerifyPerSec, err = rate(ctx, workers, part, verify); err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	res.RSASignUS = float64(workers) / res.RSASignPerSec * 1e6
	res.ECDSAVerifyUS = float64(workers) / res.ECDSAVerifyPerSec * 1e6
	return res, nil
}

// rate runs op in workers goroutines until dur has passed and returns the
// operations completed within dur and their rate.
func rate(ctx context.Context, workers int, dur time.Duration, op func() error) (int64, float64, error) {
	start := time.Now()
	end := start.Add(dur)
	counts := make([]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := op(); err != nil {
					errs[i] = err
					return
				}
				if time.Now().After(end) {
					return
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	var total int64
	for i := range workers {
		if errs[i] != nil {
			return 0, 0, errs[i]
		}
		total += counts[i]
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("no operation completed in %s", dur)
	}
	return total, float64(total) / dur.Seconds(), nil
}
