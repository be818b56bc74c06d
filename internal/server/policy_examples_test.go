package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testvectors"
	"github.com/attestd/attestd/simulator"
)

// The example policies of maa-compat.md §3.6, evaluated through the HTTP
// API (as draftPolicyForAttestation) against real quotes and simulator
// evidence.

const (
	exampleLegacy = `version= 1.0;
authorizationrules { c:[type=="$is-debuggable"] => permit(); };
issuancerules {
  c:[type=="$is-debuggable"] => issue(type="is-debuggable", value=c.value);
  c:[type=="$sgx-mrsigner"]  => issue(type="sgx-mrsigner",  value=c.value);
  c:[type=="$sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);
  c:[type=="$product-id"]    => issue(type="product-id",    value=c.value);
  c:[type=="$svn"]           => issue(type="svn",           value=c.value);
  c:[type=="$tee"]           => issue(type="tee",           value=c.value);
};`
	exampleCurrentDocs = `version= 1.1;
configurationrules { => issueproperty(type="x-ms-sgx-tcbidentifier", value="azuredefault"); };
authorizationrules { => permit(); };
issuancerules {
  c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);
  c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);
  c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);
  c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);
  c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);
  c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
};`
	exampleCustomSGX = `version= 1.0;
authorizationrules {
  [type=="x-ms-sgx-is-debuggable", value==false] && [type=="x-ms-sgx-product-id", value==%d]
  && [type=="x-ms-sgx-svn", value>=%d] && [type=="x-ms-sgx-mrsigner", value=="%s"] => permit();
};
issuancerules { c:[type=="x-ms-sgx-mrsigner"] => issue(type="enclave-signer", value=c.value); };`
	exampleDenyAll  = `version=1.0; authorizationrules{ =>deny(); }; issuancerules{ };`
	exampleInteger  = `version=1.0; authorizationrules{ => permit(); }; issuancerules{ => issue(type="SecurityLevelValue", value=100); };`
	exampleUpToDate = `version=1.2;
authorizationrules {
  [type=="x-attestd-tcb-status", value=="UpToDate"] => permit();
};
issuancerules { };`
	exampleTDX = `version=1.2;
authorizationrules {
  [type=="attester_tcb_status", value=="UpToDate"] && [type=="dbgstat", value=="disabled"]
  && [type=="tdx_mrtd", value=="%s"] => permit();
};
issuancerules { c:[type=="tdx_mrtd"] => issue(type="vm-image", value=c.value); };`
	// A 1.2 policy reading the JSON runtime data with JmesPath.
	exampleRuntimeJSON = `version=1.2;
authorizationrules {
  c:[type=="x-ms-runtime"] && [type=="x-ms-sgx-is-debuggable", value==false] => permit();
};
issuancerules {
  c:[type=="x-ms-runtime"] => issue(type="client-key-type", value=JsonToClaimValue(JmesPath(c.value, "keys[0].kty")));
  c:[type=="x-ms-runtime"] => issue(type="key-count", value=JsonToClaimValue(JmesPath(c.value, "length(keys)")));
  ![type=="x-ms-sgx-config-id"] => issue(type="kss", value=false);
};`
)

// draftClaims attests with a draft policy and returns the unsecured
// token's claims, or the refusal.
func draftClaims(t *testing.T, e *testEnv, typ string, body map[string]any, policy string) (map[string]any, response) {
	t.Helper()
	body["draftPolicyForAttestation"] = policy
	r := e.attest(typ, body)
	if r.status != 200 {
		return nil, r
	}
	h, c := e.tokenOf(r)
	if h["alg"] != "none" || c["x-attestd-draft-policy"] != true {
		t.Errorf("a draft token must be unsecured and marked: %v", h)
	}
	return c, r
}

