package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// MAA error codes (maa-compat.md §1.6), the "code" of the error body.
const (
	CodeInvalidParameter      = "InvalidParameter"
	CodeInvalidOperation      = "InvalidOperation"
	CodePolicyEvaluationError = "PolicyEvaluationError"
	CodeInternalError         = "InternalError"
	CodePolicyParsingError    = "PolicyParsingError"
	CodeUnauthorized          = "Unauthorized"
)

// Error is a refused request: the HTTP status and MAA code clients switch
// on, attestd's own stable reason (documented in docs/api.md; for evidence
// failures the evidence verifier's code), and a message safe to show the
// caller. Err holds the cause for the log; it never reaches the response.
type Error struct {
	Status  int
	Code    string
	Reason  string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s (%s): %s: %v", e.Code, e.Reason, e.Message, e.Err)
	}
	return fmt.Sprintf("%s (%s): %s", e.Code, e.Reason, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as an *Error, classifying anything else as an
// internal error whose detail stays out of the response.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller gave up (or the server is shutting down) while the
		// request waited or ran: not a fault of attestd's.
		return &Error{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Reason: "request_canceled",
			Message: "the request was canceled before it completed", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternalError, Reason: "internal",
		Message: "the service failed to process the request", Err: err}
}

// BadRequest builds a 400 InvalidParameter error.
func BadRequest(reason, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Reason: reason, Message: fmt.Sprintf(format, args...)}
}
