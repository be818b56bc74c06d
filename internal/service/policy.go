package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// Claim is one claim of the incoming or issued set, in rule order.
type Claim struct {
	Type  string
	Value any
}

// PolicyDecision is what a policy made of an attestation.
type PolicyDecision struct {
	Permit bool
	// Issued are the claims the policy issued, in issue order; they go to
	// the token's top level and under x-ms-policy.
	Issued []Claim
	// Hash is x-ms-policy-hash of the policy text.
	Hash string
	// Draft says the policy was the request's draftPolicyForAttestation.
	Draft bool
}

// PolicyEvaluator decides whether a token is issued and what it says.
// draft, when not nil, is evaluated in place of the stored policy.
type PolicyEvaluator interface {
	Evaluate(ctx context.Context, t AttestationType, draft *string, incoming []Claim) (*PolicyDecision, error)
}

// PolicyHash is MAA's x-ms-policy-hash: base64url(SHA-256(ASCII(base64url(text)))),
// both base64url without padding (maa-compat.md §2.7).
func PolicyHash(text string) string {
	inner := base64.RawURLEncoding.EncodeToString([]byte(text))
	sum := sha256.Sum256([]byte(inner))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// DefaultSGXPolicy is MAA's default policy for SgxEnclave and OpenEnclave,
// byte for byte as the shared instances store it: permit everything and
// re-issue six evidence claims under their legacy names.
const DefaultSGXPolicy = `version= 1.0;authorizationrules{=> permit();};issuancerules{c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);};`

// PermitAllPolicy permits every verified evidence and issues nothing. It is
// attestd's default for TdxVm (MAA publishes none to copy) and a built-in
// every type accepts as a draft.
const PermitAllPolicy = `version=1.0; authorizationrules{=> permit();}; issuancerules{};`

// builtinPolicy is a built-in policy whose rules are all of the form
// c:[type=="A"] => issue(type="B", value=c.value), evaluated natively until
// the policy engine lands; renames lists the (A, B) pairs in rule order.
type builtinPolicy struct {
	text    string
	renames [][2]string
}

func sgxDefaultRenames() [][2]string {
	return [][2]string{
		{"x-ms-sgx-is-debuggable", "is-debuggable"},
		{"x-ms-sgx-mrsigner", "sgx-mrsigner"},
		{"x-ms-sgx-mrenclave", "sgx-mrenclave"},
		{"x-ms-sgx-product-id", "product-id"},
		{"x-ms-sgx-svn", "svn"},
		{"x-ms-attestation-type", "tee"},
	}
}

// BuiltinPolicies evaluates the built-in default policies. It is the policy
// evaluator until stored custom policies arrive with the policy engine.
type BuiltinPolicies struct{}

func builtins() []builtinPolicy {
	return []builtinPolicy{
		{text: DefaultSGXPolicy, renames: sgxDefaultRenames()},
		{text: PermitAllPolicy},
	}
}

// DefaultPolicyText returns the policy in force for a type by default.
func DefaultPolicyText(t AttestationType) string {
	if t == TypeTDX {
		return PermitAllPolicy
	}
	return DefaultSGXPolicy
}

// Evaluate implements PolicyEvaluator.
func (BuiltinPolicies) Evaluate(_ context.Context, t AttestationType, draft *string, incoming []Claim) (*PolicyDecision, error) {
	text := DefaultPolicyText(t)
	if draft != nil {
		text = strings.TrimSpace(*draft)
	}
	var policy *builtinPolicy
	for _, b := range builtins() {
		if b.text == text {
			policy = &b
			break
		}
	}
	if policy == nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Reason: "draft_policy_unsupported",
			Message: "draftPolicyForAttestation must be one of attestd's built-in policies (see docs/api.md) until custom policies are supported"}
	}
	d := &PolicyDecision{Permit: true, Hash: PolicyHash(text), Draft: draft != nil}
	for _, r := range policy.renames {
		for _, c := range incoming {
			if c.Type == r[0] {
				d.Issued = append(d.Issued, Claim{Type: r[1], Value: c.Value})
			}
		}
	}
	return d, nil
}