func TestPolicyExamplesOnRealSGXQuote(t *testing.T) {
	dir := testvectors.Dir(t)
	e := newEnv(t, envOptions{clock: mustTime(t, "2025-07-01T00:00:00Z"), collateral: []string{"dcap-qvl/sample/sgx_quote_collateral.json"}, noDev: true})
	q := b64u(testvectors.Read(t, dir, "dcap-qvl/sample/sgx_quote"))
	_, base := e.tokenOf(e.attest("SgxEnclave", map[string]any{"quote": q}))
	signer := base["x-ms-sgx-mrsigner"].(string)
	prod, svn := num(t, base["x-ms-sgx-product-id"]), num(t, base["x-ms-sgx-svn"])
	defaultIssued := base["x-ms-policy"].(map[string]any)

	for _, tc := range []struct {
		name, policy string
		permit       bool
		issued       map[string]any // nil: x-ms-policy absent
	}{
		{"(a) legacy $ claims", exampleLegacy, true, defaultIssued},
		{"(c) current docs, 1.1 with configurationrules", exampleCurrentDocs, true, defaultIssued},
		{"custom SGX pattern, matching", fmt.Sprintf(exampleCustomSGX, prod, svn, signer), true, map[string]any{"enclave-signer": signer}},
		{"custom SGX pattern, svn too low", fmt.Sprintf(exampleCustomSGX, prod, svn+1, signer), false, nil},
		{"custom SGX pattern, other signer", fmt.Sprintf(exampleCustomSGX, prod, svn, strings.Repeat("0", 64)), false, nil},
		{"deny-all", exampleDenyAll, false, nil},
		{"custom integer claim", exampleInteger, true, map[string]any{"SecurityLevelValue": json.Number("100")}},
		// S1's platform is ConfigurationAndSWHardeningNeeded.
		{"require TCB UpToDate", exampleUpToDate, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, r := draftClaims(t, e, "SgxEnclave", map[string]any{"quote": q}, tc.policy)
			if !tc.permit {
				wantError(t, r, 400, "PolicyEvaluationError", "policy_denied")
				return
			}
			if c == nil {
				t.Fatalf("refused: %s", r.body)
			}
			got, _ := c["x-ms-policy"].(map[string]any)
			if fmt.Sprint(got) != fmt.Sprint(tc.issued) {
				t.Errorf("x-ms-policy = %v, want %v", got, tc.issued)
			}
			for k, v := range tc.issued {
				if fmt.Sprint(c[k]) != fmt.Sprint(v) {
					t.Errorf("top-level %s = %v, want %v", k, c[k], v)
				}
			}
			for k := range c {
				if strings.HasPrefix(k, "$") {
					t.Errorf("legacy policy-input claim %s leaked into the token", k)
				}
			}
		})
	}
}

func TestPolicyExamplesOnRealTDXQuote(t *testing.T) {
	dir := testvectors.Dir(t)
	e := newEnv(t, envOptions{clock: mustTime(t, "2025-07-01T00:00:00Z"), collateral: []string{"dcap-qvl/sample/tdx_quote_collateral.json"}, noDev: true})
	q := b64u(testvectors.Read(t, dir, "dcap-qvl/sample/tdx_quote"))
	_, base := e.tokenOf(e.attest("TdxVm", map[string]any{"quote": q}))
	mrtd := base["tdx_mrtd"].(string)
	c, r := draftClaims(t, e, "TdxVm", map[string]any{"quote": q}, fmt.Sprintf(exampleTDX, mrtd))
	if c == nil || c["vm-image"] != mrtd {
		t.Errorf("TDX pin of the real MRTD: %s", r.body)
	}
	_, r = draftClaims(t, e, "TdxVm", map[string]any{"quote": q}, fmt.Sprintf(exampleTDX, strings.Repeat("ab", 48)))
	wantError(t, r, 400, "PolicyEvaluationError", "policy_denied")
	// T1 is UpToDate.
	if c, r := draftClaims(t, e, "TdxVm", map[string]any{"quote": q}, strings.Replace(exampleUpToDate, "x-attestd-tcb-status", "attester_tcb_status", 1)); c == nil {
		t.Errorf("UpToDate TDX refused: %s", r.body)
	}
}

