package dcap

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
)

// Collateral is everything besides the quote that DCAP verification needs:
// TCB Info, QE Identity, their issuer chain, and the CRLs of the Root CA and
// of the PCK CA. It is assembled from one or more sources (LoadCollateral,
// Merge) and must not be modified once it has been passed to a Verifier:
// verifiers cache their work under its content fingerprint.
type Collateral struct {
	TCBInfo    *TCBInfo
	QEIdentity *QEIdentity
	// TCBInfoIssuerChain and QEIdentityIssuerChain are the TCB Signing
	// certificate and (optionally) the root, leaf first.
	TCBInfoIssuerChain    *CertChain
	QEIdentityIssuerChain *CertChain
	// PCKCRLIssuerChain is informational: the PCK CRL is always checked
	// against the CA in the quote's own PCK chain.
	PCKCRLIssuerChain *CertChain
	// CRLs holds the Root CA CRL and the PCK CA CRL (Platform or Processor),
	// in any order; the verifier matches each to its issuer.
	CRLs []*CRL

	fpOnce sync.Once
	fp     [32]byte
}

// CertChain is a parsed certificate chain with the bytes it came from.
type CertChain struct {
	Raw   []byte // as supplied (PEM or DER)
	Certs []*x509.Certificate
}

// CRL is a parsed certificate revocation list with its DER bytes.
type CRL struct {
	DER  []byte
	List *x509.RevocationList
}

// Format names the collateral formats LoadCollateral recognises.
type Format string

// Collateral formats.
const (
	FormatDCAPQVLBundle   Format = "dcap-qvl-bundle"
	FormatPCSTCBInfo      Format = "pcs-tcbinfo"
	FormatPCSQEIdentity   Format = "pcs-qeidentity"
	FormatQVECollateral   Format = "qve-collateral-dump"
	FormatAttestdBundle   Format = "attestd-bundle"
	FormatPEM             Format = "pem"
	FormatDERCRL          Format = "der-crl"
	FormatDERCert         Format = "der-cert"
	FormatHexCRL          Format = "hex-crl"
	maxCollateralFileSize        = 8 << 20
)

// Fingerprint is the SHA-256 over every collateral item's bytes, in a
// fixed order. Verifiers key their caches by it.
func (c *Collateral) Fingerprint() [32]byte {
	c.fpOnce.Do(func() {
		h := sha256.New()
		put := func(tag string, b []byte) {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(b)))
			h.Write([]byte(tag))
			h.Write(n[:])
			h.Write(b)
		}
		if c.TCBInfo != nil {
			put("tcbinfo", c.TCBInfo.Raw)
			put("tcbinfosig", c.TCBInfo.Signature)
		}
		if c.QEIdentity != nil {
			put("qeid", c.QEIdentity.Raw)
			put("qeidsig", c.QEIdentity.Signature)
		}
		for _, ch := range []*CertChain{c.TCBInfoIssuerChain, c.QEIdentityIssuerChain, c.PCKCRLIssuerChain} {
			if ch != nil {
				for _, cert := range ch.Certs {
					put("cert", cert.Raw)
				}
			}
			put("end", nil)
		}
		for _, crl := range c.CRLs {
			put("crl", crl.DER)
		}
		h.Sum(c.fp[:0])
	})
	return c.fp
}

// Merge returns a collateral holding c's items and, where c lacks one,
// other's. CRLs are merged by issuer, c's first. Neither input is changed.
func (c *Collateral) Merge(other *Collateral) *Collateral {
	out := &Collateral{
		TCBInfo: c.TCBInfo, QEIdentity: c.QEIdentity,
		TCBInfoIssuerChain: c.TCBInfoIssuerChain, QEIdentityIssuerChain: c.QEIdentityIssuerChain,
		PCKCRLIssuerChain: c.PCKCRLIssuerChain,
	}
	if out.TCBInfo == nil {
		out.TCBInfo = other.TCBInfo
	}
	if out.QEIdentity == nil {
		out.QEIdentity = other.QEIdentity
	}
	if out.TCBInfoIssuerChain == nil {
		out.TCBInfoIssuerChain = other.TCBInfoIssuerChain
	}
	if out.QEIdentityIssuerChain == nil {
		out.QEIdentityIssuerChain = other.QEIdentityIssuerChain
	}
	if out.PCKCRLIssuerChain == nil {
		out.PCKCRLIssuerChain = other.PCKCRLIssuerChain
	}
	out.CRLs = append(out.CRLs, c.CRLs...)
	for _, crl := range other.CRLs {
		dup := false
		for _, have := range out.CRLs {
			if bytes.Equal(have.List.RawIssuer, crl.List.RawIssuer) {
				dup = true
				break
			}
		}
		if !dup {
			out.CRLs = append(out.CRLs, crl)
		}
	}
	return out
}

