package simulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"time"
)

// Subject names. Intel's PKI uses "Intel SGX Root CA", "Intel SGX PCK
// Platform CA", "Intel SGX PCK Processor CA", "Intel SGX TCB Signing" and
// "Intel SGX PCK Certificate"; the simulator keeps the layout and says
// "attestd Simulated" so that nobody mistakes its certificates for Intel's.
const (
	rootCN        = "attestd Simulated SGX Root CA"
	platformCACN  = "attestd Simulated SGX PCK Platform CA"
	processorCACN = "attestd Simulated SGX PCK Processor CA"
	tcbSigningCN  = "attestd Simulated SGX TCB Signing"
	pckLeafCN     = "attestd Simulated SGX PCK Certificate"
	simOrg        = "attestd Simulator (insecure, for development only)"
)

// Fixed validity of every simulated certificate except the deliberately
// expired PCK certificate. Fixed, not relative to now, so that artefacts
// minted from one seed on different days chain together. Both ends lie
// before 2050 so that they encode as UTCTime, as Intel's do.
var (
	certNotBefore    = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter     = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
	expiredNotAfter  = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	oidSGXExtension  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oidSGXTCB        = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	oidSGXConfigBase = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7}
)

// issuer is a certificate with its private key.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// pki is the simulated PKI: the trusted root and everything below it, plus
// the keys the faults need (a second, unrelated root; a revoked Platform
// CA; a key that is not the TCB Signing key).
type pki struct {
	root        issuer
	platformCA  issuer
	processorCA issuer
	tcbSigning  issuer
	// revokedCA has the Platform CA's name but its own key and serial; the
	// root CRL lists it (revoked-intermediate-ca).
	revokedCA issuer
	// strangerRoot and strangerCA form a complete Intel-shaped PKI that
	// nothing trusts (unknown-root).
	strangerRoot issuer
	strangerCA   issuer
	// wrongTCBKey signs TCB Info that claims to come from the TCB Signing
	// certificate (tcb-info-wrong-key).
	wrongTCBKey *ecdsa.PrivateKey
	// pckKey is the platform's PCK key; every PCK certificate variant
	// certifies it.
	pckKey *ecdsa.PrivateKey
	// revokedPCKSerial is the serial of the PCK certificate that every PCK
	// CRL lists (revoked-pck-certificate).
	revokedPCKSerial *big.Int
}

// deterministicSigner signs with RFC 6979 nonces whatever random source
// the caller passes, so that certificates and CRLs are byte-identical for
// one seed.
type deterministicSigner struct{ key *ecdsa.PrivateKey }

func (d deterministicSigner) Public() crypto.PublicKey { return &d.key.PublicKey }
func (d deterministicSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.key.Sign(nil, digest, opts)
}

func newPKI(seed string) (*pki, error) {
	p := &pki{}
	var err error
	keys := []struct {
		dst   **ecdsa.PrivateKey
		label string
	}{
		{&p.root.key, "root"}, {&p.platformCA.key, "platform-ca"}, {&p.processorCA.key, "processor-ca"},
		{&p.tcbSigning.key, "tcb-signing"}, {&p.revokedCA.key, "revoked-platform-ca"},
		{&p.strangerRoot.key, "stranger-root"}, {&p.strangerCA.key, "stranger-ca"},
		{&p.wrongTCBKey, "wrong-tcb-signing"}, {&p.pckKey, "pck"},
	}
	for _, k := range keys {
		if *k.dst, err = deriveKey(seed, k.label); err != nil {
			return nil, err
		}
	}
	if p.revokedPCKSerial, err = deriveSerial(seed, "pck/revoked"); err != nil {
		return nil, err
	}
	if err := p.root.selfSign(seed, "root", rootCN); err != nil {
		return nil, err
	}
	if err := p.strangerRoot.selfSign(seed, "stranger-root", rootCN); err != nil {
		return nil, err
	}
	for _, ca := range []struct {
		dst    *issuer
		parent *issuer
		label  string
		cn     string
	}{
		{&p.platformCA, &p.root, "platform-ca", platformCACN},
		{&p.processorCA, &p.root, "processor-ca", processorCACN},
		{&p.revokedCA, &p.root, "revoked-platform-ca", platformCACN},
		{&p.strangerCA, &p.strangerRoot, "stranger-ca", platformCACN},
	} {
		if err := ca.dst.issueCA(seed, ca.label, ca.cn, ca.parent); err != nil {
			return nil, err
		}
	}
	serial, err := deriveSerial(seed, "tcb-signing")
	if err != nil {
		return nil, err
	}
	p.tcbSigning.cert, err = createCert(&x509.Certificate{
		SerialNumber: serial,
		Subject:      simName(tcbSigningCN),
		NotBefore:    certNotBefore, NotAfter: certNotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
	}, &p.root, &p.tcbSigning.key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("TCB Signing certificate: %w", err)
	}
	return p, nil
}

func simName(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{simOrg}, Country: []string{"ZZ"}}
}

func (i *issuer) selfSign(seed, label, cn string) error {
	serial, err := deriveSerial(seed, label)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: simName(cn),
		NotBefore: certNotBefore, NotAfter: certNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
	}
	tmpl.SubjectKeyId = subjectKeyID(&i.key.PublicKey)
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &i.key.PublicKey, deterministicSigner{i.key})
	if err != nil {
		return fmt.Errorf("%s certificate: %w", label, err)
	}
	i.cert, err = x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%s certificate: %w", label, err)
	}
	return nil
}

