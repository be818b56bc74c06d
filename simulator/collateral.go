package simulator

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
)

// CollateralSet is the collateral for one TEE type and FMSPC, in the
// formats Intel's services use, ready to be written to files or loaded.
type CollateralSet struct {
	TEE dcap.TEEType
	// FMSPC is the FMSPC the set is served for (the key a collateral
	// cache would file it under).
	FMSPC [6]byte
	// Files maps file names to contents: the PCS response bodies of TCB
	// Info and QE Identity, their issuer chain (PEM, as PCS returns it in
	// a response header), the CRLs (DER), the PCK CRL issuer chains, the
	// simulator root (root.pem), and the same items as one attestd bundle.
	// Names carry the TEE where the content depends on it
	// (tcbinfo-sgx.json, qeidentity-tdx.json, bundle-sgx.json, ...).
	Files map[string][]byte
}

// BundleName is the name of the attestd bundle file in Files.
func (c *CollateralSet) BundleName() string { return "bundle-" + c.TEE.String() + ".json" }

// Collateral parses the bundle into the verifier's collateral type.
func (c *CollateralSet) Collateral() (*dcap.Collateral, error) {
	col, _, err := dcap.LoadCollateral(c.Files[c.BundleName()])
	if err != nil {
		return nil, fmt.Errorf("simulator: load own collateral bundle: %w", err)
	}
	return col, nil
}

// collateralSpec is what a collateral set contains; faults adjust it.
type collateralSpec struct {
	tee dcap.TEEType
	// servedFor is the FMSPC the set was asked for; fmspc is the one its
	// TCB Info names (they differ for fmspc-mismatch).
	servedFor     [6]byte
	fmspc         [6]byte
	platformFMSPC [6]byte
	// tcbInfoAge and qeIdentityAge move the documents' issueDate back in
	// time, so that they expire when the age exceeds their lifetime.
	tcbInfoAge, qeIdentityAge time.Duration
	tcbInfoWrongKey           bool
}

// Collateral returns the collateral a verifier needs for quotes of tee
// minted with fault (empty for clean quotes).
func (s *Simulator) Collateral(tee dcap.TEEType, fault string) (*CollateralSet, error) {
	f, err := lookupFault(fault)
	if err != nil {
		return nil, err
	}
	fmspc := s.platform.FMSPC
	if f != nil && f.fmspcIndex > 0 {
		fmspc = s.faultFMSPC(f.fmspcIndex)
	}
	return s.CollateralForFMSPC(tee, fmspc)
}

// CollateralForFMSPC returns the collateral this simulator serves for
// quotes of tee whose PCK certificate names fmspc: the platform's own, or
// a fault's (see Fault). It fails for any other FMSPC, as Intel's PCS
// answers 404 for an FMSPC it does not know.
func (s *Simulator) CollateralForFMSPC(tee dcap.TEEType, fmspc [6]byte) (*CollateralSet, error) {
	if tee != dcap.TEESGX && tee != dcap.TEETDX {
		return nil, fmt.Errorf("simulator: TEE type %s is not sgx or tdx", tee)
	}
	spec := collateralSpec{tee: tee, servedFor: fmspc, fmspc: fmspc, platformFMSPC: s.platform.FMSPC}
	if fmspc != s.platform.FMSPC {
		var fault *Fault
		for _, f := range faults() {
			if f.fmspcIndex > 0 && s.faultFMSPC(f.fmspcIndex) == fmspc {
				fault = &f
				break
			}
		}
		if fault == nil {
			return nil, fmt.Errorf("simulator: no collateral for FMSPC %x (the platform's is %x)", fmspc, s.platform.FMSPC)
		}
		fault.collateral(&spec)
	}
	return s.buildCollateral(spec)
}

