package dcap

import (
	"encoding/binary"
	"fmt"
)

// TEEType is the header's TEE type field.
type TEEType uint32

// TEE types defined by Intel's quote format.
const (
	TEESGX TEEType = 0x00000000
	TEETDX TEEType = 0x00000081
)

func (t TEEType) String() string {
	switch t {
	case TEESGX:
		return "sgx"
	case TEETDX:
		return "tdx"
	}
	return fmt.Sprintf("tee(0x%x)", uint32(t))
}

// BodyType says which report a quote carries. Quote v5 names it explicitly;
// for v3 and v4 it follows from the TEE type.
type BodyType uint16

// Body types of quote v5 (the values are Intel's).
const (
	BodySGX  BodyType = 1 // SGX enclave report, 384 bytes
	BodyTD10 BodyType = 2 // TD report of TDX 1.0, 584 bytes
	BodyTD15 BodyType = 3 // TD report of TDX 1.5, 648 bytes
)

func (b BodyType) String() string {
	switch b {
	case BodySGX:
		return "sgx"
	case BodyTD10:
		return "td1.0"
	case BodyTD15:
		return "td1.5"
	}
	return fmt.Sprintf("body(%d)", uint16(b))
}

// Sizes of the fixed structures, from Intel's quote library API.
const (
	headerSize         = 48
	enclaveReportSize  = 384
	td10ReportSize     = 584
	td15ReportSize     = 648
	ecdsaSignatureSize = 64
	ecdsaPublicKeySize = 64
	// maxQuoteSize bounds what ParseQuote reads. Real quotes are about 5 KiB;
	// the limit only keeps a hostile length field from meaning anything.
	maxQuoteSize = 1 << 20
)

// attestationKeyECDSAP256 is the only attestation key type in use: ECDSA-256
// with P-256 (type 3, ECDSA-384 with P-384, was never shipped).
const attestationKeyECDSAP256 = 2

// Certification data types from Intel's quote format.
const (
	CertDataPPIDCleartext   = 1
	CertDataPPIDRSA2048     = 2
	CertDataPPIDRSA3072     = 3
	CertDataPCKCleartext    = 4
	CertDataPCKChain        = 5
	CertDataQEReport        = 6
	CertDataPlatformManifst = 7
)

// IntelQEVendorID is the QE vendor ID of Intel's quoting enclaves.
var IntelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// Header is the 48-byte quote header.
type Header struct {
	Version            uint16
	AttestationKeyType uint16
	TEEType            TEEType
	QESVN              uint16 // v3 only; reserved in v4/v5
	PCESVN             uint16 // v3 only; reserved in v4/v5
	QEVendorID         [16]byte
	UserData           [20]byte
}

// EnclaveReport is an SGX report body (the application enclave's report in
// an SGX quote, and the QE report in every quote).
type EnclaveReport struct {
	CPUSVN       [16]byte
	MiscSelect   uint32
	ISVExtProdID [16]byte
	Attributes   [16]byte
	MRENCLAVE    [32]byte
	MRSIGNER     [32]byte
	ConfigID     [64]byte
	ISVProdID    uint16
	ISVSVN       uint16
	ConfigSVN    uint16
	ISVFamilyID  [16]byte
	ReportData   [64]byte
	raw          []byte
}

// Raw returns the 384 report bytes as they appear in the quote.
func (r *EnclaveReport) Raw() []byte { return r.raw }

// SGX attribute flags (low 64 bits of ATTRIBUTES).
const (
	SGXAttrInit         = 1 << 0
	SGXAttrDebug        = 1 << 1
	SGXAttrMode64Bit    = 1 << 2
	SGXAttrProvisionKey = 1 << 4
	SGXAttrEINITToken   = 1 << 5
	SGXAttrKSS          = 1 << 7
)

// AttributeFlags returns the FLAGS half of ATTRIBUTES.
func (r *EnclaveReport) AttributeFlags() uint64 {
	return binary.LittleEndian.Uint64(r.Attributes[0:8])
}

// XFRM returns the XFRM half of ATTRIBUTES.
func (r *EnclaveReport) XFRM() uint64 { return binary.LittleEndian.Uint64(r.Attributes[8:16]) }

