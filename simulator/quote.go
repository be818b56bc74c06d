package simulator

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/attestd/attestd/evidence/dcap"
)

// EnclaveFields are the SGX report body fields a caller may choose. Zero
// measurements (MRENCLAVE, MRSIGNER) take the simulator's defaults, derived
// from the seed; every other zero field stays zero.
type EnclaveFields struct {
	MRENCLAVE    [32]byte
	MRSIGNER     [32]byte
	ISVProdID    uint16
	ISVSVN       uint16
	MiscSelect   uint32
	ISVExtProdID [16]byte
	ISVFamilyID  [16]byte
	ConfigID     [64]byte
	ConfigSVN    uint16
	// Attributes is the FLAGS half of ATTRIBUTES; zero means INIT|MODE64BIT.
	// The debug flag comes from QuoteOptions.Debug.
	Attributes uint64
	// XFRM is the other half of ATTRIBUTES; zero means x87|SSE (3).
	XFRM uint64
}

// TDFields are the TD report body fields a caller may choose. Zero MRTD and
// RTMRs take the simulator's defaults; every other zero field stays zero.
type TDFields struct {
	MRTD          [48]byte
	RTMR          [4][48]byte
	MRCONFIGID    [48]byte
	MROWNER       [48]byte
	MROWNERCONFIG [48]byte
	MRSERVICETD   [48]byte // TD 1.5 bodies only
	// TDAttributes zero means SEPT_VE_DISABLE, as a production TD sets it.
	// The debug bit comes from QuoteOptions.Debug.
	TDAttributes uint64
	// XFAM zero means 0x602e7 (x87, SSE, AVX, AVX-512, PKRU), a common
	// Linux guest's.
	XFAM uint64
}

// QuoteOptions says what quote to mint.
type QuoteOptions struct {
	// TEE is dcap.TEESGX or dcap.TEETDX.
	TEE dcap.TEEType
	// Version is the quote version: 3, 4 or 5 for SGX; 4 or 5 for TDX.
	// Zero means 3 for SGX and 4 for TDX.
	Version int
	// Body selects the body of a version 5 TDX quote: dcap.BodyTD10 or
	// dcap.BodyTD15 (zero means TD 1.5). Other versions imply their body.
	Body dcap.BodyType
	// RuntimeData is bound into the report data as SHA-256(RuntimeData)
	// followed by 32 zero bytes, the binding MAA checks, unless ReportData
	// is set. Nil leaves the report data zero; an empty non-nil slice
	// binds SHA-256 of nothing.
	RuntimeData []byte
	// ReportData, when not nil, is the report data verbatim.
	ReportData *[64]byte
	// Debug marks the enclave (SGX ATTRIBUTES.DEBUG) or TD (TD_ATTRIBUTES
	// bit 0) debuggable.
	Debug   bool
	Enclave EnclaveFields
	TD      TDFields
	// Fault names a fault from Faults to inject; empty mints a clean quote.
	Fault string
}

// BindRuntimeData returns the report data that binds runtime data the way
// MAA expects: SHA-256(runtimeData) followed by 32 zero bytes.
func BindRuntimeData(runtimeData []byte) [64]byte {
	var rd [64]byte
	sum := sha256.Sum256(runtimeData)
	copy(rd[:], sum[:])
	return rd
}

// quoteLayout is a resolved quote shape.
type quoteLayout struct {
	tee     dcap.TEEType
	version int
	body    dcap.BodyType
}

