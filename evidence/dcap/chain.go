package dcap

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"
)

// window is a validity interval [notBefore, notAfter].
type window struct {
	notBefore, notAfter time.Time
	// what names the item that sets each bound, for error messages.
	firstNotBefore, firstNotAfter string
}

func fullWindow() window {
	return window{notBefore: time.Time{}, notAfter: time.Unix(1<<62, 0)}
}

func (w *window) narrow(nb, na time.Time, what string) {
	if nb.After(w.notBefore) {
		w.notBefore, w.firstNotBefore = nb, what
	}
	if na.Before(w.notAfter) {
		w.notAfter, w.firstNotAfter = na, what
	}
}

func (w window) contains(t time.Time) bool {
	return !t.Before(w.notBefore) && !t.After(w.notAfter)
}

// certName names a certificate in messages.
func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return fmt.Sprintf("serial %x", c.SerialNumber)
}

// verifiedChain is a chain whose signatures verified up to the trusted
// root. Time validity is checked separately (window), so the signature work
// can be cached.
type verifiedChain struct {
	certs  []*x509.Certificate // leaf first; the root appended if absent
	window window              // intersection of every certificate's validity
}

// checkChainAt reports a certificate outside its validity at t.
func checkChainAt(certs []*x509.Certificate, at time.Time) error {
	for _, c := range certs {
		if at.Before(c.NotBefore) {
			return newErr(CodeCertificateExpired, "certificate %s is not valid before %s (verification time %s)", certName(c), c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
		if at.After(c.NotAfter) {
			return newErr(CodeCertificateExpired, "certificate %s expired at %s (verification time %s)", certName(c), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// verifyChainSignatures checks that certs (leaf first) chains to root: each
// certificate is signed by the next, the issuers are CAs, and the chain ends
// at the root's public key (a presented copy of the root is accepted when
// its key is the root's; the root may also be left out). wantLen is the
// number of certificates below the root (2 for PCK chains: leaf and CA; 1
// for the TCB Signing chain). code classifies failures.
func verifyChainSignatures(certs []*x509.Certificate, root *x509.Certificate, wantLen int, code Code, what string) (*verifiedChain, error) {
	if len(certs) == 0 {
		return nil, newErr(code, "%s is empty", what)
	}
	chain := certs
	all := certs // every certificate whose validity counts, root included
	last := chain[len(chain)-1]
	if bytes.Equal(last.RawSubjectPublicKeyInfo, root.RawSubjectPublicKeyInfo) {
		// A copy of the root: it must be self-signed by the root key.
		if err := last.CheckSignature(last.SignatureAlgorithm, last.RawTBSCertificate, last.Signature); err != nil {
			return nil, wrapErr(code, err, "%s: root certificate %s has a bad self-signature", what, certName(last))
		}
		if !bytes.Equal(last.RawSubject, last.RawIssuer) {
			return nil, newErr(code, "%s: certificate %s carries the root key but is not self-issued", what, certName(last))
		}
		chain = chain[:len(chain)-1]
	} else {
		all = append(certs[:len(certs):len(certs)], root)
	}
	if len(chain) != wantLen {
		return nil, newErr(code, "%s has %d certificates below the root, want %d", what, len(chain), wantLen)
	}
	for i, c := range chain {
		parent := root
		if i+1 < len(chain) {
			parent = chain[i+1]
		}
		if !bytes.Equal(c.RawIssuer, parent.RawSubject) {
			return nil, newErr(code, "%s: certificate %s was not issued by %s", what, certName(c), certName(parent))
		}
		if err := c.CheckSignatureFrom(parent); err != nil {
			return nil, wrapErr(code, err, "%s: signature of certificate %s by %s does not verify", what, certName(c), certName(parent))
		}
	}
	if chain[0].IsCA {
		return nil, newErr(code, "%s: leaf certificate %s is a CA certificate", what, certName(chain[0]))
	}
	w := fullWindow()
	for _, c := range all {
		w.narrow(c.NotBefore, c.NotAfter, "certificate "+certName(c))
	}
	return &verifiedChain{certs: all, window: w}, nil
}

// crlState is a CRL whose signature verified against its issuing CA.
type crlState struct {
	crl     *CRL
	issuer  *x509.Certificate
	revoked map[string]bool // serial numbers, big-endian bytes
}

func (s *crlState) isRevoked(c *x509.Certificate) bool {
	return s.revoked[string(c.SerialNumber.Bytes())]
}

// verifyCRL finds the CRL issued by issuer among crls and checks its
// signature. It does not check time (see crlWindow).
func verifyCRL(crls []*CRL, issuer *x509.Certificate, what string) (*crlState, error) {
	for _, crl := range crls {
		if !bytes.Equal(crl.List.RawIssuer, issuer.RawSubject) {
			continue
		}
		if err := crl.List.CheckSignatureFrom(issuer); err != nil {
			return nil, wrapErr(CodeCollateralSignatureInvalid, err, "%s signature by %s does not verify", what, certName(issuer))
		}
		if crl.List.NextUpdate.IsZero() {
			return nil, newErr(CodeCollateralMalformed, "%s has no nextUpdate", what)
		}
		st := &crlState{crl: crl, issuer: issuer, revoked: make(map[string]bool, len(crl.List.RevokedCertificateEntries))}
		for _, e := range crl.List.RevokedCertificateEntries {
			st.revoked[string(e.SerialNumber.Bytes())] = true
		}
		return st, nil
	}
	return nil, newErr(CodeCollateralMissing, "%s (issued by %s) was not supplied", what, certName(issuer))
}

func checkCRLAt(s *crlState, what string, at time.Time) error {
	l := s.crl.List
	if at.Before(l.ThisUpdate) {
		return newErr(CodeCollateralExpired, "%s is not valid before its thisUpdate %s (verification time %s)", what, l.ThisUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	if at.After(l.NextUpdate) {
		return newErr(CodeCollateralExpired, "%s expired at its nextUpdate %s (verification time %s)", what, l.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}