// MergeCollateral merges several sources, earlier ones taking precedence.
func MergeCollateral(parts ...*Collateral) *Collateral {
	out := &Collateral{}
	for _, p := range parts {
		if p != nil {
			out = out.Merge(p)
		}
	}
	return out
}

func collateralErr(format string, args ...any) error {
	return newErr(CodeCollateralMalformed, format, args...)
}

// LoadCollateral detects the format of data and loads what it holds. It
// returns the format it detected.
func LoadCollateral(data []byte) (*Collateral, Format, error) {
	if len(data) > maxCollateralFileSize {
		return nil, "", collateralErr("collateral is %d bytes, more than the %d byte limit", len(data), maxCollateralFileSize)
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		return loadJSONCollateral(trimmed)
	case len(data) >= 8 && looksLikeQVEDump(data):
		c, err := LoadQVECollateral(data)
		return c, FormatQVECollateral, err
	case bytes.Contains(data, []byte("-----BEGIN ")):
		c, err := loadPEM(data)
		return c, FormatPEM, err
	case len(data) > 0 && data[0] == 0x30:
		return loadDER(data)
	case isHexText(trimmed):
		der, err := hex.DecodeString(string(trimmed))
		if err != nil {
			return nil, "", collateralErr("hex collateral: %v", err)
		}
		crl, err := parseCRL(der)
		if err != nil {
			return nil, "", err
		}
		return &Collateral{CRLs: []*CRL{crl}}, FormatHexCRL, nil
	}
	return nil, "", collateralErr("unrecognised collateral format (expected PCS JSON, a dcap-qvl bundle, an sgx_ql_qve_collateral_t dump, PEM, DER or hex)")
}

func isHexText(b []byte) bool {
	if len(b) == 0 || len(b)%2 != 0 {
		return false
	}
	for _, c := range b {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(c)) {
			return false
		}
	}
	return true
}

func loadJSONCollateral(data []byte) (*Collateral, Format, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, "", collateralErr("collateral JSON: %v", err)
	}
	// The bundles are checked first: attestd's bundle holds a "tcbInfo"
	// member too (the PCS body, nested).
	switch {
	case probe["attestdCollateral"] != nil:
		c, err := loadAttestdBundle(data)
		return c, FormatAttestdBundle, err
	case probe["tcb_info"] != nil:
		c, err := loadDCAPQVLBundle(data)
		return c, FormatDCAPQVLBundle, err
	case probe["tcbInfo"] != nil:
		t, err := parsePCSTCBInfo(probe)
		if err != nil {
			return nil, "", err
		}
		return &Collateral{TCBInfo: t}, FormatPCSTCBInfo, nil
	case probe["enclaveIdentity"] != nil:
		q, err := parsePCSQEIdentity(probe)
		if err != nil {
			return nil, "", err
		}
		return &Collateral{QEIdentity: q}, FormatPCSQEIdentity, nil
	}
	return nil, "", collateralErr("collateral JSON has none of tcbInfo, enclaveIdentity, tcb_info, attestdCollateral")
}

func parsePCSTCBInfo(probe map[string]json.RawMessage) (*TCBInfo, error) {
	sig, err := jsonHexField(probe, "signature")
	if err != nil {
		return nil, collateralErr("TCB Info response: %v", err)
	}
	t, err := ParseTCBInfo(probe["tcbInfo"], sig)
	if err != nil {
		return nil, collateralErr("%v", err)
	}
	return t, nil
}

