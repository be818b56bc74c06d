package service

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/token"
)

// Claim is one claim of the incoming or issued set, in rule order.
type Claim struct {
	Type  string
	Value any
}

// PolicyDecision is what a policy made of an attestation.
type PolicyDecision struct {
	Permit bool
	// Reason says why the policy did not permit the evidence.
	Reason string
	// Issued are the claims the policy issued, in issue order; they go to
	// the token's top level and under x-ms-policy.
	Issued []Claim
	// Hash is x-ms-policy-hash of the policy text.
	Hash string
	// Draft says the policy was the request's draftPolicyForAttestation.
	Draft bool
	// Signer is the certificate that signed the stored policy, if it was
	// signed; tokens then carry it as x-ms-policy-signer.
	Signer *x509.Certificate
	// TokenLifetime, when not zero, replaces the service's token lifetime
	// (property report_validity_in_minutes).
	TokenLifetime time.Duration
	// HeaderCertificate is "x5c" or "x5t" when the policy set omit_x5c
	// (false or true) and the token header is to name the signing
	// certificate; "" keeps MAA's header.
	HeaderCertificate string
}

// PolicyEvaluator decides whether a token is issued and what it says.
// draft, when not nil, is evaluated in place of the stored policy.
type PolicyEvaluator interface {
	Evaluate(ctx context.Context, t AttestationType, draft *string, incoming []Claim) (*PolicyDecision, error)
}

// PolicyHash is MAA's x-ms-policy-hash (maa-compat.md §2.7).
func PolicyHash(text string) string { return policy.Hash(text) }

// DefaultSGXPolicy is MAA's default policy for SgxEnclave and OpenEnclave,
// byte for byte as the shared instances store it: permit everything and
// re-issue six evidence claims under their legacy names.
const DefaultSGXPolicy = `version= 1.0;authorizationrules{=> permit();};issuancerules{c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);};`

// PermitAllPolicy permits every verified evidence and issues nothing. It is
// attestd's default for TdxVm (MAA publishes none to copy).
const PermitAllPolicy = `version=1.0; authorizationrules{=> permit();}; issuancerules{};`

// DefaultPolicyText returns the policy in force for a type by default.
func DefaultPolicyText(t AttestationType) string {
	if t == TypeTDX {
		return PermitAllPolicy
	}
	return DefaultSGXPolicy
}

// CompileDefaultPolicy compiles the built-in default of a type.
func CompileDefaultPolicy(t AttestationType) (*policy.Policy, error) {
	p, err := policy.Compile(DefaultPolicyText(t))
	if err != nil {
		return nil, fmt.Errorf("service: built-in %s policy: %w", t, err)
	}
	return p, nil
}

// BuiltinPolicies evaluates the built-in default policies, and drafts. It
// is the evaluator of a service without a policy store (tests, tools).
type BuiltinPolicies struct {
	defaults map[AttestationType]*policy.Policy
}

// NewBuiltinPolicies compiles the built-in defaults.
func NewBuiltinPolicies() (*BuiltinPolicies, error) {
	b := &BuiltinPolicies{defaults: map[AttestationType]*policy.Policy{}}
	for _, t := range AttestationTypes() {
		p, err := CompileDefaultPolicy(t)
		if err != nil {
			return nil, err
		}
		b.defaults[t] = p
	}
	return b, nil
}

// Evaluate implements PolicyEvaluator.
func (b *BuiltinPolicies) Evaluate(ctx context.Context, t AttestationType, draft *string, incoming []Claim) (*PolicyDecision, error) {
	if draft != nil {
		return EvaluateDraft(ctx, *draft, incoming)
	}
	p, ok := b.defaults[t]
	if !ok {
		return nil, fmt.Errorf("service: no built-in policy for %s", t)
	}
	return Decide(ctx, p, incoming, nil)
}

// EvaluateDraft compiles and evaluates a draftPolicyForAttestation. A
// draft that does not compile is the caller's error, reported as MAA
// reports a bad stored policy: PolicyParsingError with line and column.
func EvaluateDraft(ctx context.Context, text string, incoming []Claim) (*PolicyDecision, error) {
	p, err := policy.Compile(text)
	if err != nil {
		return nil, PolicyCompileError("draftPolicyForAttestation", err)
	}
	d, err := Decide(ctx, p, incoming, nil)
	if err != nil {
		return nil, err
	}
	d.Draft = true
	return d, nil
}

