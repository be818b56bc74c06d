package dcap

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// TCBStatus is a TCB level status as Intel names it.
type TCBStatus string

// The TCB statuses Intel publishes, plus the TD relaunch statuses that
// Intel's QVL derives for TDX 1.5 quotes.
const (
	StatusUpToDate                             TCBStatus = "UpToDate"
	StatusSWHardeningNeeded                    TCBStatus = "SWHardeningNeeded"
	StatusConfigurationNeeded                  TCBStatus = "ConfigurationNeeded"
	StatusConfigurationAndSWHardeningNeeded    TCBStatus = "ConfigurationAndSWHardeningNeeded"
	StatusOutOfDate                            TCBStatus = "OutOfDate"
	StatusOutOfDateConfigurationNeeded         TCBStatus = "OutOfDateConfigurationNeeded"
	StatusRevoked                              TCBStatus = "Revoked"
	StatusTDRelaunchAdvised                    TCBStatus = "TDRelaunchAdvised"
	StatusTDRelaunchAdvisedConfigurationNeeded TCBStatus = "TDRelaunchAdvisedConfigurationNeeded"
)

// validLevelStatus is the set of statuses a TCB level in Intel's collateral
// may carry.
func validLevelStatus(s TCBStatus) bool {
	switch s {
	case StatusUpToDate, StatusSWHardeningNeeded, StatusConfigurationNeeded,
		StatusConfigurationAndSWHardeningNeeded, StatusOutOfDate,
		StatusOutOfDateConfigurationNeeded, StatusRevoked:
		return true
	}
	return false
}

// TCBInfo is a verified-format (not yet signature-checked) TCB Info
// document, version 2 or 3.
type TCBInfo struct {
	// Raw is the exact byte text of the tcbInfo object as served; the
	// signature covers these bytes.
	Raw []byte
	// Signature is the raw r||s ECDSA P-256 signature over Raw.
	Signature []byte

	ID                      string // "SGX" or "TDX" (v2 has no id: "SGX")
	Version                 int
	IssueDate               time.Time
	NextUpdate              time.Time
	FMSPC                   [6]byte
	PCEID                   [2]byte
	TCBType                 int
	TCBEvaluationDataNumber int
	// TDXModule is the v3 TDX tdxModule object (module identity used when
	// TEE_TCB_SVN[1] is 0).
	TDXModule *TDXModuleIdentity
	// TDXModuleIdentities are the per-module-version identities of v3 TDX.
	TDXModuleIdentities []TDXModuleIdentity
	TCBLevels           []TCBLevel
}

// TCBLevel is one platform TCB level.
type TCBLevel struct {
	SGXComponents [16]uint8
	PCESVN        uint16
	TDXComponents [16]uint8 // TDX only
	TCBDate       time.Time
	TCBStatus     TCBStatus
	AdvisoryIDs   []string
}

// TDXModuleIdentity identifies one TDX module version.
type TDXModuleIdentity struct {
	ID             string // e.g. "TDX_01"; empty for the tdxModule object
	MRSIGNER       [48]byte
	Attributes     [8]byte
	AttributesMask [8]byte
	TCBLevels      []ModuleTCBLevel
}

// ModuleTCBLevel is a TCB level of a TDX module identity or a QE identity:
// an ISVSVN threshold.
type ModuleTCBLevel struct {
	ISVSVN      uint16
	TCBDate     time.Time
	TCBStatus   TCBStatus
	AdvisoryIDs []string
}

// QEIdentity is an Enclave Identity v2 document (QE, QVE or TD_QE).
type QEIdentity struct {
	Raw       []byte
	Signature []byte

	ID                      string
	Version                 int
	IssueDate               time.Time
	NextUpdate              time.Time
	TCBEvaluationDataNumber int
	MiscSelect              uint32
	MiscSelectMask          uint32
	Attributes              [16]byte
	AttributesMask          [16]byte
	MRSIGNER                [32]byte
	ISVProdID               uint16
	TCBLevels               []ModuleTCBLevel
}

// JSON shapes of Intel's documents. Numbers use json.Number-free ints:
// every numeric field is a small integer.
type jsonTCBInfo struct {
	ID                      *string        `json:"id"`
	Version                 int            `json:"version"`
	IssueDate               string         `json:"issueDate"`
	NextUpdate              string         `json:"nextUpdate"`
	FMSPC                   string         `json:"fmspc"`
	PCEID                   string         `json:"pceId"`
	TCBType                 int            `json:"tcbType"`
	TCBEvaluationDataNumber int            `json:"tcbEvaluationDataNumber"`
	TDXModule               *jsonModule    `json:"tdxModule"`
	TDXModuleIdentities     []jsonModule   `json:"tdxModuleIdentities"`
	TCBLevels               []jsonTCBLevel `json:"tcbLevels"`
}