func parsePCSQEIdentity(probe map[string]json.RawMessage) (*QEIdentity, error) {
	sig, err := jsonHexField(probe, "signature")
	if err != nil {
		return nil, collateralErr("QE Identity response: %v", err)
	}
	q, err := ParseQEIdentity(probe["enclaveIdentity"], sig)
	if err != nil {
		return nil, collateralErr("%v", err)
	}
	return q, nil
}

func jsonHexField(m map[string]json.RawMessage, key string) ([]byte, error) {
	raw, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("%s is missing", key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s is not a string", key)
	}
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%s is not hex", key)
	}
	return b, nil
}

// dcapQVLBundle is dcap-qvl's QuoteCollateralV3 JSON.
type dcapQVLBundle struct {
	PCKCRLIssuerChain     string `json:"pck_crl_issuer_chain"`
	RootCACRL             string `json:"root_ca_crl"`
	PCKCRL                string `json:"pck_crl"`
	TCBInfoIssuerChain    string `json:"tcb_info_issuer_chain"`
	TCBInfo               string `json:"tcb_info"`
	TCBInfoSignature      string `json:"tcb_info_signature"`
	QEIdentityIssuerChain string `json:"qe_identity_issuer_chain"`
	QEIdentity            string `json:"qe_identity"`
	QEIdentitySignature   string `json:"qe_identity_signature"`
}

func loadDCAPQVLBundle(data []byte) (*Collateral, error) {
	var b dcapQVLBundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, collateralErr("dcap-qvl collateral bundle: %v", err)
	}
	c := &Collateral{}
	if err := fillFromStrings(c, b.TCBInfo, b.TCBInfoSignature, b.QEIdentity, b.QEIdentitySignature,
		b.TCBInfoIssuerChain, b.QEIdentityIssuerChain, b.PCKCRLIssuerChain, b.RootCACRL, b.PCKCRL); err != nil {
		return nil, fmt.Errorf("dcap-qvl collateral bundle: %w", err)
	}
	return c, nil
}

// attestdBundle is attestd's own self-contained collateral file: the same
// items as Intel's APIs serve, each as served (PCS bodies verbatim,
// PEM chains, hex DER CRLs).
type attestdBundle struct {
	Version               int             `json:"attestdCollateral"`
	TCBInfo               json.RawMessage `json:"tcbInfo"`    // PCS body {"tcbInfo":...,"signature":...}
	QEIdentity            json.RawMessage `json:"qeIdentity"` // PCS body {"enclaveIdentity":...,"signature":...}
	TCBInfoIssuerChain    string          `json:"tcbInfoIssuerChain"`
	QEIdentityIssuerChain string          `json:"qeIdentityIssuerChain"`
	PCKCRLIssuerChain     string          `json:"pckCrlIssuerChain"`
	RootCACRL             string          `json:"rootCaCrl"`
	PCKCRL                string          `json:"pckCrl"`
}

func loadAttestdBundle(data []byte) (*Collateral, error) {
	var b attestdBundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, collateralErr("attestd collateral bundle: %v", err)
	}
	if b.Version != 1 {
		return nil, collateralErr("attestd collateral bundle version %d is not supported (1 is)", b.Version)
	}
	c := &Collateral{}
	if len(b.TCBInfo) > 0 {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(b.TCBInfo, &probe); err != nil {
			return nil, collateralErr("attestd collateral bundle: tcbInfo: %v", err)
		}
		t, err := parsePCSTCBInfo(probe)
		if err != nil {
			return nil, err
		}
		c.TCBInfo = t
	}
	if len(b.QEIdentity) > 0 {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(b.QEIdentity, &probe); err != nil {
			return nil, collateralErr("attestd collateral bundle: qeIdentity: %v", err)
		}
		q, err := parsePCSQEIdentity(probe)
		if err != nil {
			return nil, err
		}
		c.QEIdentity = q
	}
	if err := fillFromStrings(c, "", "", "", "", b.TCBInfoIssuerChain, b.QEIdentityIssuerChain, b.PCKCRLIssuerChain, b.RootCACRL, b.PCKCRL); err != nil {
		return nil, fmt.Errorf("attestd collateral bundle: %w", err)
	}
	return c, nil
}

