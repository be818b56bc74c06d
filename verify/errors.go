package verify

import (
	"errors"
	"fmt"
)

// Code classifies why a token was rejected. The set is closed and stable:
// relying parties switch on it (to log, to alert, or to decide whether a
// retry can help), so codes are added but never renamed or removed.
// docs/sdk.md documents each one.
type Code string

// The rejection codes. Every error returned by Verify is an *Error carrying
// exactly one of them.
const (
	// CodeMalformedToken: the token is not a compact JWS with a JSON object
	// header and claims set, is larger than MaxTokenSize, lacks exp,
	// carries a claim of the wrong type (a non-numeric exp, say), or uses a
	// header feature this verifier does not implement (crit).
	CodeMalformedToken Code = "malformed_token"
	// CodeUnsupportedAlgorithm: the header's alg is "none", or is not in
	// the verifier's allow-list.
	CodeUnsupportedAlgorithm Code = "unsupported_algorithm"
	// CodeUnknownKey: the header has no kid, or no key with that kid is
	// published (after one rate-limited refetch of the key set).
	CodeUnknownKey Code = "unknown_key"
	// CodeInvalidKey: the key set entry that the kid selects cannot be
	// used: it does not parse, its n/e or x/y disagree with its
	// certificate, its certificate is outside its validity window at the
	// verification time, it is not a signing key, or it is too weak.
	CodeInvalidKey Code = "invalid_key"
	// CodeBadSignature: the signature does not verify under the selected
	// key, or the key's type does not fit the header's alg.
	CodeBadSignature Code = "bad_signature"
	// CodeExpired: exp lies in the past by more than the leeway.
	CodeExpired Code = "expired"
	// CodeNotYetValid: nbf or iat lies in the future by more than the
	// leeway.
	CodeNotYetValid Code = "not_yet_valid"
	// CodeWrongIssuer: the token's iss is not the configured issuer, or the
	// issuer's OpenID metadata names another issuer.
	CodeWrongIssuer Code = "wrong_issuer"
	// CodeSimulatedEvidence: the token says its evidence came from the
	// simulated TEE platform ("x-attestd-simulated": true) and the verifier
	// was not built with WithAllowSimulated.
	CodeSimulatedEvidence Code = "simulated_evidence"
	// CodeClaimMismatch: a claim given to WithExpectedClaims is missing or
	// has another value.
	CodeClaimMismatch Code = "claim_mismatch"
	// CodeUntrustedJKU: the header's jku is not the jwks_uri found by
	// discovery. The verifier never fetches jku; a mismatch means the token
	// points at keys this issuer does not publish.
	CodeUntrustedJKU Code = "untrusted_jku"
	// CodeKeyUnavailable: the OpenID metadata or the key set could not be
	// fetched or parsed. Unlike the other codes this one is usually
	// transient: the token itself may be fine.
	CodeKeyUnavailable Code = "key_unavailable"
)

// Codes lists every rejection code, in documentation order.
func Codes() []Code {
	return []Code{
		CodeMalformedToken, CodeUnsupportedAlgorithm, CodeUnknownKey, CodeInvalidKey,
		CodeBadSignature, CodeExpired, CodeNotYetValid, CodeWrongIssuer,
		CodeSimulatedEvidence, CodeClaimMismatch, CodeUntrustedJKU, CodeKeyUnavailable,
	}
}

// Error is a rejection: a code, a message naming the check that failed, and
// the underlying cause when there is one (a network error, a parse error).
type Error struct {
	Code    Code
	Message string
	Err     error // underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("verify: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("verify: %s: %s", e.Code, e.Message)
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

func newError(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}
