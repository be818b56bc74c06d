package service

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// AttestationType is the MAA path value naming the evidence type.
type AttestationType string

// The attestation types attestd verifies.
const (
	TypeSGX         AttestationType = "SgxEnclave"
	TypeOpenEnclave AttestationType = "OpenEnclave"
	TypeTDX         AttestationType = "TdxVm"
)

// AttestationTypes lists the supported types in a fixed order.
func AttestationTypes() []AttestationType {
	return []AttestationType{TypeSGX, TypeOpenEnclave, TypeTDX}
}

// ParseAttestationType maps a path value to a type, case-insensitively as
// ASP.NET routing (MAA's) does.
func ParseAttestationType(s string) (AttestationType, bool) {
	for _, t := range AttestationTypes() {
		if strings.EqualFold(s, string(t)) {
			return t, true
		}
	}
	return "", false
}

// DataType says how runtime or init-time data is to be interpreted.
type DataType string

// MAA's data types.
const (
	DataBinary DataType = "Binary"
	DataJSON   DataType = "JSON"
)

// Data is runtime or init-time data sent beside the evidence.
type Data struct {
	Bytes []byte
	Type  DataType
}

// Request is a decoded attestation request.
type Request struct {
	Type AttestationType
	// Evidence is the quote (SgxEnclave, TdxVm) or the Open Enclave report
	// (OpenEnclave), decoded from base64.
	Evidence     []byte
	RuntimeData  *Data
	InitTimeData *Data
	Nonce        string
	// DraftPolicy, when set, is evaluated in place of the stored policy.
	DraftPolicy *string
}

// Open Enclave report header (oe_report_header_t): version, report type,
// report size, then the report itself (an SGX quote for remote reports).
const (
	oeHeaderSize        = 16
	oeReportVersion     = 1
	oeReportTypeRemote  = 2
	oeReportTypeLocal   = 1
	maxOpenEnclaveQuote = 1 << 20
)

// UnwrapOpenEnclaveReport returns the SGX quote inside an Open Enclave
// remote report, checking its header.
func UnwrapOpenEnclaveReport(report []byte) ([]byte, error) {
	if len(report) < oeHeaderSize {
		return nil, fmt.Errorf("the report is %d bytes, shorter than the 16-byte Open Enclave header", len(report))
	}
	version := binary.LittleEndian.Uint32(report[0:4])
	typ := binary.LittleEndian.Uint32(report[4:8])
	size := binary.LittleEndian.Uint64(report[8:16])
	if version != oeReportVersion {
		return nil, fmt.Errorf("unsupported Open Enclave report version %d (want 1)", version)
	}
	switch typ {
	case oeReportTypeRemote:
	case oeReportTypeLocal:
		return nil, fmt.Errorf("the Open Enclave report is a local report; only remote reports can be attested")
	default:
		return nil, fmt.Errorf("unknown Open Enclave report type %d (want 2, remote)", typ)
	}
	body := report[oeHeaderSize:]
	if size == 0 || size > maxOpenEnclaveQuote || size > uint64(len(body)) {
		return nil, fmt.Errorf("the Open Enclave header announces %d report bytes but %d follow", size, len(body))
	}
	return body[:size], nil
}