// fillFromStrings sets the items given as text: TCB Info / QE Identity JSON
// with hex signatures, PEM chains, and CRLs in hex, PEM or raw DER text.
// Empty strings are skipped.
func fillFromStrings(c *Collateral, tcbInfo, tcbSig, qeID, qeSig, tcbChain, qeChain, pckChain, rootCRL, pckCRL string) error {
	if tcbInfo != "" {
		sig, err := hex.DecodeString(strings.TrimSpace(tcbSig))
		if err != nil {
			return collateralErr("tcb_info_signature is not hex")
		}
		t, err := ParseTCBInfo([]byte(tcbInfo), sig)
		if err != nil {
			return collateralErr("%v", err)
		}
		c.TCBInfo = t
	}
	if qeID != "" {
		sig, err := hex.DecodeString(strings.TrimSpace(qeSig))
		if err != nil {
			return collateralErr("qe_identity_signature is not hex")
		}
		q, err := ParseQEIdentity([]byte(qeID), sig)
		if err != nil {
			return collateralErr("%v", err)
		}
		c.QEIdentity = q
	}
	for _, ch := range []struct {
		text string
		dst  **CertChain
		name string
	}{{tcbChain, &c.TCBInfoIssuerChain, "TCB Info issuer chain"}, {qeChain, &c.QEIdentityIssuerChain, "QE Identity issuer chain"}, {pckChain, &c.PCKCRLIssuerChain, "PCK CRL issuer chain"}} {
		if ch.text == "" {
			continue
		}
		chain, err := ParsePEMChain([]byte(ch.text))
		if err != nil {
			return collateralErr("%s: %v", ch.name, err)
		}
		*ch.dst = chain
	}
	for _, s := range []struct{ text, name string }{{rootCRL, "Root CA CRL"}, {pckCRL, "PCK CRL"}} {
		if s.text == "" {
			continue
		}
		crl, err := decodeCRLText([]byte(s.text))
		if err != nil {
			return collateralErr("%s: %v", s.name, err)
		}
		c.CRLs = append(c.CRLs, crl)
	}
	return nil
}

// decodeCRLText accepts a CRL as hex text, PEM, or raw DER bytes (Intel's
// APIs have served all three).
func decodeCRLText(b []byte) (*CRL, error) {
	t := bytes.TrimRight(bytes.TrimSpace(b), "\x00")
	if bytes.Contains(t, []byte("-----BEGIN")) {
		blk, _ := pem.Decode(t)
		if blk == nil {
			return nil, errors.New("bad PEM")
		}
		return parseCRL(blk.Bytes)
	}
	if isHexText(t) {
		der, err := hex.DecodeString(string(t))
		if err != nil {
			return nil, err
		}
		return parseCRL(der)
	}
	return parseCRL(t)
}

func parseCRL(der []byte) (*CRL, error) {
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, collateralErr("CRL does not parse: %v", err)
	}
	return &CRL{DER: l.Raw, List: l}, nil
}

// ParsePEMChain parses one or more PEM certificates, in order.
func ParsePEMChain(data []byte) (*CertChain, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
		if len(certs) > 8 {
			return nil, errors.New("more than 8 certificates in a chain")
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return &CertChain{Raw: data, Certs: certs}, nil
}

func loadPEM(data []byte) (*Collateral, error) {
	c := &Collateral{}
	var certs []*x509.Certificate
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, collateralErr("PEM certificate %d: %v", len(certs)+1, err)
			}
			certs = append(certs, cert)
		case "X509 CRL":
			crl, err := parseCRL(blk.Bytes)
			if err != nil {
				return nil, err
			}
			c.CRLs = append(c.CRLs, crl)
		}
	}
	if len(certs) == 0 && len(c.CRLs) == 0 {
		return nil, collateralErr("PEM collateral holds no certificate or CRL")
	}
	if len(certs) > 0 {
		assignChain(c, &CertChain{Raw: data, Certs: certs})
	}
	return c, nil
}

