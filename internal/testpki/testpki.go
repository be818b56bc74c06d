// Package testpki makes certificates and keys for tests: policy signers,
// CAs that issue them, and TLS servers. It is for tests only.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Signer is a key with its certificate.
type Signer struct {
	Key  crypto.Signer
	Cert *x509.Certificate
	// Chain is Cert followed by the intermediates up to (not including) the
	// root that issued it.
	Chain []*x509.Certificate
}

// Options shape a certificate.
type Options struct {
	// EC makes a P-256 key; the default is RSA-2048.
	EC        bool
	CA        bool
	NotBefore time.Time // default: an hour ago
	NotAfter  time.Time // default: a year after NotBefore
}

func newKey(tb testing.TB, ec bool) crypto.Signer {
	tb.Helper()
	if ec {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func template(tb testing.TB, name string, o Options) *x509.Certificate {
	tb.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		tb.Fatal(err)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(365 * 24 * time.Hour)
	}
	t := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: o.NotBefore, NotAfter: o.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: o.CA, DNSNames: []string{"localhost"}}
	if o.CA {
		t.KeyUsage |= x509.KeyUsageCertSign
	}
	return t
}

// SelfSigned makes a self-signed certificate named name.
func SelfSigned(tb testing.TB, name string, o Options) *Signer {
	tb.Helper()
	key := newKey(tb, o.EC)
	t := template(tb, name, o)
	der, err := x509.CreateCertificate(rand.Reader, t, t, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &Signer{Key: key, Cert: cert, Chain: []*x509.Certificate{cert}}
}

// Issue makes a certificate named name signed by s (which must be a CA).
func (s *Signer) Issue(tb testing.TB, name string, o Options) *Signer {
	tb.Helper()
	key := newKey(tb, o.EC)
	t := template(tb, name, o)
	der, err := x509.CreateCertificate(rand.Reader, t, s.Cert, key.Public(), s.Key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	chain := []*x509.Certificate{cert}
	if len(s.Chain) > 1 || s.Cert.Subject.String() != s.Cert.Issuer.String() {
		chain = append(chain, s.Chain...)
	}
	return &Signer{Key: key, Cert: cert, Chain: chain}
}

// CertPEM is the certificate in PEM.
func (s *Signer) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Cert.Raw})
}

// KeyPEM is the private key in PKCS #8 PEM.
func (s *Signer) KeyPEM(tb testing.TB) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(s.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes the key and certificate PEMs into dir as
// <base>.key and <base>.pem and returns their paths.
func (s *Signer) WriteFiles(tb testing.TB, dir, base string) (keyPath, certPath string) {
	tb.Helper()
	keyPath, certPath = filepath.Join(dir, base+".key"), filepath.Join(dir, base+".pem")
	if err := os.WriteFile(keyPath, s.KeyPEM(tb), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(certPath, s.CertPEM(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return keyPath, certPath
}