// The JSON shapes of Intel's TCB Info v3 and Enclave Identity v2, fields in
// Intel's order. The signature covers the exact bytes of the inner object,
// so the order is part of the format as served.
type (
	jsonTCBInfo struct {
		ID                      string          `json:"id"`
		Version                 int             `json:"version"`
		IssueDate               string          `json:"issueDate"`
		NextUpdate              string          `json:"nextUpdate"`
		FMSPC                   string          `json:"fmspc"`
		PCEID                   string          `json:"pceId"`
		TCBType                 int             `json:"tcbType"`
		TCBEvaluationDataNumber int             `json:"tcbEvaluationDataNumber"`
		TDXModule               *jsonTDXModule  `json:"tdxModule,omitempty"`
		TDXModuleIdentities     []jsonTDXModule `json:"tdxModuleIdentities,omitempty"`
		TCBLevels               []jsonTCBLevel  `json:"tcbLevels"`
	}
	jsonTDXModule struct {
		ID             string       `json:"id,omitempty"`
		MRSIGNER       string       `json:"mrsigner"`
		Attributes     string       `json:"attributes"`
		AttributesMask string       `json:"attributesMask"`
		TCBLevels      []jsonSVNTCB `json:"tcbLevels,omitempty"`
	}
	jsonSVNTCB struct {
		TCB struct {
			ISVSVN int `json:"isvsvn"`
		} `json:"tcb"`
		TCBDate     string   `json:"tcbDate"`
		TCBStatus   string   `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
	}
	jsonTCBLevel struct {
		TCB struct {
			SGXComponents []jsonSVN `json:"sgxtcbcomponents"`
			PCESVN        int       `json:"pcesvn"`
			TDXComponents []jsonSVN `json:"tdxtcbcomponents,omitempty"`
		} `json:"tcb"`
		TCBDate     string   `json:"tcbDate"`
		TCBStatus   string   `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
	}
	jsonSVN struct {
		SVN int `json:"svn"`
	}
	jsonEnclaveIdentity struct {
		ID                      string       `json:"id"`
		Version                 int          `json:"version"`
		IssueDate               string       `json:"issueDate"`
		NextUpdate              string       `json:"nextUpdate"`
		TCBEvaluationDataNumber int          `json:"tcbEvaluationDataNumber"`
		MiscSelect              string       `json:"miscselect"`
		MiscSelectMask          string       `json:"miscselectMask"`
		Attributes              string       `json:"attributes"`
		AttributesMask          string       `json:"attributesMask"`
		MRSIGNER                string       `json:"mrsigner"`
		ISVProdID               int          `json:"isvprodid"`
		TCBLevels               []jsonSVNTCB `json:"tcbLevels"`
	}
)

func jsonTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func svnList(c [16]uint8) []jsonSVN {
	out := make([]jsonSVN, 16)
	for i, v := range c {
		out[i] = jsonSVN{SVN: int(v)}
	}
	return out
}

func svnLevel(svn uint16, date time.Time, status dcap.TCBStatus, advisories []string) jsonSVNTCB {
	var l jsonSVNTCB
	l.TCB.ISVSVN = int(svn)
	l.TCBDate, l.TCBStatus, l.AdvisoryIDs = jsonTime(date), string(status), advisories
	return l
}

// tcbDates are the tcbDate of each simulated level: the platform's level
// is the newest. Fixed dates keep documents stable across runs.
var (
	tcbDateCurrent  = time.Date(2025, 5, 14, 0, 0, 0, 0, time.UTC)
	tcbDatePrevious = time.Date(2024, 11, 13, 0, 0, 0, 0, time.UTC)
	tcbDateOld      = time.Date(2023, 8, 9, 0, 0, 0, 0, time.UTC)
	tcbDateAncient  = time.Date(2021, 2, 10, 0, 0, 0, 0, time.UTC)
)