// assignChain gives a chain its role by its first certificate: a signing
// (non-CA) leaf makes it the TCB Info and QE Identity issuer chain, a CA
// that is not self-issued makes it the PCK CRL issuer chain. A lone root
// certificate carries nothing the verifier uses (the root is pinned).
func assignChain(c *Collateral, chain *CertChain) {
	leaf := chain.Certs[0]
	switch {
	case !leaf.IsCA:
		c.TCBInfoIssuerChain = chain
		c.QEIdentityIssuerChain = chain
	case !bytes.Equal(leaf.RawIssuer, leaf.RawSubject):
		c.PCKCRLIssuerChain = chain
	}
}

func loadDER(data []byte) (*Collateral, Format, error) {
	if crl, err := x509.ParseRevocationList(data); err == nil {
		return &Collateral{CRLs: []*CRL{{DER: crl.Raw, List: crl}}}, FormatDERCRL, nil
	}
	cert, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, "", collateralErr("DER collateral is neither a CRL nor a certificate: %v", err)
	}
	c := &Collateral{}
	assignChain(c, &CertChain{Raw: data, Certs: []*x509.Certificate{cert}})
	return c, FormatDERCert, nil
}

// Layout of Intel's sgx_ql_qve_collateral_t as dumped from memory: two
// 32-bit words (version, TEE type), then seven {pointer u64, size u32, pad
// u32} entries, then the NUL-terminated blobs in entry order.
const (
	qveHeaderSize = 8 + 7*16
	qveEntries    = 7
)

func looksLikeQVEDump(data []byte) bool {
	if len(data) < qveHeaderSize {
		return false
	}
	v := binary.LittleEndian.Uint32(data[0:4])
	tee := binary.LittleEndian.Uint32(data[4:8])
	return (v == 1 || v == 3 || v == 4) && (tee == 0 || tee == 0x81)
}

// LoadQVECollateral loads a memory dump of Intel's sgx_ql_qve_collateral_t.
func LoadQVECollateral(data []byte) (*Collateral, error) {
	if !looksLikeQVEDump(data) {
		return nil, collateralErr("not an sgx_ql_qve_collateral_t dump (bad version or TEE type, or shorter than %d bytes)", qveHeaderSize)
	}
	blobs := make([][]byte, qveEntries)
	first := binary.LittleEndian.Uint64(data[8:16])
	for i := range qveEntries {
		e := data[8+16*i:]
		ptr := binary.LittleEndian.Uint64(e[0:8])
		size := uint64(binary.LittleEndian.Uint32(e[8:12]))
		if ptr < first {
			return nil, collateralErr("sgx_ql_qve_collateral_t entry %d points before the first blob", i)
		}
		off := ptr - first + qveHeaderSize
		if off > uint64(len(data)) || size > uint64(len(data))-off {
			return nil, collateralErr("sgx_ql_qve_collateral_t entry %d (offset %d, size %d) runs past the end of the %d byte dump", i, off, size, len(data))
		}
		blobs[i] = bytes.TrimRightFunc(data[off:off+size], func(r rune) bool { return r == 0 || unicode.IsSpace(r) })
	}
	// Order: pck_crl_issuer_chain, root_ca_crl, pck_crl, tcb_info_issuer_chain,
	// tcb_info, qe_identity_issuer_chain, qe_identity.
	c := &Collateral{}
	if err := fillFromStrings(c, "", "", "", "", string(blobs[3]), string(blobs[5]), string(blobs[0]), string(blobs[1]), string(blobs[2])); err != nil {
		return nil, fmt.Errorf("sgx_ql_qve_collateral_t: %w", err)
	}
	for _, item := range []struct {
		blob []byte
		name string
	}{{blobs[4], "tcb_info"}, {blobs[6], "qe_identity"}} {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(item.blob, &probe); err != nil {
			return nil, collateralErr("sgx_ql_qve_collateral_t %s: %v", item.name, err)
		}
		if probe["tcbInfo"] != nil {
			t, err := parsePCSTCBInfo(probe)
			if err != nil {
				return nil, err
			}
			c.TCBInfo = t
		} else {
			q, err := parsePCSQEIdentity(probe)
			if err != nil {
				return nil, err
			}
			c.QEIdentity = q
		}
	}
	return c, nil
}