type jsonModule struct {
	ID             string            `json:"id"`
	MRSIGNER       string            `json:"mrsigner"`
	Attributes     string            `json:"attributes"`
	AttributesMask string            `json:"attributesMask"`
	TCBLevels      []jsonISVSVNLevel `json:"tcbLevels"`
}

type jsonISVSVNLevel struct {
	TCB struct {
		ISVSVN *int `json:"isvsvn"`
	} `json:"tcb"`
	TCBDate     string   `json:"tcbDate"`
	TCBStatus   string   `json:"tcbStatus"`
	AdvisoryIDs []string `json:"advisoryIDs"`
}

type jsonTCBLevel struct {
	TCB         map[string]json.RawMessage `json:"tcb"`
	TCBDate     string                     `json:"tcbDate"`
	TCBStatus   string                     `json:"tcbStatus"`
	AdvisoryIDs []string                   `json:"advisoryIDs"`
}

type jsonComponent struct {
	SVN *int `json:"svn"`
}

type jsonQEIdentity struct {
	ID                      string            `json:"id"`
	Version                 int               `json:"version"`
	IssueDate               string            `json:"issueDate"`
	NextUpdate              string            `json:"nextUpdate"`
	TCBEvaluationDataNumber int               `json:"tcbEvaluationDataNumber"`
	MiscSelect              string            `json:"miscselect"`
	MiscSelectMask          string            `json:"miscselectMask"`
	Attributes              string            `json:"attributes"`
	AttributesMask          string            `json:"attributesMask"`
	MRSIGNER                string            `json:"mrsigner"`
	ISVProdID               *int              `json:"isvprodid"`
	TCBLevels               []jsonISVSVNLevel `json:"tcbLevels"`
}

// ParseTCBInfo parses the tcbInfo object (the exact signed bytes) and its
// raw r||s signature.
func ParseTCBInfo(raw, signature []byte) (*TCBInfo, error) {
	var j jsonTCBInfo
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("TCB Info: %w", err)
	}
	t := &TCBInfo{Raw: raw, Signature: signature, Version: j.Version, TCBType: j.TCBType, TCBEvaluationDataNumber: j.TCBEvaluationDataNumber}
	switch j.Version {
	case 2:
		t.ID = "SGX"
		if j.ID != nil && *j.ID != "SGX" {
			return nil, fmt.Errorf("TCB Info v2: id %q (v2 is SGX only)", *j.ID)
		}
	case 3:
		if j.ID == nil {
			return nil, fmt.Errorf("TCB Info v3: id is missing")
		}
		t.ID = *j.ID
		if t.ID != "SGX" && t.ID != "TDX" {
			return nil, fmt.Errorf("TCB Info v3: id %q is neither SGX nor TDX", t.ID)
		}
	default:
		return nil, fmt.Errorf("TCB Info version %d is not supported (2 and 3 are)", j.Version)
	}
	if len(signature) != 64 {
		return nil, fmt.Errorf("TCB Info signature is %d bytes, want 64 (r||s)", len(signature))
	}
	var err error
	if t.IssueDate, err = parseTime(j.IssueDate, "issueDate"); err != nil {
		return nil, fmt.Errorf("TCB Info: %w", err)
	}
	if t.NextUpdate, err = parseTime(j.NextUpdate, "nextUpdate"); err != nil {
		return nil, fmt.Errorf("TCB Info: %w", err)
	}
	if err := hexFixed(j.FMSPC, t.FMSPC[:], "fmspc"); err != nil {
		return nil, fmt.Errorf("TCB Info: %w", err)
	}
	if err := hexFixed(j.PCEID, t.PCEID[:], "pceId"); err != nil {
		return nil, fmt.Errorf("TCB Info: %w", err)
	}
	if t.ID == "TDX" {
		if j.TDXModule == nil {
			return nil, fmt.Errorf("TCB Info: TDX TCB Info has no tdxModule")
		}
		m, err := parseModule(*j.TDXModule, false)
		if err != nil {
			return nil, fmt.Errorf("TCB Info: tdxModule: %w", err)
		}
		t.TDXModule = &m
		for i, jm := range j.TDXModuleIdentities {
			m, err := parseModule(jm, true)
			if err != nil {
				return nil, fmt.Errorf("TCB Info: tdxModuleIdentities[%d]: %w", i, err)
			}
			t.TDXModuleIdentities = append(t.TDXModuleIdentities, m)
		}
	}
	if len(j.TCBLevels) == 0 {
		return nil, fmt.Errorf("TCB Info has no TCB levels")
	}
	for i, jl := range j.TCBLevels {
		l, err := parseTCBLevel(jl, t.Version, t.ID == "TDX")
		if err != nil {
			return nil, fmt.Errorf("TCB Info: tcbLevels[%d]: %w", i, err)
		}
		t.TCBLevels = append(t.TCBLevels, l)
	}
	return t, nil
}

