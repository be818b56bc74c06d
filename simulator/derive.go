package simulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// derivationSalt versions the derivation: changing how anything is derived
// from the seed must change it, so that old and new artefacts never mix
// silently under one seed.
const derivationSalt = "attestd simulator derivation v1"

// deriveBytes expands the seed into n bytes bound to label. Every secret and
// every identifier of the simulated platform comes from here, which is what
// makes one seed give one PKI and one platform on every run and machine.
func deriveBytes(seed, label string, n int) ([]byte, error) {
	b, err := hkdf.Key(sha256.New, []byte(seed), []byte(derivationSalt), label, n)
	if err != nil {
		return nil, fmt.Errorf("derive %s: %w", label, err)
	}
	return b, nil
}

// deriveKey derives a P-256 private key for label. ecdsa.GenerateKey cannot
// be used: since Go 1.26 it ignores its random source, so a seeded reader
// would not make it deterministic. Instead the seed is expanded to a scalar;
// the rare candidate that is zero or not below the group order is skipped
// by bumping a counter, so every seed yields a key.
func deriveKey(seed, label string) (*ecdsa.PrivateKey, error) {
	for attempt := range 8 {
		scalar, err := deriveBytes(seed, fmt.Sprintf("key/%s/%d", label, attempt), 32)
		if err != nil {
			return nil, err
		}
		key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
		if err == nil {
			return key, nil
		}
	}
	// Eight consecutive out-of-range candidates have probability ~2^-256.
	return nil, fmt.Errorf("derive key %s: no valid scalar", label)
}

// deriveSerial derives a positive 16-byte certificate serial number.
func deriveSerial(seed, label string) (*big.Int, error) {
	b, err := deriveBytes(seed, "serial/"+label, 16)
	if err != nil {
		return nil, err
	}
	// Clear the sign bit (DER INTEGERs are signed) and set the next one so
	// that the serial always encodes in exactly 16 bytes, as Intel's do in
	// a fixed width.
	b[0] = b[0]&0x7f | 0x40
	return new(big.Int).SetBytes(b), nil
}

// signRaw signs SHA-256(msg) and returns the signature as raw r||s, the
// encoding of quotes and of Intel's collateral documents. Signing with a nil
// random source makes crypto/ecdsa use RFC 6979 deterministic nonces, so
// the same seed and inputs give byte-identical artefacts.
func signRaw(key *ecdsa.PrivateKey, msg []byte) ([64]byte, error) {
	var out [64]byte
	digest := sha256.Sum256(msg)
	der, err := key.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return out, fmt.Errorf("sign: %w", err)
	}
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil {
		return out, fmt.Errorf("sign: parse ECDSA signature: %w", err)
	}
	if len(rest) != 0 || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 256 || sig.S.BitLen() > 256 {
		return out, errors.New("sign: ECDSA signature is not a P-256 signature")
	}
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}

// rawPublicKey returns the public key as X||Y, the attestation key encoding
// of quotes.
func rawPublicKey(key *ecdsa.PrivateKey) ([64]byte, error) {
	var out [64]byte
	point, err := key.PublicKey.Bytes()
	if err != nil {
		return out, fmt.Errorf("encode public key: %w", err)
	}
	if len(point) != 65 || point[0] != 4 {
		return out, errors.New("encode public key: not an uncompressed P-256 point")
	}
	copy(out[:], point[1:])
	return out, nil
}