// PolicyCompileError turns a policy compile error into the API error MAA
// gives: 400 PolicyParsingError, with the line and column in the message.
func PolicyCompileError(what string, err error) *Error {
	reason := "policy_invalid"
	var pe *policy.Error
	if errors.As(err, &pe) && pe.Kind == "limit" {
		reason = "policy_too_large"
	}
	return &Error{Status: http.StatusBadRequest, Code: CodePolicyParsingError, Reason: reason,
		Message: fmt.Sprintf("%s: %v", what, err), Err: err}
}

// Decide evaluates a compiled policy over the incoming claims and turns
// its result into a PolicyDecision. signer is the stored policy's signer.
func Decide(ctx context.Context, p *policy.Policy, incoming []Claim, signer *x509.Certificate) (*PolicyDecision, error) {
	in := make([]policy.Claim, len(incoming))
	for i, c := range incoming {
		in[i] = policy.Claim{Type: c.Type, Value: c.Value, Issuer: policy.IssuerService}
	}
	r, err := p.Evaluate(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Status: http.StatusBadRequest, Code: CodePolicyEvaluationError, Reason: "policy_evaluation_failed",
			Message: fmt.Sprintf("evaluating the attestation policy failed: %v", err), Err: err}
	}
	d := &PolicyDecision{Permit: r.Permit, Reason: r.Reason, Hash: p.Hash(), Signer: signer}
	if !r.Permit {
		return d, nil
	}
	d.Issued = make([]Claim, len(r.Issued))
	for i, c := range r.Issued {
		d.Issued[i] = Claim{Type: c.Type, Value: c.Value}
	}
	if v, ok := r.Properties["report_validity_in_minutes"]; ok {
		if m, ok := v.(int64); ok && m > 0 {
			d.TokenLifetime = time.Duration(m) * time.Minute
		}
	}
	if v, ok := r.Properties["omit_x5c"]; ok {
		if omit, ok := v.(bool); ok {
			d.HeaderCertificate = "x5c"
			if omit {
				d.HeaderCertificate = "x5t"
			}
		}
	}
	return d, nil
}

// issuedClaims folds the issued claims into the token body's top level and
// x-ms-policy object. A type issued more than once becomes an array of its
// values in issue order, since a JSON object holds one member per name.
func issuedClaims(issued []Claim) map[string]any {
	out := make(map[string]any, len(issued))
	for _, c := range issued {
		prev, seen := out[c.Type]
		switch {
		case !seen:
			out[c.Type] = c.Value
		default:
			if multi, ok := prev.(multiValue); ok {
				out[c.Type] = append(multi, c.Value)
			} else {
				out[c.Type] = multiValue{prev, c.Value}
			}
		}
	}
	for k, v := range out {
		if multi, ok := v.(multiValue); ok {
			out[k] = []any(multi)
		}
	}
	return out
}

// multiValue marks a claim issued several times while folding, so that a
// single issued array value is not mistaken for one.
type multiValue []any

// signerJWK is x-ms-policy-signer: the policy signer in MAA's JWK shape.
func signerJWK(cert *x509.Certificate) json.RawMessage {
	b, _ := json.Marshal(token.NewCertificateJWK(cert))
	return b
}

// reservedClaim reports whether a claim name belongs to the service: the
// JWT registered claims it sets, MAA's x-ms-* claims and attestd's
// x-attestd-* claims. A policy's issued claim never takes such a name at
// the token's top level, so a policy cannot, say, clear
// x-attestd-simulated or forge x-ms-sgx-mrsigner.
func reservedClaim(name string) bool {
	// Compared without regard to case: relying parties that decode into
	// structs (Go's encoding/json among them) match names that way, so
	// "Nonce" would fill their nonce.
	lower := strings.ToLower(name)
	switch lower {
	case "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "nonce", "cnf",
		// Evidence claims of some types or quote versions only: reserved
		// for all, so that a policy cannot supply one the evidence lacks.
		"eat_profile", "dbgstat", "intuse", "attester_tcb_status":
		return true
	}
	for _, prefix := range []string{"x-ms-", "x-attestd-", "maa-", "aas-", "tdx_", "$"} {
		if strings.HasPrefix(lower, prefix) {
			return true
		}
	}
	return false
}
