// Package jose holds the one implementation of JWS signature
// verification (RFC 7515/7518) that attestd's token verifier, its
// management-document parser and its bearer-token authenticator share.
// Which algorithms each of them accepts is their own allow-list; this
// package only knows how to check a signature under a given algorithm.
package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
)

// Algorithm is a JWS signature algorithm.
type Algorithm struct {
	Name string
	// KeyType is the JWK kty of the keys it takes: "RSA", "EC" or "OKP".
	KeyType string
	// Curve is the JWK crv for EC and OKP algorithms.
	Curve string
	Hash  crypto.Hash // zero for EdDSA, which hashes internally
	pss   bool
	size  int // EC: bytes of R and of S
}

// Lookup returns a signature algorithm by its JWS name. Symmetric
// algorithms (HS*) are absent on purpose: keyed with a public key, an HMAC
// proves nothing; "none" is absent because it is not a signature.
func Lookup(name string) (Algorithm, bool) {
	switch name {
	case "RS256":
		return Algorithm{Name: name, KeyType: "RSA", Hash: crypto.SHA256}, true
	case "RS384":
		return Algorithm{Name: name, KeyType: "RSA", Hash: crypto.SHA384}, true
	case "RS512":
		return Algorithm{Name: name, KeyType: "RSA", Hash: crypto.SHA512}, true
	case "PS256":
		return Algorithm{Name: name, KeyType: "RSA", Hash: crypto.SHA256, pss: true}, true
	case "PS384":
		return Algorithm{Name: name, KeyType: "RSA", Hash: crypto.SHA384, pss: true}, true
	case "PS512":
		return Algorithm{Name: name, KeyType: "RSA", Hash: crypto.SHA512, pss: true}, true
	case "ES256":
		return Algorithm{Name: name, KeyType: "EC", Curve: "P-256", Hash: crypto.SHA256, size: 32}, true
	case "ES384":
		return Algorithm{Name: name, KeyType: "EC", Curve: "P-384", Hash: crypto.SHA384, size: 48}, true
	case "ES512":
		return Algorithm{Name: name, KeyType: "EC", Curve: "P-521", Hash: crypto.SHA512, size: 66}, true
	case "EdDSA":
		return Algorithm{Name: name, KeyType: "OKP", Curve: "Ed25519"}, true
	}
	return Algorithm{}, false
}

// Verify reports whether sig is a's signature of signingInput under pub.
// fits is false, and valid false, when pub's type or curve does not fit
// the algorithm; a mismatch is a failure, never a panic.
func (a Algorithm) Verify(pub crypto.PublicKey, signingInput, sig []byte) (valid, fits bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if a.KeyType != "RSA" {
			return false, false
		}
		d := digest(a.Hash, signingInput)
		if a.pss {
			// RFC 7518 §3.5: the salt is as long as the hash.
			opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.Hash}
			return rsa.VerifyPSS(k, a.Hash, d, sig, opts) == nil, true
		}
		return rsa.VerifyPKCS1v15(k, a.Hash, d, sig) == nil, true
	case *ecdsa.PublicKey:
		if a.KeyType != "EC" || k.Curve == nil || k.Curve.Params().Name != a.Curve {
			return false, false
		}
		// RFC 7518 §3.4: R ‖ S, each the curve's size, not ASN.1 DER.
		if len(sig) != 2*a.size {
			return false, true
		}
		r := new(big.Int).SetBytes(sig[:a.size])
		s := new(big.Int).SetBytes(sig[a.size:])
		return ecdsa.Verify(k, digest(a.Hash, signingInput), r, s), true
	case ed25519.PublicKey:
		if a.KeyType != "OKP" {
			return false, false
		}
		return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, signingInput, sig), true
	}
	return false, false
}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return d[:]
	}
	return nil
}
