package policy

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// Claim issuers.
const (
	IssuerService = "AttestationService" // claims from verified evidence (the default for incoming claims with Issuer "")
	IssuerPolicy  = "AttestationPolicy"  // claims added/issued by the policy
	IssuerCustom  = "CustomClaim"
)

// Claim is one claim going into or coming out of a policy.
type Claim struct {
	Type string
	// Incoming: bool; any Go integer type; string; json.Number (integer -> Integer, otherwise JSON);
	// []string or []any of primitives -> Set; anything else encoding/json can marshal
	// (maps, structs, float64, nested slices) -> a JSON value whose text is its JSON encoding.
	// A nil Value means "no value": the claim is ignored.
	// Outgoing (Decision.Issued): bool, int64, string, []any (a Set, members bool/int64/string),
	// or json.RawMessage (a JSON value) — i.e. ready for encoding/json.
	Value  any
	Issuer string
}

// Limits bound what a policy may cost. A zero or negative field means "use the default".
type Limits struct {
	MaxTextBytes       int // policy text size; default 64 KiB
	MaxDepth           int // nesting of function calls / expressions; default 16
	MaxRules           int // total rules; default 1000
	MaxBindingsPerRule int // combinations of identifier bindings one rule may fire for, per evaluation; default 1024
	MaxClaims          int // size of the working claim set during evaluation; default 4096
	MaxValueBytes      int // largest string/JSON value a function may produce; default 1 MiB
	// MaxSteps bounds the claim tests one evaluation may perform in total, so that a policy whose
	// conditions never fire (and so never reach MaxBindingsPerRule) still cannot run for long.
	// Default 1<<24.
	MaxSteps int
}

// DefaultLimits returns the limits Compile uses.
func DefaultLimits() Limits {
	return Limits{
		MaxTextBytes:       64 << 10,
		MaxDepth:           16,
		MaxRules:           1000,
		MaxBindingsPerRule: 1024,
		MaxClaims:          4096,
		MaxValueBytes:      1 << 20,
		MaxSteps:           1 << 24,
	}
}

// withDefaults fills every unset field so the rest of the package never sees a zero limit.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxTextBytes, d.MaxTextBytes)
	set(&l.MaxDepth, d.MaxDepth)
	set(&l.MaxRules, d.MaxRules)
	set(&l.MaxBindingsPerRule, d.MaxBindingsPerRule)
	set(&l.MaxClaims, d.MaxClaims)
	set(&l.MaxValueBytes, d.MaxValueBytes)
	set(&l.MaxSteps, d.MaxSteps)
	return l
}

// Error is every compile-time error: syntax (MAA calls it PolicyParsingError), semantic (unknown
// function, wrong arity, type errors detectable statically, action not allowed in that section,
// feature not available in the declared version, undefined identifier, unknown property) and limit
// errors. Line and Column are 1-based and point at the offending token; Column counts Unicode
// characters, not bytes.
type Error struct {
	Line, Column int
	Kind         string // "syntax" | "semantic" | "limit"
	Msg          string
}

// Error kinds.
const (
	KindSyntax   = "syntax"
	KindSemantic = "semantic"
	KindLimit    = "limit"
)

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// EvalError is a runtime error: the policy compiled but could not be evaluated over these claims,
// e.g. JsonToClaimValue of an object, JmesPath on invalid JSON, or a limit reached. Line and Column
// point at the construct that failed (0 when no single construct is to blame).
type EvalError struct {
	Line, Column int
	Msg          string
	err          error // the context error when evaluation was cancelled
}

// Unwrap returns context.Canceled or context.DeadlineExceeded when evaluation stopped because its
// context ended, so callers can tell that from a faulty policy.
func (e *EvalError) Unwrap() error { return e.err }

func (e *EvalError) Error() string {
	if e.Line == 0 {
		return "policy evaluation: " + e.Msg
	}
	return fmt.Sprintf("policy evaluation: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Decision is the outcome of one evaluation.
type Decision struct {
	Permit bool
	// Issued holds the outgoing claims in issue order (issuer AttestationPolicy unless copied with
	// issue(claim=c)). The same Type may occur more than once; see IssuedMap.
	Issued []Claim
	// Properties holds the values set by issueproperty (bool, int64 or string), validated per
	// property; the last value set wins. Nil when no property was set.
	Properties map[string]any
	// Reason says why the evidence was not permitted, e.g. `deny() at line 3, column 5` or
	// `no authorization rule permitted`. Empty when Permit is true.
	Reason string
}

// IssuedMap folds Issued into one value per claim type, the shape a JWT body needs: a type issued
// once keeps its value; a type issued several times becomes a []any of the values in issue order
// (members of Set values are spliced in). This mirrors MAA's model, where a set of values is
// several claims of one type.
func (d *Decision) IssuedMap() map[string]any {
	if d == nil || len(d.Issued) == 0 {
		return nil
	}
	m := make(map[string]any, len(d.Issued))
	multi := map[string]bool{}
	for _, c := range d.Issued {
		old, seen := m[c.Type]
		if !seen {
			m[c.Type] = c.Value
			continue
		}
		var acc []any
		if multi[c.Type] {
			acc = old.([]any)
		} else {
			acc = appendSpliced(nil, old)
			multi[c.Type] = true
		}
		m[c.Type] = appendSpliced(acc, c.Value)
	}
	return m
}

func appendSpliced(acc []any, v any) []any {
	if s, ok := v.([]any); ok {
		return append(acc, s...)
	}
	return append(acc, v)
}

// Policy is a compiled policy. It is immutable and safe for concurrent Evaluate calls.
type Policy struct {
	text     string
	version  string
	hash     string
	lim      Limits
	sections [numSections][]*rule
	maxSlots int // most identifiers in one rule
	maxConds int // most conditions in one rule
	nIssue   int // issue actions in issuancerules, to size the outgoing slice
	nAdd     int // add/issue/issueproperty actions, to size the working set
}

// Text returns the policy text exactly as compiled.
func (p *Policy) Text() string { return p.text }

// Version returns the declared policy version: "1.0", "1.1" or "1.2".
func (p *Policy) Version() string { return p.version }

// Hash returns Hash(p.Text()), precomputed.
func (p *Policy) Hash() string { return p.hash }

// Hash is MAA's x-ms-policy-hash: base64url_nopad(SHA-256(ASCII(base64url_nopad(UTF-8 text)))).
// MAA hashes the base64url form because that is what it stores; hashing the raw text would give a
// different value, and relying parties compare this claim byte for byte.
func Hash(text string) string {
	enc := base64.RawURLEncoding.EncodeToString([]byte(text))
	sum := sha256.Sum256([]byte(enc))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Compile parses, checks and compiles a policy once, with DefaultLimits. The *Policy is immutable
// and safe for concurrent Evaluate.
func Compile(text string) (*Policy, error) {
	return CompileWithLimits(text, DefaultLimits())
}

// CompileWithLimits is Compile with explicit limits; zero fields take their defaults. Every error
// it returns is an *Error.
func CompileWithLimits(text string, l Limits) (p *Policy, err error) {
	l = l.withDefaults()
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*Error); ok {
				p, err = nil, e
				return
			}
			// A bug, not a property of the input: report it as an error rather than crash the
			// caller, which may be serving other tenants.
			p, err = nil, &Error{Line: 1, Column: 1, Kind: KindSemantic, Msg: fmt.Sprintf("internal compiler error: %v", r)}
		}
	}()
	return compile(text, l), nil
}