func parseModule(j jsonModule, needLevels bool) (TDXModuleIdentity, error) {
	m := TDXModuleIdentity{ID: j.ID}
	if needLevels && j.ID == "" {
		return m, fmt.Errorf("id is missing")
	}
	if err := hexFixed(j.MRSIGNER, m.MRSIGNER[:], "mrsigner"); err != nil {
		return m, err
	}
	if err := hexFixed(j.Attributes, m.Attributes[:], "attributes"); err != nil {
		return m, err
	}
	if err := hexFixed(j.AttributesMask, m.AttributesMask[:], "attributesMask"); err != nil {
		return m, err
	}
	if needLevels && len(j.TCBLevels) == 0 {
		return m, fmt.Errorf("no TCB levels")
	}
	for i, jl := range j.TCBLevels {
		l, err := parseISVSVNLevel(jl)
		if err != nil {
			return m, fmt.Errorf("tcbLevels[%d]: %w", i, err)
		}
		m.TCBLevels = append(m.TCBLevels, l)
	}
	return m, nil
}

func parseISVSVNLevel(j jsonISVSVNLevel) (ModuleTCBLevel, error) {
	var l ModuleTCBLevel
	if j.TCB.ISVSVN == nil {
		return l, fmt.Errorf("tcb.isvsvn is missing")
	}
	if *j.TCB.ISVSVN < 0 || *j.TCB.ISVSVN > 65535 {
		return l, fmt.Errorf("tcb.isvsvn %d outside 0..65535", *j.TCB.ISVSVN)
	}
	l.ISVSVN = uint16(*j.TCB.ISVSVN)
	var err error
	if l.TCBDate, err = parseTime(j.TCBDate, "tcbDate"); err != nil {
		return l, err
	}
	l.TCBStatus = TCBStatus(j.TCBStatus)
	if !validLevelStatus(l.TCBStatus) {
		return l, fmt.Errorf("tcbStatus %q is unknown", j.TCBStatus)
	}
	l.AdvisoryIDs = j.AdvisoryIDs
	return l, nil
}

func parseTCBLevel(j jsonTCBLevel, version int, tdx bool) (TCBLevel, error) {
	var l TCBLevel
	var err error
	if l.TCBDate, err = parseTime(j.TCBDate, "tcbDate"); err != nil {
		return l, err
	}
	l.TCBStatus = TCBStatus(j.TCBStatus)
	if !validLevelStatus(l.TCBStatus) {
		return l, fmt.Errorf("tcbStatus %q is unknown", j.TCBStatus)
	}
	l.AdvisoryIDs = j.AdvisoryIDs
	pcesvn, ok := j.TCB["pcesvn"]
	if !ok {
		return l, fmt.Errorf("tcb.pcesvn is missing")
	}
	var p int
	if err := json.Unmarshal(pcesvn, &p); err != nil || p < 0 || p > 65535 {
		return l, fmt.Errorf("tcb.pcesvn is not an integer in 0..65535")
	}
	l.PCESVN = uint16(p)
	if version == 2 {
		for i := range 16 {
			key := fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)
			v, ok := j.TCB[key]
			if !ok {
				return l, fmt.Errorf("tcb.%s is missing", key)
			}
			var n int
			if err := json.Unmarshal(v, &n); err != nil || n < 0 || n > 255 {
				return l, fmt.Errorf("tcb.%s is not an integer in 0..255", key)
			}
			l.SGXComponents[i] = uint8(n)
		}
		return l, nil
	}
	if err := parseComponents(j.TCB["sgxtcbcomponents"], &l.SGXComponents, "sgxtcbcomponents"); err != nil {
		return l, err
	}
	if tdx {
		if err := parseComponents(j.TCB["tdxtcbcomponents"], &l.TDXComponents, "tdxtcbcomponents"); err != nil {
			return l, err
		}
	}
	return l, nil
}