func resolveLayout(o *QuoteOptions) (quoteLayout, error) {
	l := quoteLayout{tee: o.TEE, version: o.Version}
	switch o.TEE {
	case dcap.TEESGX:
		if l.version == 0 {
			l.version = 3
		}
		if l.version < 3 || l.version > 5 {
			return l, fmt.Errorf("simulator: SGX quotes are version 3, 4 or 5, not %d", l.version)
		}
		if o.Body != 0 && o.Body != dcap.BodySGX {
			return l, fmt.Errorf("simulator: an SGX quote cannot carry a %s body", o.Body)
		}
		l.body = dcap.BodySGX
	case dcap.TEETDX:
		if l.version == 0 {
			l.version = 4
		}
		switch l.version {
		case 4:
			if o.Body != 0 && o.Body != dcap.BodyTD10 {
				return l, fmt.Errorf("simulator: a version 4 TDX quote carries the TD 1.0 body, not %s", o.Body)
			}
			l.body = dcap.BodyTD10
		case 5:
			l.body = o.Body
			if l.body == 0 {
				l.body = dcap.BodyTD15
			}
			if l.body != dcap.BodyTD10 && l.body != dcap.BodyTD15 {
				return l, fmt.Errorf("simulator: a TDX quote cannot carry a %s body", l.body)
			}
		default:
			return l, fmt.Errorf("simulator: TDX quotes are version 4 or 5, not %d", l.version)
		}
	default:
		return l, fmt.Errorf("simulator: TEE type %s is not sgx or tdx", o.TEE)
	}
	return l, nil
}

// Quote mints a quote. With a fault, the quote is broken as the fault says;
// collateral faults need the collateral of Collateral(tee, fault) (or, for
// a service, CollateralForFMSPC with the quote's FMSPC).
func (s *Simulator) Quote(o QuoteOptions) ([]byte, error) {
	layout, err := resolveLayout(&o)
	if err != nil {
		return nil, err
	}
	f, err := lookupFault(o.Fault)
	if err != nil {
		return nil, err
	}
	if f != nil && !f.AppliesTo(layout.tee) {
		return nil, fmt.Errorf("simulator: fault %s does not apply to %s quotes", f.Name, layout.tee)
	}
	m := mint{s: s, o: &o, layout: layout, qe: *s.qe(layout.tee), pck: s.pcks[""]}
	if f != nil {
		if f.pck {
			m.pck = s.pcks[f.Name]
		}
		if f.mutate != nil {
			f.mutate(&m)
		}
	}
	q, err := m.build()
	if err != nil {
		return nil, err
	}
	if f != nil && f.post != nil {
		q = f.post(q, &m)
	}
	return q, nil
}

// mint is one quote being built; faults adjust its fields before build
// and may rewrite the finished bytes after.
type mint struct {
	s      *Simulator
	o      *QuoteOptions
	layout quoteLayout
	qe     qeParts
	pck    pckChain

	// Set by faults.
	certDataType         uint16 // innermost certification data type; 0 means 5
	qeAuthDataForBinding []byte // when set, the QE report data binds this instead
	reportDataOverride   *[64]byte
	mrsignerseam         *[48]byte

	// Offsets in the finished quote, for faults that corrupt signatures.
	sigOffset, qeSigOffset int
}

func (m *mint) reportData() [64]byte {
	switch {
	case m.reportDataOverride != nil:
		return *m.reportDataOverride
	case m.o.ReportData != nil:
		return *m.o.ReportData
	case m.o.RuntimeData != nil:
		return BindRuntimeData(m.o.RuntimeData)
	}
	return [64]byte{}
}

func (m *mint) header() []byte {
	h := make([]byte, 48)
	binary.LittleEndian.PutUint16(h[0:], uint16(m.layout.version))
	binary.LittleEndian.PutUint16(h[2:], 2) // ECDSA-256 with P-256
	binary.LittleEndian.PutUint32(h[4:], uint32(m.layout.tee))
	if m.layout.version == 3 {
		binary.LittleEndian.PutUint16(h[8:], m.qe.svn)
		binary.LittleEndian.PutUint16(h[10:], m.s.platform.PCESVN)
	}
	copy(h[12:28], dcap.IntelQEVendorID[:])
	copy(h[28:44], m.s.qeID[:])
	return h
}

