package dcap

import (
	"crypto/x509"
	_ "embed"
)

// intelSGXRootCADER is Intel's SGX Root CA certificate
// (SHA-256 44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3,
// valid 2018-05-21 .. 2049-12-31). Chains are anchored on its public key,
// so an older copy of the certificate with the same key also anchors.
//
//go:embed intel_sgx_root_ca.der
var intelSGXRootCADER []byte

// IntelSGXRootCA returns a fresh copy of the pinned Intel SGX Root CA.
func IntelSGXRootCA() *x509.Certificate {
	c, err := x509.ParseCertificate(intelSGXRootCADER)
	if err != nil {
		// The certificate is compiled in; a parse failure is a build defect.
		panic("dcap: embedded Intel SGX Root CA does not parse: " + err.Error())
	}
	return c
}
