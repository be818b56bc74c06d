package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// seedPolicies are whole policies for the fuzzer to mutate: every example above and the bench one.
func seedPolicies() []string {
	return []string{
		defaultSGX, exLegacyDollarClaims, exDefaultSGX11, exCustomSGX, exMultipleSigners, exDebugDeny,
		exTPM11, exSecureBoot12, exTPMCodeIntegrity12, exAggregateAcrossRules, exPCRMatch,
		exGrammarIdentifiers, exDynamicQuery, exIssueJSON, benchCustomPolicy,
		`version=1.0; authorizationrules{ =>deny(); }; issuancerules{ };`,
		`version=1.0; authorizationrules{=> permit();}; issuancerules{};`,
		`version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type="SecurityLevelValue", value=100); };`,
		`version=1.2; authorizationrules { c:[type=="set", value!="a"] && ![type=="x"] => permit(); }; issuancerules { c:[type=="set", value=="b"] => issue(claim=c); c1:[type=="i"] && c2:[type=="s"] => add(type="p", value=AppendString(c2.value, c2.value), issuer="CustomClaim", valueType="String"); };`,
		`version=1.2; authorizationrules { => permit(); }; issuancerules { c:[type=="json"] => issue(type="j", value=JmesPath(c.value, "{a:k,b:s}")); c:[type=="mixed"] => issue(type="m", value=IsSubsetOf(c.value, JsonToClaimValue("[1,\"x\",true]"))); };`,
	}
}

// brokenFragments are near-misses: each is a valid policy with one mistake.
func brokenFragments() []string {
	return []string{
		"", "version", "version=", "version=1.0", "version=1.0;", "version=9.9;authorizationrules{};",
		"version=1.0;authorizationrules{", "version=1.0;authorizationrules{=>", "version=1.0;authorizationrules{=> permit()",
		"version=1.0;authorizationrules{[type==\"x\"", "version=1.0;authorizationrules{c:[type==\"x\"] => issue(claim=c);};",
		"version=1.2;authorizationrules{=> permit();};issuancerules{=> issue(type=\"a\", value=JmesPath(\"{\", \"[\"));};",
		"version=1.2;authorizationrules{=> permit();};issuancerules{=> issue(type=\"a\", value=NegateBool(NegateBool(NegateBool(true)));};",
		"version=1.0;authorizationrules{/* unterminated", "version=1.0;authorizationrules{[type==\"\\u12",
		"version=1.2;authorizationrules{!c:[type==\"x\"] => permit();};", "version=1.0;authorizationrules{[value==-9223372036854775808] => permit();};",
		"version=1.0;authorizationrules{[value==99999999999999999999] => permit();};",
		"version=1.1;configurationrules{=> issueproperty(type=\"required_pcr_mask\", value=0xFF);};authorizationrules{};",
		"version=1.0;\xff\xfe", "version=1.0;authorizationrules{[type==\"\xff\"] => permit();};",
	}
}

// fuzzClaims is the fixed claim set every fuzzed policy is evaluated over.
func fuzzClaims() []Claim {
	in := append(sgxClaims(), typedClaims()...)
	return append(in,
		Claim{Type: "events", Value: tcgEvents("AQ")},
		Claim{Type: "JsonData", Value: `{"values": [0,1,2,3,4]}`},
		Claim{Type: "a", Value: "1"}, Claim{Type: "a", Value: "2"},
	)
}

func FuzzCompile(f *testing.F) {
	for _, s := range seedPolicies() {
		f.Add(s)
	}
	for _, s := range brokenFragments() {
		f.Add(s)
	}
	in := fuzzClaims()
	lim := Limits{MaxTextBytes: 8 << 10, MaxSteps: 1 << 16, MaxBindingsPerRule: 256, MaxValueBytes: 64 << 10}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := CompileWithLimits(text, lim)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile error %v is %T, not *Error", err, err)
			}
			if e.Line < 1 || e.Column < 1 || (e.Kind != KindSyntax && e.Kind != KindSemantic && e.Kind != KindLimit) {
				t.Fatalf("malformed error %#v", e)
			}
			if strings.Contains(e.Msg, "internal") {
				t.Fatalf("internal error: %v", e)
			}
			return
		}
		if p.Text() != text || p.Hash() != Hash(text) {
			t.Fatal("Text/Hash mismatch")
		}
		d, err := p.Evaluate(context.Background(), in)
		if err != nil {
			var e *EvalError
			if !errors.As(err, &e) {
				t.Fatalf("Evaluate error %v is %T, not *EvalError", err, err)
			}
			if strings.Contains(e.Msg, "internal error") {
				t.Fatalf("internal error: %v\npolicy: %q", e, text)
			}
			return
		}
		if d.Permit != (d.Reason == "") {
			t.Fatalf("decision %+v", d)
		}
		if !d.Permit && len(d.Issued) > 0 {
			t.Fatalf("claims issued without permit: %+v", d)
		}
		d.IssuedMap()
	})
}

// FuzzEvaluateClaims runs the seed policies over claim values decoded from fuzzed JSON, the shape
// of data a client controls through runtime data.
func FuzzEvaluateClaims(f *testing.F) {
	f.Add("x-ms-runtime", []byte(`{"keys":[{"kid":"k","kty":"RSA"}]}`), false)
	f.Add("events", []byte(`{"Events":[{"PcrIndex":7,"ProcessedData":{"UnicodeName":"SecureBoot","VariableData":"AQ"}}]}`), true)
	f.Add("x-attestd-advisory-ids", []byte(`["INTEL-SA-00615", 1, true, null]`), true)
	f.Add("x-ms-sgx-svn", []byte(`12345678901234567890`), true)
	f.Add("boolProperties", []byte(`"[{\"EVENT_CODEINTEGRITY\":true}]"`), false)
	var pols []*Policy
	for _, s := range seedPolicies() {
		p, err := CompileWithLimits(s, Limits{MaxSteps: 1 << 16, MaxValueBytes: 64 << 10})
		if err != nil {
			f.Fatal(err)
		}
		pols = append(pols, p)
	}
	f.Fuzz(func(t *testing.T, typ string, js []byte, useNumber bool) {
		var v any
		d := json.NewDecoder(bytes.NewReader(js))
		if useNumber {
			d.UseNumber()
		}
		if d.Decode(&v) != nil {
			v = string(js)
		}
		in := append(sgxClaims(), Claim{Type: typ, Value: v}, Claim{Type: "events", Value: v})
		for _, p := range pols {
			_, err := p.Evaluate(context.Background(), in)
			var e *EvalError
			if err != nil && (!errors.As(err, &e) || strings.Contains(e.Msg, "internal error")) {
				t.Fatalf("%v\npolicy %q", err, p.Text())
			}
		}
	})
}