// enclaveBody encodes an SGX report body (384 bytes) in Intel's layout.
func (m *mint) enclaveBody() []byte {
	e := m.o.Enclave
	b := make([]byte, 384)
	copy(b[0:16], m.s.platform.TCBComponents[:]) // CPUSVN
	binary.LittleEndian.PutUint32(b[16:], e.MiscSelect)
	copy(b[32:48], e.ISVExtProdID[:])
	flags, xfrm := e.Attributes, e.XFRM
	if flags == 0 {
		flags = dcap.SGXAttrInit | dcap.SGXAttrMode64Bit
	}
	if m.o.Debug {
		flags |= dcap.SGXAttrDebug
	}
	if xfrm == 0 {
		xfrm = 3
	}
	binary.LittleEndian.PutUint64(b[48:], flags)
	binary.LittleEndian.PutUint64(b[56:], xfrm)
	mrenclave, mrsigner := e.MRENCLAVE, e.MRSIGNER
	if mrenclave == [32]byte{} {
		mrenclave = m.s.app.mrenclave
	}
	if mrsigner == [32]byte{} {
		mrsigner = m.s.app.mrsigner
	}
	copy(b[64:96], mrenclave[:])
	copy(b[128:160], mrsigner[:])
	copy(b[192:256], e.ConfigID[:])
	binary.LittleEndian.PutUint16(b[256:], e.ISVProdID)
	binary.LittleEndian.PutUint16(b[258:], e.ISVSVN)
	binary.LittleEndian.PutUint16(b[260:], e.ConfigSVN)
	copy(b[304:320], e.ISVFamilyID[:])
	rd := m.reportData()
	copy(b[320:384], rd[:])
	return b
}

// tdBody encodes a TD report body: 584 bytes for TD 1.0, 648 for TD 1.5.
func (m *mint) tdBody() []byte {
	t := m.o.TD
	size := 584
	if m.layout.body == dcap.BodyTD15 {
		size = 648
	}
	b := make([]byte, size)
	p := m.s.platform
	copy(b[0:16], p.TEETCBSVN[:])
	copy(b[16:64], m.s.mrseam[:])
	signer := m.s.mrsignerseam
	if m.mrsignerseam != nil {
		signer = *m.mrsignerseam
	}
	copy(b[64:112], signer[:])
	// SEAM attributes (112..120) are zero for production modules.
	attrs := t.TDAttributes
	if attrs == 0 {
		attrs = dcap.TDAttrSEPTVEDisable
	}
	if m.o.Debug {
		attrs |= dcap.TDAttrDebug
	}
	binary.LittleEndian.PutUint64(b[120:], attrs)
	xfam := t.XFAM
	if xfam == 0 {
		xfam = 0x602e7
	}
	binary.LittleEndian.PutUint64(b[128:], xfam)
	mrtd := t.MRTD
	if mrtd == [48]byte{} {
		mrtd = m.s.app.mrtd
	}
	copy(b[136:184], mrtd[:])
	copy(b[184:232], t.MRCONFIGID[:])
	copy(b[232:280], t.MROWNER[:])
	copy(b[280:328], t.MROWNERCONFIG[:])
	for i, r := range t.RTMR {
		if r == [48]byte{} {
			r = m.s.app.rtmr[i]
		}
		copy(b[328+48*i:], r[:])
	}
	rd := m.reportData()
	copy(b[520:584], rd[:])
	if m.layout.body == dcap.BodyTD15 {
		// The TD runs on the module it was launched on: TEE_TCB_SVN2
		// equals TEE_TCB_SVN.
		copy(b[584:600], p.TEETCBSVN[:])
		copy(b[600:648], t.MRSERVICETD[:])
	}
	return b
}