// tcbInfoJSON builds the TCB Info object: the platform's level with the
// configured status, then the fixed ConfigurationNeeded, OutOfDate and
// Revoked levels the faults select.
func (s *Simulator) tcbInfoJSON(spec collateralSpec, issue time.Time) ([]byte, error) {
	p := s.platform
	tdx := spec.tee == dcap.TEETDX
	info := jsonTCBInfo{
		ID: "SGX", Version: 3,
		IssueDate: jsonTime(issue), NextUpdate: jsonTime(issue.Add(collateralLifetime)),
		FMSPC: hex.EncodeToString(spec.fmspc[:]), PCEID: hex.EncodeToString(p.PCEID[:]),
		TCBEvaluationDataNumber: s.tcb.TCBEvaluationDataNumber,
	}
	level := func(dComp0 uint8, dPCESVN uint16, date time.Time, status dcap.TCBStatus, advisories []string) jsonTCBLevel {
		var l jsonTCBLevel
		c := p.TCBComponents
		c[0] -= dComp0
		l.TCB.SGXComponents = svnList(c)
		l.TCB.PCESVN = int(p.PCESVN - dPCESVN)
		if tdx {
			l.TCB.TDXComponents = svnList(p.TEETCBSVN)
		}
		l.TCBDate, l.TCBStatus, l.AdvisoryIDs = jsonTime(date), string(status), advisories
		return l
	}
	info.TCBLevels = []jsonTCBLevel{
		level(0, 0, tcbDateCurrent, s.tcb.Status, s.tcb.AdvisoryIDs),
		level(0, 1, tcbDatePrevious, dcap.StatusConfigurationNeeded, configurationNeededAdvisories()),
		level(1, 1, tcbDateOld, dcap.StatusOutOfDate, outOfDateAdvisories()),
		level(2, 1, tcbDateAncient, dcap.StatusRevoked, nil),
	}
	if tdx {
		info.ID = "TDX"
		module := jsonTDXModule{
			MRSIGNER:       upperHex(s.mrsignerseam[:]),
			Attributes:     "0000000000000000",
			AttributesMask: "FFFFFFFFFFFFFFFF",
		}
		info.TDXModule = &module
		if version := p.TEETCBSVN[1]; version > 0 {
			ident := module
			ident.ID = fmt.Sprintf("TDX_%02X", version)
			ident.TCBLevels = []jsonSVNTCB{svnLevel(uint16(p.TEETCBSVN[0]), tcbDateCurrent, dcap.StatusUpToDate, nil)}
			if p.TEETCBSVN[0] > 0 {
				ident.TCBLevels = append(ident.TCBLevels, svnLevel(0, tcbDateOld, dcap.StatusOutOfDate, outOfDateAdvisories()))
			}
			info.TDXModuleIdentities = []jsonTDXModule{ident}
		}
	}
	return json.Marshal(info)
}

// qeIdentityJSON builds the QE Identity (QE for SGX, TD_QE for TDX).
func (s *Simulator) qeIdentityJSON(tee dcap.TEEType, issue time.Time) ([]byte, error) {
	qe := s.qe(tee)
	id := jsonEnclaveIdentity{
		ID: "QE", Version: 2,
		IssueDate: jsonTime(issue), NextUpdate: jsonTime(issue.Add(collateralLifetime)),
		TCBEvaluationDataNumber: s.tcb.TCBEvaluationDataNumber,
		MiscSelect:              "00000000", MiscSelectMask: "FFFFFFFF",
		Attributes:     "11000000000000000000000000000000",
		AttributesMask: "FBFFFFFFFFFFFFFF0000000000000000",
		MRSIGNER:       upperHex(qe.mrsigner[:]),
		ISVProdID:      int(qe.prodID),
		TCBLevels:      []jsonSVNTCB{svnLevel(qe.svn, tcbDateCurrent, dcap.StatusUpToDate, nil)},
	}
	if tee == dcap.TEETDX {
		id.ID = "TD_QE"
	}
	if qe.svn > 1 {
		id.TCBLevels = append(id.TCBLevels, svnLevel(qe.svn-1, tcbDateOld, dcap.StatusOutOfDate, outOfDateAdvisories()))
	}
	return json.Marshal(id)
}

