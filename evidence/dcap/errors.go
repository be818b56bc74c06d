package dcap

import (
	"errors"
	"fmt"
)

// Code classifies why evidence was rejected. The set is closed and stable:
// callers (the service, the CLI, policies) switch on it, so codes are never
// renamed, only added. docs/errors.md documents each one.
type Code string

// The rejection codes. Every *Error carries exactly one of them.
const (
	// CodeMalformedQuote: the quote bytes do not parse (bad length, bad
	// field, truncated structure).
	CodeMalformedQuote Code = "malformed_quote"
	// CodeUnsupportedQuoteVersion: a quote version, body type, TEE type,
	// attestation key type or QE vendor (not Intel's) this verifier does
	// not implement.
	CodeUnsupportedQuoteVersion Code = "unsupported_quote_version"
	// CodeUnsupportedCertificationData: a certification data type other
	// than 5 (PCK chain) or 6 (QE report wrapping 5).
	CodeUnsupportedCertificationData Code = "unsupported_certification_data"
	// CodeQuoteSignatureInvalid: the attestation key's signature over the
	// quote header and body does not verify.
	CodeQuoteSignatureInvalid Code = "quote_signature_invalid"
	// CodeQEReportInvalid: the QE report signature by the PCK key does not
	// verify, or the QE report data does not bind the attestation key.
	CodeQEReportInvalid Code = "qe_report_invalid"
	// CodePCKChainInvalid: the PCK certificate chain is malformed, does not
	// chain to the trusted root, or its SGX extension is malformed.
	CodePCKChainInvalid Code = "pck_chain_invalid"
	// CodePCKRevoked: the PCK certificate or one of its CAs is listed in a
	// CRL.
	CodePCKRevoked Code = "pck_revoked"
	// CodeCertificateExpired: a certificate (PCK chain or collateral issuer
	// chain) is not valid at the verification time.
	CodeCertificateExpired Code = "certificate_expired"
	// CodeCollateralMissing: a piece of collateral needed for the checks
	// was not supplied.
	CodeCollateralMissing Code = "collateral_missing"
	// CodeCollateralMalformed: collateral bytes do not parse.
	CodeCollateralMalformed Code = "collateral_malformed"
	// CodeCollateralExpired: TCB Info, QE Identity or a CRL is outside its
	// issueDate/thisUpdate .. nextUpdate window at the verification time.
	CodeCollateralExpired Code = "collateral_expired"
	// CodeCollateralSignatureInvalid: a TCB Info, QE Identity or CRL
	// signature does not verify, or its issuer chain is not trusted.
	CodeCollateralSignatureInvalid Code = "collateral_signature_invalid"
	// CodeCollateralMismatch: the collateral is for another platform or
	// TEE (FMSPC, PCE ID, TCB Info id, QE Identity id).
	CodeCollateralMismatch Code = "collateral_mismatch"
	// CodeTCBLevelNotSupported: no TCB level in the TCB Info (or in the
	// TDX module identity) is satisfied by the platform's SVNs.
	CodeTCBLevelNotSupported Code = "tcb_level_not_supported"
	// CodeQEIdentityMismatch: the QE report does not match the QE Identity
	// (MRSIGNER, ISVPRODID, masked MISCSELECT or ATTRIBUTES).
	CodeQEIdentityMismatch Code = "qe_identity_mismatch"
	// CodeTDXModuleMismatch: the TDX module (MRSIGNERSEAM, SEAM attributes,
	// module version) matches no module identity in the TCB Info.
	CodeTDXModuleMismatch Code = "tdx_module_mismatch"
	// CodeTCBRevoked: the matched platform, QE or TDX module TCB level has
	// status Revoked, or the QE's ISVSVN is below every QE TCB level.
	CodeTCBRevoked Code = "tcb_revoked"
)

// Codes lists every rejection code, in documentation order.
func Codes() []Code {
	return []Code{
		CodeMalformedQuote, CodeUnsupportedQuoteVersion, CodeUnsupportedCertificationData,
		CodeQuoteSignatureInvalid, CodeQEReportInvalid, CodePCKChainInvalid, CodePCKRevoked,
		CodeCertificateExpired, CodeCollateralMissing, CodeCollateralMalformed,
		CodeCollateralExpired, CodeCollateralSignatureInvalid, CodeCollateralMismatch,
		CodeTCBLevelNotSupported, CodeQEIdentityMismatch, CodeTDXModuleMismatch, CodeTCBRevoked,
	}
}

// Error is a rejection: a code plus a message naming the check that failed.
type Error struct {
	Code    Code
	Message string
	Err     error // underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of the first *Error in err's chain, or "" when
// there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newErr(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func wrapErr(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}