// qeReport encodes the QE's report: its identity, the platform's CPUSVN,
// and report data binding the attestation key and authentication data.
func (m *mint) qeReport(authData []byte) []byte {
	b := make([]byte, 384)
	copy(b[0:16], m.s.platform.TCBComponents[:])
	// ATTRIBUTES: INIT | MODE64BIT | PROVISIONKEY, XFRM x87|SSE, like
	// Intel's QE. Its identity requires INIT and PROVISIONKEY (0x11 under
	// mask 0xFB in the first byte) and does not constrain XFRM.
	binary.LittleEndian.PutUint64(b[48:], dcap.SGXAttrInit|dcap.SGXAttrProvisionKey|dcap.SGXAttrMode64Bit)
	binary.LittleEndian.PutUint64(b[56:], 3)
	copy(b[64:96], m.qe.mrenclave[:])
	copy(b[128:160], m.qe.mrsigner[:])
	binary.LittleEndian.PutUint16(b[256:], m.qe.prodID)
	binary.LittleEndian.PutUint16(b[258:], m.qe.svn)
	bound := authData
	if m.qeAuthDataForBinding != nil {
		bound = m.qeAuthDataForBinding
	}
	h := sha256.New()
	h.Write(m.qe.attestationPub[:])
	h.Write(bound)
	copy(b[320:352], h.Sum(nil))
	return b
}

// innerCertData returns the certification data the QE report is certified
// with: type 5 (the PEM PCK chain), or the type a fault chose.
func (m *mint) innerCertData() (uint16, []byte) {
	switch m.certDataType {
	case 0, dcap.CertDataPCKChain:
		return dcap.CertDataPCKChain, m.pck.pem
	case dcap.CertDataPPIDRSA3072:
		// Encrypted PPID (RSA-3072, 384 bytes), CPUSVN, PCESVN, PCE ID:
		// what a platform without a cached PCK certificate sends.
		d := make([]byte, 384+16+2+2)
		copy(d[384:400], m.s.platform.TCBComponents[:])
		binary.LittleEndian.PutUint16(d[400:], m.s.platform.PCESVN)
		copy(d[402:404], m.s.platform.PCEID[:])
		return dcap.CertDataPPIDRSA3072, d
	}
	return m.certDataType, nil
}

func (m *mint) build() ([]byte, error) {
	var body []byte
	if m.layout.tee == dcap.TEETDX {
		body = m.tdBody()
	} else {
		body = m.enclaveBody()
	}
	signed := m.header()
	if m.layout.version == 5 {
		signed = binary.LittleEndian.AppendUint16(signed, uint16(m.layout.body))
		signed = binary.LittleEndian.AppendUint32(signed, uint32(len(body)))
	}
	signed = append(signed, body...)
	sig, err := signRaw(m.qe.attestationKey, signed)
	if err != nil {
		return nil, fmt.Errorf("simulator: quote signature: %w", err)
	}
	authData, err := deriveBytes(m.s.seed, "qe-auth-data", 32)
	if err != nil {
		return nil, err
	}
	qeReport := m.qeReport(authData)
	qeSig, err := signRaw(m.s.pki.pckKey, qeReport)
	if err != nil {
		return nil, fmt.Errorf("simulator: QE report signature: %w", err)
	}
	certType, certData := m.innerCertData()

	// The QE report certification data: QE report, its signature, the
	// authentication data and the inner certification data.
	var qeCert []byte
	qeCert = append(qeCert, qeReport...)
	qeSigAt := len(qeCert)
	qeCert = append(qeCert, qeSig[:]...)
	qeCert = binary.LittleEndian.AppendUint16(qeCert, uint16(len(authData)))
	qeCert = append(qeCert, authData...)
	qeCert = binary.LittleEndian.AppendUint16(qeCert, certType)
	qeCert = binary.LittleEndian.AppendUint32(qeCert, uint32(len(certData)))
	qeCert = append(qeCert, certData...)

	sigData := append(append([]byte{}, sig[:]...), m.qe.attestationPub[:]...)
	qeCertAt := len(sigData)
	if m.layout.version == 3 {
		sigData = append(sigData, qeCert...)
	} else {
		sigData = binary.LittleEndian.AppendUint16(sigData, dcap.CertDataQEReport)
		sigData = binary.LittleEndian.AppendUint32(sigData, uint32(len(qeCert)))
		qeCertAt += 6
		sigData = append(sigData, qeCert...)
	}
	out := append(signed, binary.LittleEndian.AppendUint32(nil, uint32(len(sigData)))...)
	m.sigOffset = len(out)
	m.qeSigOffset = len(out) + qeCertAt + qeSigAt
	return append(out, sigData...), nil
}