// signedBody wraps a signed document as Intel's PCS serves it:
// {"<field>":<object>,"signature":"<hex r||s>"}.
func signedBody(field string, object []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	sig, err := signRaw(key, object)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"%s":`, field)
	b.Write(object)
	fmt.Fprintf(&b, `,"signature":"%s"}`, hex.EncodeToString(sig[:]))
	return b.Bytes(), nil
}

func (s *Simulator) buildCollateral(spec collateralSpec) (*CollateralSet, error) {
	tee := spec.tee.String()
	tcbObj, err := s.tcbInfoJSON(spec, s.now.Add(-spec.tcbInfoAge))
	if err != nil {
		return nil, fmt.Errorf("simulator: TCB Info: %w", err)
	}
	tcbKey := s.pki.tcbSigning.key
	if spec.tcbInfoWrongKey {
		tcbKey = s.pki.wrongTCBKey
	}
	tcbBody, err := signedBody("tcbInfo", tcbObj, tcbKey)
	if err != nil {
		return nil, fmt.Errorf("simulator: TCB Info: %w", err)
	}
	qeObj, err := s.qeIdentityJSON(spec.tee, s.now.Add(-spec.qeIdentityAge))
	if err != nil {
		return nil, fmt.Errorf("simulator: QE Identity: %w", err)
	}
	qeBody, err := signedBody("enclaveIdentity", qeObj, s.pki.tcbSigning.key)
	if err != nil {
		return nil, fmt.Errorf("simulator: QE Identity: %w", err)
	}
	// The Root CA CRL revokes the revoked Platform CA; each PCK CA's CRL
	// revokes the revoked PCK certificate.
	rootCRL, err := crl(&s.pki.root, 1, s.now, append([]*big.Int{s.pki.revokedCA.cert.SerialNumber}, s.revoked...)...)
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	pckCRLs := map[string][]byte{}
	for name, ca := range map[string]*issuer{"platform": &s.pki.platformCA, "processor": &s.pki.processorCA} {
		serials := slices.Clone(s.revoked)
		if ca == s.pckCA() {
			serials = append(serials, s.pki.revokedPCKSerial)
		}
		if pckCRLs[name], err = crl(ca, 1, s.now, serials...); err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
	}
	tcbChain := pemCerts(s.pki.tcbSigning.cert, s.pki.root.cert)
	caName := s.platform.CA.String()
	pckChain := pemCerts(s.pckCA().cert, s.pki.root.cert)

	// Marshal, not MarshalIndent: indenting would re-indent the embedded
	// PCS bodies and change the bytes their signatures cover.
	bundle, err := json.Marshal(struct {
		Version               int             `json:"attestdCollateral"`
		TCBInfo               json.RawMessage `json:"tcbInfo"`
		QEIdentity            json.RawMessage `json:"qeIdentity"`
		TCBInfoIssuerChain    string          `json:"tcbInfoIssuerChain"`
		QEIdentityIssuerChain string          `json:"qeIdentityIssuerChain"`
		PCKCRLIssuerChain     string          `json:"pckCrlIssuerChain"`
		RootCACRL             string          `json:"rootCaCrl"`
		PCKCRL                string          `json:"pckCrl"`
	}{1, tcbBody, qeBody, string(tcbChain), string(tcbChain), string(pckChain),
		hex.EncodeToString(rootCRL), hex.EncodeToString(pckCRLs[caName])})
	if err != nil {
		return nil, fmt.Errorf("simulator: bundle: %w", err)
	}
	set := &CollateralSet{TEE: spec.tee, FMSPC: spec.servedFor, Files: map[string][]byte{
		"tcbinfo-" + tee + ".json":          tcbBody,
		"qeidentity-" + tee + ".json":       qeBody,
		"tcb-info-issuer-chain.pem":         tcbChain,
		"rootcrl.der":                       rootCRL,
		"pckcrl-platform.der":               pckCRLs["platform"],
		"pckcrl-processor.der":              pckCRLs["processor"],
		"pckcrl-platform-issuer-chain.pem":  pemCerts(s.pki.platformCA.cert, s.pki.root.cert),
		"pckcrl-processor-issuer-chain.pem": pemCerts(s.pki.processorCA.cert, s.pki.root.cert),
		"root.pem":                          s.RootPEM(),
		"bundle-" + tee + ".json":           append(bundle, '\n'),
	}}
	return set, nil
}

// FileNames returns the names in Files, sorted.
func (c *CollateralSet) FileNames() []string {
	names := make([]string, 0, len(c.Files))
	for n := range c.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// VerificationFiles names the files of the set that, loaded together in
// this order, make complete collateral: the PCS-format items (not the
// bundle, which holds the same).
func (c *CollateralSet) VerificationFiles() []string {
	tee := c.TEE.String()
	return []string{
		"tcbinfo-" + tee + ".json", "qeidentity-" + tee + ".json", "tcb-info-issuer-chain.pem",
		"rootcrl.der", "pckcrl-platform.der", "pckcrl-processor.der",
	}
}