func TestPolicyExamplesOnSimulatorEvidence(t *testing.T) {
	e := newEnv(t, envOptions{})
	runtime := []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"BB"},{"kty":"RSA","n":"CC","e":"AQAB"}],"nonce":"n-1"}`)
	q := b64u(e.quote(simulator.QuoteOptions{RuntimeData: runtime}))
	body := func() map[string]any {
		return map[string]any{"quote": q, "runtimeData": map[string]any{"data": b64u(runtime), "dataType": "JSON"}}
	}
	c, r := draftClaims(t, e, "SgxEnclave", body(), exampleRuntimeJSON)
	if c == nil {
		t.Fatalf("refused: %s", r.body)
	}
	if c["client-key-type"] != "EC" || fmt.Sprint(c["key-count"]) != "2" || c["kss"] != false {
		t.Errorf("claims from the runtime JSON: %v %v %v", c["client-key-type"], c["key-count"], c["kss"])
	}
	// A debug enclave is denied by the same policy.
	dq := b64u(e.quote(simulator.QuoteOptions{RuntimeData: runtime, Debug: true}))
	_, r = draftClaims(t, e, "SgxEnclave", map[string]any{"quote": dq, "runtimeData": map[string]any{"data": b64u(runtime), "dataType": "JSON"}}, exampleRuntimeJSON)
	wantError(t, r, 400, "PolicyEvaluationError", "policy_denied")
	// The simulated claim is visible to policies: a production policy can
	// refuse simulator evidence outright.
	refuseSim := `version=1.2; authorizationrules{ ![type=="x-attestd-simulated", value==true] => permit(); }; issuancerules{};`
	_, r = draftClaims(t, e, "SgxEnclave", body(), refuseSim)
	wantError(t, r, 400, "PolicyEvaluationError", "policy_denied")
}

// TestIssuedClaimsCannotRewriteTheToken: a policy issuing claims named
// like the service's own keeps them under x-ms-policy; the top level keeps
// what the evidence and the service said.
func TestIssuedClaimsCannotRewriteTheToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	q := b64u(e.quote(simulator.QuoteOptions{}))
	forger := `version=1.0; authorizationrules{ => permit(); }; issuancerules{
  => issue(type="x-attestd-simulated", value=false);
  => issue(type="x-ms-sgx-mrsigner", value="00");
  => issue(type="iss", value="https://evil.example");
  => issue(type="exp", value=99999999999);
  => issue(type="X-MS-POLICY-HASH", value="forged");
  => issue(type="Nonce", value="fixed");
  => issue(type="attester_tcb_status", value="UpToDate");
  => issue(type="tdx_mrservicetd", value="00");
  => issue(type="tee", value="sgx");
};`
	c, r := draftClaims(t, e, "SgxEnclave", map[string]any{"quote": q}, forger)
	if c == nil {
		t.Fatalf("refused: %s", r.body)
	}
	if c["x-attestd-simulated"] != true || c["x-ms-sgx-mrsigner"] == "00" || c["iss"] != e.issuer || c["X-MS-POLICY-HASH"] != nil ||
		c["Nonce"] != nil || c["attester_tcb_status"] != nil || c["tdx_mrservicetd"] != nil {
		t.Errorf("a policy rewrote service claims: %v", c)
	}
	if fmt.Sprint(c["exp"]) == "99999999999" {
		t.Error("a policy set exp")
	}
	pol := c["x-ms-policy"].(map[string]any)
	if pol["x-attestd-simulated"] != false || pol["iss"] != "https://evil.example" || c["tee"] != "sgx" {
		t.Errorf("x-ms-policy should keep every issued claim, and unreserved ones reach the top: %v", pol)
	}
}