func (i *issuer) issueCA(seed, label, cn string, parent *issuer) error {
	serial, err := deriveSerial(seed, label)
	if err != nil {
		return err
	}
	i.cert, err = createCert(&x509.Certificate{
		SerialNumber: serial, Subject: simName(cn),
		NotBefore: certNotBefore, NotAfter: certNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}, parent, &i.key.PublicKey)
	if err != nil {
		return fmt.Errorf("%s certificate: %w", label, err)
	}
	return nil
}

// subjectKeyID is SHA-256 of the public key point, truncated to 160 bits
// (RFC 7093 method 1). Set explicitly because crypto/x509's own choice
// depends on the Go version and GODEBUG, and one seed must give the same
// bytes everywhere.
func subjectKeyID(pub *ecdsa.PublicKey) []byte {
	point, err := pub.Bytes()
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(point)
	return sum[:20]
}

func createCert(tmpl *x509.Certificate, parent *issuer, pub *ecdsa.PublicKey) (*x509.Certificate, error) {
	tmpl.SubjectKeyId = subjectKeyID(pub)
	der, err := x509.CreateCertificate(nil, tmpl, parent.cert, pub, deterministicSigner{parent.key})
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// pckSpec says what a PCK certificate certifies.
type pckSpec struct {
	label      string // serial derivation label
	issuer     *issuer
	fmspc      [6]byte
	components [16]uint8
	pcesvn     uint16
	notAfter   time.Time
	serial     *big.Int // nil derives one from label
}

// issuePCK issues a PCK certificate for the platform's PCK key with Intel's
// SGX extension.
func (s *Simulator) issuePCK(spec pckSpec) (*x509.Certificate, error) {
	serial := spec.serial
	if serial == nil {
		var err error
		if serial, err = deriveSerial(s.seed, "pck/"+spec.label); err != nil {
			return nil, err
		}
	}
	ext, err := s.sgxExtension(spec)
	if err != nil {
		return nil, err
	}
	notAfter := spec.notAfter
	if notAfter.IsZero() {
		notAfter = certNotAfter
	}
	cert, err := createCert(&x509.Certificate{
		SerialNumber: serial, Subject: simName(pckLeafCN),
		NotBefore: certNotBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: oidSGXExtension, Value: ext}},
	}, spec.issuer, &s.pki.pckKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("PCK certificate %s: %w", spec.label, err)
	}
	return cert, nil
}

// sgxEntry is one OID/value pair of the SGX extension.
type sgxEntry struct {
	ID    asn1.ObjectIdentifier
	Value any
}

// sgxExtension encodes the extension value: a SEQUENCE of (OID, value)
// pairs, the TCB and configuration entries being nested sequences of the
// same shape.
func (s *Simulator) sgxExtension(spec pckSpec) ([]byte, error) {
	sub := func(arc int) asn1.ObjectIdentifier {
		return append(append(asn1.ObjectIdentifier{}, oidSGXExtension...), arc)
	}
	var tcb []sgxEntry
	for i, c := range spec.components {
		tcb = append(tcb, sgxEntry{append(append(asn1.ObjectIdentifier{}, oidSGXTCB...), i+1), int(c)})
	}
	tcb = append(tcb,
		sgxEntry{append(append(asn1.ObjectIdentifier{}, oidSGXTCB...), 17), int(spec.pcesvn)},
		sgxEntry{append(append(asn1.ObjectIdentifier{}, oidSGXTCB...), 18), spec.components[:]},
	)
	entries := []sgxEntry{
		{sub(1), s.platform.PPID[:]},
		{sub(2), tcb},
		{sub(3), s.platform.PCEID[:]},
		{sub(4), spec.fmspc[:]},
	}
	if s.platform.CA == ProcessorCA {
		entries = append(entries, sgxEntry{sub(5), asn1.Enumerated(0)})
	} else {
		conf := func(arc int, v bool) sgxEntry {
			return sgxEntry{append(append(asn1.ObjectIdentifier{}, oidSGXConfigBase...), arc), v}
		}
		entries = append(entries,
			sgxEntry{sub(5), asn1.Enumerated(1)},
			sgxEntry{sub(6), s.platformInstanceID[:]},
			sgxEntry{sub(7), []sgxEntry{conf(1, false), conf(2, true), conf(3, true)}},
		)
	}
	der, err := asn1.Marshal(entries)
	if err != nil {
		return nil, fmt.Errorf("encode SGX extension: %w", err)
	}
	return der, nil
}

// crl issues a CRL of is listing serials, valid from thisUpdate for the
// collateral lifetime.
func crl(is *issuer, number int64, thisUpdate time.Time, serials ...*big.Int) ([]byte, error) {
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: thisUpdate,
		NextUpdate: thisUpdate.Add(collateralLifetime),
	}
	for _, sn := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: sn, RevocationTime: certNotBefore,
		})
	}
	der, err := x509.CreateRevocationList(nil, tmpl, is.cert, deterministicSigner{is.key})
	if err != nil {
		return nil, fmt.Errorf("CRL of %s: %w", is.cert.Subject.CommonName, err)
	}
	return der, nil
}
