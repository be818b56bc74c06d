package service

import (
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