func parseComponents(raw json.RawMessage, dst *[16]uint8, name string) error {
	if raw == nil {
		return fmt.Errorf("tcb.%s is missing", name)
	}
	var comps []jsonComponent
	if err := json.Unmarshal(raw, &comps); err != nil {
		return fmt.Errorf("tcb.%s: %w", name, err)
	}
	if len(comps) != 16 {
		return fmt.Errorf("tcb.%s has %d entries, want 16", name, len(comps))
	}
	for i, c := range comps {
		if c.SVN == nil || *c.SVN < 0 || *c.SVN > 255 {
			return fmt.Errorf("tcb.%s[%d].svn is missing or outside 0..255", name, i)
		}
		dst[i] = uint8(*c.SVN)
	}
	return nil
}

// ParseQEIdentity parses the enclaveIdentity object (the exact signed
// bytes) and its raw r||s signature.
func ParseQEIdentity(raw, signature []byte) (*QEIdentity, error) {
	var j jsonQEIdentity
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("QE Identity: %w", err)
	}
	if j.Version != 2 {
		return nil, fmt.Errorf("QE Identity version %d is not supported (2 is)", j.Version)
	}
	switch j.ID {
	case "QE", "QVE", "TD_QE":
	default:
		return nil, fmt.Errorf("QE Identity id %q is not QE, QVE or TD_QE", j.ID)
	}
	if len(signature) != 64 {
		return nil, fmt.Errorf("QE Identity signature is %d bytes, want 64 (r||s)", len(signature))
	}
	q := &QEIdentity{Raw: raw, Signature: signature, ID: j.ID, Version: j.Version, TCBEvaluationDataNumber: j.TCBEvaluationDataNumber}
	var err error
	if q.IssueDate, err = parseTime(j.IssueDate, "issueDate"); err != nil {
		return nil, fmt.Errorf("QE Identity: %w", err)
	}
	if q.NextUpdate, err = parseTime(j.NextUpdate, "nextUpdate"); err != nil {
		return nil, fmt.Errorf("QE Identity: %w", err)
	}
	var ms, msm [4]byte
	if err := hexFixed(j.MiscSelect, ms[:], "miscselect"); err != nil {
		return nil, fmt.Errorf("QE Identity: %w", err)
	}
	if err := hexFixed(j.MiscSelectMask, msm[:], "miscselectMask"); err != nil {
		return nil, fmt.Errorf("QE Identity: %w", err)
	}
	// MISCSELECT is written as a big-endian 32-bit number.
	q.MiscSelect = binary.BigEndian.Uint32(ms[:])
	q.MiscSelectMask = binary.BigEndian.Uint32(msm[:])
	if err := hexFixed(j.Attributes, q.Attributes[:], "attributes"); err != nil {
		return nil, fmt.Errorf("QE Identity: %w", err)
	}
	if err := hexFixed(j.AttributesMask, q.AttributesMask[:], "attributesMask"); err != nil {
		return nil, fmt.Errorf("QE Identity: %w", err)
	}
	if err := hexFixed(j.MRSIGNER, q.MRSIGNER[:], "mrsigner"); err != nil {
		return nil, fmt.Errorf("QE Identity: %w", err)
	}
	if j.ISVProdID == nil || *j.ISVProdID < 0 || *j.ISVProdID > 65535 {
		return nil, fmt.Errorf("QE Identity: isvprodid is missing or outside 0..65535")
	}
	q.ISVProdID = uint16(*j.ISVProdID)
	if len(j.TCBLevels) == 0 {
		return nil, fmt.Errorf("QE Identity has no TCB levels")
	}
	for i, jl := range j.TCBLevels {
		l, err := parseISVSVNLevel(jl)
		if err != nil {
			return nil, fmt.Errorf("QE Identity: tcbLevels[%d]: %w", i, err)
		}
		q.TCBLevels = append(q.TCBLevels, l)
	}
	return q, nil
}

func parseTime(s, name string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%s is missing", name)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", name, s)
	}
	return t.UTC(), nil
}

func hexFixed(s string, dst []byte, name string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%s %q is not %d hex digits", name, s, 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%s %q is not hex", name, s)
	}
	return nil
}

// sortedUnion merges advisory ID lists into one sorted list without
// duplicates; it never returns nil, so JSON shows [] rather than null.
func sortedUnion(lists ...[]string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, l := range lists {
		for _, id := range l {
			id = strings.TrimSpace(id)
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