// Debug reports whether the enclave was launched in debug mode.
func (r *EnclaveReport) Debug() bool { return r.AttributeFlags()&SGXAttrDebug != 0 }

// TDReport is a TD report body (TDX 1.0, plus the TDX 1.5 fields).
type TDReport struct {
	TEETCBSVN      [16]byte
	MRSEAM         [48]byte
	MRSIGNERSEAM   [48]byte
	SEAMAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	MRTD           [48]byte
	MRCONFIGID     [48]byte
	MROWNER        [48]byte
	MROWNERCONFIG  [48]byte
	RTMR           [4][48]byte
	ReportData     [64]byte
	// TDX 1.5 only (body type 3).
	TEETCBSVN2  [16]byte
	MRSERVICETD [48]byte
	raw         []byte
}

// Raw returns the report bytes as they appear in the quote.
func (r *TDReport) Raw() []byte { return r.raw }

// TD attribute bits (TDX module ABI).
const (
	TDAttrDebug         = 1 << 0
	TDAttrSEPTVEDisable = 1 << 28
	TDAttrPKS           = 1 << 30
	TDAttrKL            = 1 << 31
	TDAttrPerfmon       = 1 << 63
)

// TDAttributeBits returns TD_ATTRIBUTES as an integer.
func (r *TDReport) TDAttributeBits() uint64 { return binary.LittleEndian.Uint64(r.TDAttributes[:]) }

// Debug reports whether the TD is debuggable (TUD.DEBUG).
func (r *TDReport) Debug() bool { return r.TDAttributeBits()&TDAttrDebug != 0 }

// Quote is a parsed DCAP quote. Byte slices alias the input of ParseQuote.
type Quote struct {
	Header   Header
	BodyType BodyType
	// Exactly one of Enclave and TD is set, by BodyType.
	Enclave *EnclaveReport
	TD      *TDReport

	// Raw is the whole quote, without any trailing bytes of the input.
	Raw []byte
	// SignedData is what the attestation key signed: header and body (for
	// v5 also the body type and size fields).
	SignedData []byte

	Signature      [ecdsaSignatureSize]byte
	AttestationKey [ecdsaPublicKeySize]byte // raw X||Y of a P-256 point

	QEReport          EnclaveReport
	QEReportSignature [ecdsaSignatureSize]byte
	QEAuthData        []byte

	// CertificationDataType is the type of the innermost certification data
	// (5 for every quote this package accepts); OuterCertificationDataType
	// is 6 when the QE report was wrapped in type 6 data.
	CertificationDataType      uint16
	OuterCertificationDataType uint16
	// PCKChainPEM is the PEM PCK certificate chain (leaf first).
	PCKChainPEM []byte
}

// TEE returns "sgx" or "tdx".
func (q *Quote) TEE() TEEType { return q.Header.TEEType }

// ReportData returns the 64 report data bytes of the body.
func (q *Quote) ReportData() [64]byte {
	if q.TD != nil {
		return q.TD.ReportData
	}
	return q.Enclave.ReportData
}

