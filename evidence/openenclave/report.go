// Package openenclave handles Open Enclave's evidence envelope: a remote
// report (oe_report_header_t, then the SGX quote), which is what MAA's
// /attest/OpenEnclave takes. The quote inside is verified by evidence/dcap.
package openenclave

import (
	"encoding/binary"
	"fmt"
)

// Open Enclave report header (oe_report_header_t): version, report type,
// report size, then the report itself (an SGX quote for remote reports).
const (
	// HeaderSize is the size of oe_report_header_t.
	HeaderSize          = 16
	oeReportVersion     = 1
	oeReportTypeRemote  = 2
	oeReportTypeLocal   = 1
	maxOpenEnclaveQuote = 1 << 20
)

// Unwrap returns the SGX quote inside an Open Enclave
// remote report, checking its header.
func Unwrap(report []byte) ([]byte, error) {
	if len(report) < HeaderSize {
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
	body := report[HeaderSize:]
	if size == 0 || size > maxOpenEnclaveQuote || size > uint64(len(body)) {
		return nil, fmt.Errorf("the Open Enclave header announces %d report bytes but %d follow", size, len(body))
	}
	return body[:size], nil
}

// Wrap puts an SGX quote in an Open Enclave remote report header.
func Wrap(quote []byte) []byte {
	h := make([]byte, HeaderSize, HeaderSize+len(quote))
	binary.LittleEndian.PutUint32(h[0:], oeReportVersion)
	binary.LittleEndian.PutUint32(h[4:], oeReportTypeRemote)
	binary.LittleEndian.PutUint64(h[8:], uint64(len(quote)))
	return append(h, quote...)
}
