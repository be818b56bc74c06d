package service

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/attestd/attestd/token"
)

// TestPolicyHash checks MAA's x-ms-policy-hash formula against the value
// real MAA tokens carry for the shared instances' default SGX policy.
func TestPolicyHash(t *testing.T) {
	if got := PolicyHash(DefaultSGXPolicy); got != "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw" {
		t.Errorf("PolicyHash(default SGX) = %s", got)
	}
}

func TestBuiltinPolicies(t *testing.T) {
	incoming := []Claim{{"x-ms-sgx-is-debuggable", false}, {"x-ms-sgx-mrsigner", "ab"}, {"x-ms-sgx-mrenclave", "cd"},
		{"x-ms-sgx-product-id", 1}, {"x-ms-sgx-svn", 2}, {"x-ms-attestation-type", "sgx"}, {"x-ms-ver", "1.0"}}
	b, err := NewBuiltinPolicies()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := b.Evaluate(ctx, TypeSGX, nil, incoming)
	if err != nil || !d.Permit || d.Draft || len(d.Issued) != 6 || d.Issued[5].Type != "tee" || d.Issued[5].Value != "sgx" {
		t.Fatalf("default SGX: %+v %v", d, err)
	}
	d, err = b.Evaluate(ctx, TypeTDX, nil, incoming)
	if err != nil || !d.Permit || len(d.Issued) != 0 || d.Hash != PolicyHash(PermitAllPolicy) {
		t.Fatalf("default TDX: %+v %v", d, err)
	}
	draft := "version=1.0; authorizationrules{=> deny();}; issuancerules{};"
	d, err = b.Evaluate(ctx, TypeSGX, &draft, incoming)
	if err != nil || !d.Draft || d.Permit || d.Reason == "" {
		t.Fatalf("deny draft: %+v %v", d, err)
	}
	bad := "version=1.0; authorizationrules{=> deny()}; issuancerules{};"
	if _, err := b.Evaluate(ctx, TypeSGX, &bad, incoming); AsError(err).Code != CodePolicyParsingError {
		t.Fatalf("bad draft: %v", err)
	}
}

// TestIssuedClaimsFolding: a type issued twice becomes an array, in issue
// order; a single issued array stays as it is.
func TestIssuedClaimsFolding(t *testing.T) {
	got := issuedClaims([]Claim{{"a", int64(1)}, {"b", []any{"x"}}, {"a", int64(2)}, {"a", int64(3)}})
	if fmt.Sprint(got["a"]) != "[1 2 3]" || fmt.Sprint(got["b"]) != "[x]" {
		t.Errorf("folded %v", got)
	}
	if _, ok := got["b"].([]any); !ok {
		t.Errorf("b changed type: %T", got["b"])
	}
}

type noKeys struct{}

func (noKeys) ActiveKey() (*token.Key, error) { return nil, errors.New("no key in this test") }

// TestConcurrencyBound: a request that finds every slot taken waits, and
// gives up with request_canceled (503) when its context ends.
func TestConcurrencyBound(t *testing.T) {
	s, err := New(Config{Issuer: "https://a.test", Keys: noKeys{}, Collateral: &FileCollateral{}, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.slots <- struct{}{} // the one slot is busy
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = s.Attest(ctx, &Request{Type: TypeSGX, Evidence: []byte("x")})
	if e := AsError(err); e.Reason != "request_canceled" || e.Status != 503 {
		t.Fatalf("got %v", err)
	}
	// Waiting longer than MaxQueueWait, or finding the queue full: 503.
	s.cfg.MaxQueueWait = 10 * time.Millisecond
	if _, err := s.Attest(context.Background(), &Request{Type: TypeSGX, Evidence: []byte("x")}); AsError(err).Reason != "overloaded" {
		t.Fatalf("after the queue wait: %v", err)
	}
	s.cfg.MaxQueue = 0
	s.waiting.Store(0)
	if _, err := s.Attest(context.Background(), &Request{Type: TypeSGX, Evidence: []byte("x")}); AsError(err).Reason != "overloaded" || AsError(err).Status != 503 {
		t.Fatalf("queue full: %v", err)
	}
	if s.waiting.Load() != 0 {
		t.Fatal("waiter count leaked")
	}
	<-s.slots
	// With the slot free the same request runs (and fails on its evidence).
	_, err = s.Attest(context.Background(), &Request{Type: TypeSGX, Evidence: []byte("x")})
	if e := AsError(err); e.Reason != "malformed_quote" {
		t.Fatalf("got %v", err)
	}
	if len(s.slots) != 0 {
		t.Fatal("a slot leaked")
	}
}

func TestJSONData(t *testing.T) {
	v, err := jsonObject([]byte(`{"n":12345678901234567890,"o":{"a":[1,{"b":2}],"c":"d"},"e":[{"x":1},{"x":2}]}`), "runtimeData")
	if err != nil {
		t.Fatal(err)
	}
	if n := v["n"]; fmt.Sprint(n) != "12345678901234567890" {
		t.Errorf("number became %v", n)
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"o":{"b":1,"b":1}}`, `{"l":[{"x":1,"x":2}]}`, `[1]`, `{} {}`, `null`, `{`} {
		if _, err := jsonObject([]byte(bad), "runtimeData"); AsError(err).Reason != "invalid_json_data" {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