// reader walks the quote. Every read checks the remaining length, so a
// malformed quote is an error, never a panic.
type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf)-r.off {
		r.err = newErr(CodeMalformedQuote, "quote truncated reading %s at offset %d: need %d bytes, %d remain", what, r.off, n, len(r.buf)-r.off)
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) u16(what string) uint16 {
	b := r.take(2, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32(what string) uint32 {
	b := r.take(4, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// ParseQuote parses a binary DCAP quote. Bytes after the end of the quote
// (as given by its own length fields) are ignored. The returned Quote
// aliases b.
func ParseQuote(b []byte) (*Quote, error) {
	if len(b) > maxQuoteSize {
		b = b[:maxQuoteSize]
	}
	r := &reader{buf: b}
	q := &Quote{}
	hdr := r.take(headerSize, "header")
	if r.err != nil {
		return nil, r.err
	}
	q.Header = parseHeader(hdr)
	h := &q.Header
	switch h.Version {
	case 3, 4, 5:
	default:
		return nil, newErr(CodeUnsupportedQuoteVersion, "quote version %d is not supported (3, 4 and 5 are)", h.Version)
	}
	if h.AttestationKeyType != attestationKeyECDSAP256 {
		return nil, newErr(CodeUnsupportedQuoteVersion, "attestation key type %d is not supported (only 2, ECDSA-256-with-P-256, is)", h.AttestationKeyType)
	}
	switch h.TEEType {
	case TEESGX:
	case TEETDX:
		if h.Version == 3 {
			return nil, newErr(CodeMalformedQuote, "quote version 3 cannot carry a TDX report")
		}
	default:
		return nil, newErr(CodeUnsupportedQuoteVersion, "TEE type 0x%x is not supported (0x0 SGX and 0x81 TDX are)", uint32(h.TEEType))
	}

	bodyStart := r.off
	var body []byte
	if h.Version == 5 {
		bt := BodyType(r.u16("body type"))
		size := r.u32("body size")
		if r.err != nil {
			return nil, r.err
		}
		want := 0
		switch bt {
		case BodySGX:
			want = enclaveReportSize
			if h.TEEType != TEESGX {
				return nil, newErr(CodeMalformedQuote, "body type %s in a quote whose TEE type is %s", bt, h.TEEType)
			}
		case BodyTD10, BodyTD15:
			want = td10ReportSize
			if bt == BodyTD15 {
				want = td15ReportSize
			}
			if h.TEEType != TEETDX {
				return nil, newErr(CodeMalformedQuote, "body type %s in a quote whose TEE type is %s", bt, h.TEEType)
			}
		default:
			return nil, newErr(CodeUnsupportedQuoteVersion, "quote v5 body type %d is not supported (1 SGX, 2 TD 1.0, 3 TD 1.5 are)", uint16(bt))
		}
		if int64(size) != int64(want) {
			return nil, newErr(CodeMalformedQuote, "quote v5 body size %d does not match body type %s (%d bytes)", size, bt, want)
		}
		q.BodyType = bt
		body = r.take(want, "report body")
	} else {
		if h.TEEType == TEETDX {
			q.BodyType = BodyTD10
			body = r.take(td10ReportSize, "TD report body")
		} else {
			q.BodyType = BodySGX
			body = r.take(enclaveReportSize, "enclave report body")
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	q.SignedData = b[:r.off:r.off]
	_ = bodyStart
	if q.BodyType == BodySGX {
		rep := parseEnclaveReport(body)
		q.Enclave = &rep
	} else {
		q.TD = parseTDReport(body, q.BodyType == BodyTD15)
	}

	sigLen := r.u32("signature data length")
	if r.err != nil {
		return nil, r.err
	}
	sig := r.take(int(sigLen), "signature data")
	if r.err != nil {
		return nil, r.err
	}
	q.Raw = b[:r.off:r.off]
	if err := q.parseSignatureData(sig); err != nil {
		return nil, err
	}
	return q, nil
}

func parseHeader(b []byte) Header {
	var h Header
	h.Version = binary.LittleEndian.Uint16(b[0:])
	h.AttestationKeyType = binary.LittleEndian.Uint16(b[2:])
	h.TEEType = TEEType(binary.LittleEndian.Uint32(b[4:]))
	h.QESVN = binary.LittleEndian.Uint16(b[8:])
	h.PCESVN = binary.LittleEndian.Uint16(b[10:])
	copy(h.QEVendorID[:], b[12:28])
	copy(h.UserData[:], b[28:48])
	return h
}

func parseEnclaveReport(b []byte) EnclaveReport {
	var r EnclaveReport
	r.raw = b[:enclaveReportSize:enclaveReportSize]
	copy(r.CPUSVN[:], b[0:16])
	r.MiscSelect = binary.LittleEndian.Uint32(b[16:])
	copy(r.ISVExtProdID[:], b[32:48])
	copy(r.Attributes[:], b[48:64])
	copy(r.MRENCLAVE[:], b[64:96])
	copy(r.MRSIGNER[:], b[128:160])
	copy(r.ConfigID[:], b[192:256])
	r.ISVProdID = binary.LittleEndian.Uint16(b[256:])
	r.ISVSVN = binary.LittleEndian.Uint16(b[258:])
	r.ConfigSVN = binary.LittleEndian.Uint16(b[260:])
	copy(r.ISVFamilyID[:], b[304:320])
	copy(r.ReportData[:], b[320:384])
	return r
}

func parseTDReport(b []byte, td15 bool) *TDReport {
	r := &TDReport{raw: b}
	copy(r.TEETCBSVN[:], b[0:16])
	copy(r.MRSEAM[:], b[16:64])
	copy(r.MRSIGNERSEAM[:], b[64:112])
	copy(r.SEAMAttributes[:], b[112:120])
	copy(r.TDAttributes[:], b[120:128])
	copy(r.XFAM[:], b[128:136])
	copy(r.MRTD[:], b[136:184])
	copy(r.MRCONFIGID[:], b[184:232])
	copy(r.MROWNER[:], b[232:280])
	copy(r.MROWNERCONFIG[:], b[280:328])
	for i := range r.RTMR {
		copy(r.RTMR[i][:], b[328+48*i:376+48*i])
	}
	copy(r.ReportData[:], b[520:584])
	if td15 {
		copy(r.TEETCBSVN2[:], b[584:600])
		copy(r.MRSERVICETD[:], b[600:648])
	}
	return r
}

// parseSignatureData parses the ECDSA quote signature data: the signature,
// the attestation key, then (v3) the QE report inline followed by
// certification data, or (v4/v5) certification data of type 6 wrapping the
// QE report and a type 5 PCK chain.
func (q *Quote) parseSignatureData(sig []byte) error {
	r := &reader{buf: sig}
	copy(q.Signature[:], r.take(ecdsaSignatureSize, "quote signature"))
	copy(q.AttestationKey[:], r.take(ecdsaPublicKeySize, "attestation key"))
	if r.err != nil {
		return r.err
	}
	if q.Header.Version == 3 {
		if err := q.parseQEReportCertData(r); err != nil {
			return err
		}
		return nil
	}
	typ := r.u16("certification data type")
	size := r.u32("certification data size")
	data := r.take(int(size), "certification data")
	if r.err != nil {
		return r.err
	}
	if typ != CertDataQEReport {
		return unsupportedCertData(typ, "quote v4/v5 certification data")
	}
	q.OuterCertificationDataType = CertDataQEReport
	inner := &reader{buf: data}
	return q.parseQEReportCertData(inner)
}

// parseQEReportCertData parses QE report, QE report signature, QE auth data
// and the certification data that follows them (which must be type 5).
func (q *Quote) parseQEReportCertData(r *reader) error {
	rep := r.take(enclaveReportSize, "QE report")
	copy(q.QEReportSignature[:], r.take(ecdsaSignatureSize, "QE report signature"))
	authLen := r.u16("QE authentication data size")
	q.QEAuthData = r.take(int(authLen), "QE authentication data")
	typ := r.u16("certification data type")
	size := r.u32("certification data size")
	data := r.take(int(size), "certification data")
	if r.err != nil {
		return r.err
	}
	q.QEReport = parseEnclaveReport(rep)
	q.CertificationDataType = typ
	if typ != CertDataPCKChain {
		return unsupportedCertData(typ, "QE certification data")
	}
	q.PCKChainPEM = data
	return nil
}

func unsupportedCertData(typ uint16, where string) error {
	switch typ {
	case CertDataPPIDCleartext, CertDataPPIDRSA2048, CertDataPPIDRSA3072:
		return newErr(CodeUnsupportedCertificationData, "%s has type %d (encrypted or plain PPID): the PCK certificate must be looked up by PPID, which this verifier does not do", where, typ)
	case CertDataPCKCleartext:
		return newErr(CodeUnsupportedCertificationData, "%s has type 4 (PCK leaf certificate only): the issuing CA chain is missing", where)
	case CertDataPlatformManifst:
		return newErr(CodeUnsupportedCertificationData, "%s has type 7 (platform manifest): not supported", where)
	case CertDataPCKChain:
		return newErr(CodeUnsupportedCertificationData, "%s has type 5 where type 6 (QE report) was expected", where)
	}
	return newErr(CodeUnsupportedCertificationData, "%s has unknown type %d", where, typ)
}
