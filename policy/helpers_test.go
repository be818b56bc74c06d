package policy

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// defaultSGX is MAA's shared-instance default SGX policy, byte for byte.
const defaultSGX = `version= 1.0;authorizationrules{=> permit();};issuancerules{c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);};`

const (
	mrenclave = "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2"
	mrsigner  = "2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa"
)

// collateral has the shape of x-ms-sgx-collateral as attestd's service passes it: a struct.
type collateral struct {
	QEIDCertsHash    string `json:"qeidcertshash"`
	QEIDCRLHash      string `json:"qeidcrlhash"`
	QEIDHash         string `json:"qeidhash"`
	QuoteHash        string `json:"quotehash"`
	TCBInfoCertsHash string `json:"tcbinfocertshash"`
	TCBInfoCRLHash   string `json:"tcbinfocrlhash"`
	TCBInfoHash      string `json:"tcbinfohash"`
}

// sgxClaims are the incoming claims of a real SGX quote: Go ints for numbers, a map for the
// collateral, []string for advisories.
func sgxClaims() []Claim {
	h := "3f5c7a5e1d6f2a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b"
	return []Claim{
		{Type: "x-ms-ver", Value: "1.0"},
		{Type: "x-ms-attestation-type", Value: "sgx"},
		{Type: "x-ms-sgx-is-debuggable", Value: false},
		{Type: "x-ms-sgx-mrenclave", Value: mrenclave},
		{Type: "x-ms-sgx-mrsigner", Value: mrsigner},
		{Type: "x-ms-sgx-product-id", Value: 1},
		{Type: "x-ms-sgx-svn", Value: 1},
		{Type: "x-ms-sgx-report-data", Value: "ed11a9eb2d1e5c54b48c8cbb0d9a6f7ec7b1a1d4e8a3e43f8a9c7f0d4f9041d" + "0000000000000000000000000000000000000000000000000000000000000000"},
		{Type: "x-ms-sgx-collateral", Value: map[string]any{
			"qeidcertshash": h, "qeidcrlhash": h, "qeidhash": h, "quotehash": h,
			"tcbinfocertshash": h, "tcbinfocrlhash": h, "tcbinfohash": h,
		}},
		{Type: "x-ms-sgx-ehd", Value: "CiAgICAgICAgewogICAgICAgICAgICAia2V5cyI6IFsKICAgICAgICAgICAgICAgIHsKICAgICAgICAgICAgICAgICAgICAia2lkIjoiUlNBLTE"},
		{Type: "x-attestd-tcb-status", Value: "UpToDate"},
		{Type: "x-attestd-advisory-ids", Value: []string{"INTEL-SA-00615"}},
		{Type: "x-attestd-tcb-date", Value: "2024-03-13T00:00:00Z"},
		{Type: "x-attestd-tcb-evaluation-data-number", Value: 17},
		{Type: "x-attestd-fmspc", Value: "00906ed50000"},
		{Type: "x-attestd-collateral-expiry", Value: "2026-01-01T00:00:00Z"},
		{Type: "x-ms-runtime", Value: map[string]any{
			"keys":             []any{map[string]any{"kid": "EnclaveKey", "kty": "RSA", "e": "AQAB", "n": "u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw"}},
			"vm-configuration": map[string]any{"secure-boot": true, "tpm-enabled": true},
		}},
	}
}

func mustCompile(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := Compile(text)
	if err != nil {
		t.Fatalf("Compile: %v\npolicy:\n%s", err, text)
	}
	return p
}

func mustEval(t testing.TB, p *Policy, in []Claim) *Decision {
	t.Helper()
	d, err := p.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return d
}

// issued returns the Issued claims as a map, failing on duplicate types.
func issued(t testing.TB, d *Decision) map[string]any {
	t.Helper()
	m := map[string]any{}
	for _, c := range d.Issued {
		if _, dup := m[c.Type]; dup {
			t.Fatalf("claim %q issued twice: %+v", c.Type, d.Issued)
		}
		m[c.Type] = c.Value
	}
	return m
}

func wantIssued(t testing.TB, d *Decision, want map[string]any) {
	t.Helper()
	got := issued(t, d)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("issued claims:\n got  %#v\n want %#v", got, want)
	}
}

func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *policy.Error", err, err)
	}
	return e
}

func asEvalError(t testing.TB, err error) *EvalError {
	t.Helper()
	var e *EvalError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *policy.EvalError", err, err)
	}
	return e
}

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }
