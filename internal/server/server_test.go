package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/openenclave"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/internal/testvectors"
	"github.com/attestd/attestd/simulator"
)

func num(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestAttestSGXBinaryRuntimeData(t *testing.T) {
	e := newEnv(t, envOptions{})
	runtime := []byte(`{"jwk":{"kty":"EC"}}`)
	mrenclave := [32]byte{1, 2, 3}
	q := e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX, RuntimeData: runtime,
		Enclave: simulator.EnclaveFields{MRENCLAVE: mrenclave, ISVProdID: 7, ISVSVN: 3}})
	h, c := e.tokenOf(e.attest("SgxEnclave", map[string]any{
		"quote": b64u(q), "runtimeData": map[string]string{"data": b64u(runtime), "dataType": "Binary"}, "nonce": "n-123",
	}))
	// The header strict verifiers (Gramine) require.
	// Simulated evidence is signed by the dev key, never the production one.
	if h["alg"] != "RS256" || h["typ"] != "JWT" || h["jku"] != "https://attestd.test/certs" || h["kid"] != sharedDevKey().KID {
		t.Errorf("header %v", h)
	}
	want := map[string]any{
		"iss": "https://attestd.test", "x-ms-ver": "1.0", "x-ms-attestation-type": "sgx",
		"x-ms-sgx-mrenclave": hex.EncodeToString(mrenclave[:]), "x-ms-sgx-is-debuggable": false,
		"x-ms-sgx-ehd": b64u(runtime), "maa-ehd": b64u(runtime), "aas-ehd": b64u(runtime),
		"nonce": "n-123", "x-attestd-simulated": true, "x-attestd-tcb-status": "UpToDate",
		// MAA's default SGX policy hash, as real MAA tokens carry it.
		"x-ms-policy-hash": "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw",
		"is-debuggable":    false, "tee": "sgx", "sgx-mrenclave": hex.EncodeToString(mrenclave[:]),
	}
	for k, v := range want {
		if fmt.Sprint(c[k]) != fmt.Sprint(v) {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if num(t, c["x-ms-sgx-product-id"]) != 7 || num(t, c["x-ms-sgx-svn"]) != 3 || num(t, c["svn"]) != 3 {
		t.Errorf("product id / svn claims: %v %v %v", c["x-ms-sgx-product-id"], c["x-ms-sgx-svn"], c["svn"])
	}
	sum := sha256.Sum256(runtime)
	if rd := c["x-ms-sgx-report-data"]; rd != hex.EncodeToString(sum[:])+strings.Repeat("00", 32) {
		t.Errorf("report data %v", rd)
	}
	if iat, exp, nbf := num(t, c["iat"]), num(t, c["exp"]), num(t, c["nbf"]); exp-iat != 28800 || nbf != iat {
		t.Errorf("iat %d nbf %d exp %d: want an 8 h token with nbf = iat", iat, nbf, exp)
	}
	if jti, _ := c["jti"].(string); len(jti) != 64 {
		t.Errorf("jti %q is not 64 hex", jti)
	}
	col, _ := c["x-ms-sgx-collateral"].(map[string]any)
	qsum := sha256.Sum256(q)
	if col["quotehash"] != hex.EncodeToString(qsum[:]) || len(col) != 7 {
		t.Errorf("x-ms-sgx-collateral %v", col)
	}
	policy, _ := c["x-ms-policy"].(map[string]any)
	if len(policy) != 6 || policy["tee"] != "sgx" {
		t.Errorf("x-ms-policy %v", policy)
	}
	if _, ok := c["x-ms-runtime"]; ok {
		t.Error("Binary runtime data produced x-ms-runtime")
	}
}

func TestAttestSGXJSONRuntimeData(t *testing.T) {
	e := newEnv(t, envOptions{})
	runtime := []byte(`{"jwk":{"kty":"EC","crv":"P-256"},"n":1}`)
	q := e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX, RuntimeData: runtime})
	// Standard base64 with padding, as the 2025-06-01 spec sends.
	_, c := e.tokenOf(e.attest("SgxEnclave", map[string]any{
		"quote": base64.StdEncoding.EncodeToString(q), "runtimeData": map[string]string{"data": base64.StdEncoding.EncodeToString(runtime), "dataType": "JSON"},
	}))
	rt, _ := c["x-ms-runtime"].(map[string]any)
	jwk, _ := rt["jwk"].(map[string]any)
	if jwk["crv"] != "P-256" {
		t.Errorf("x-ms-runtime %v", c["x-ms-runtime"])
	}
	for _, k := range []string{"x-ms-sgx-ehd", "maa-ehd", "aas-ehd"} {
		if _, ok := c[k]; ok {
			t.Errorf("JSON runtime data produced %s", k)
		}
	}
}

func TestAttestOpenEnclave(t *testing.T) {
	e := newEnv(t, envOptions{})
	runtime := []byte("hello")
	report := openenclave.Wrap(e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX, RuntimeData: runtime}))
	_, c := e.tokenOf(e.attest("OpenEnclave", map[string]any{
		"report": b64u(report), "runtimeData": map[string]string{"data": b64u(runtime), "dataType": "Binary"},
	}))
	col, _ := c["x-ms-sgx-collateral"].(map[string]any)
	sum := sha256.Sum256(report)
	// MAA hashes the evidence as sent: the whole report.
	if c["x-ms-attestation-type"] != "sgx" || col["quotehash"] != hex.EncodeToString(sum[:]) {
		t.Errorf("claims %v", c)
	}
	// The quote field is not the OE evidence field.
	wantError(t, e.attest("OpenEnclave", map[string]any{"quote": b64u(report)}), 400, "InvalidParameter", "missing_evidence")
	wantError(t, e.attest("OpenEnclave", map[string]any{"report": b64u(report[16:])}), 400, "InvalidParameter", "malformed_report")
}

func TestAttestTDX(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, o := range []simulator.QuoteOptions{
		{TEE: dcap.TEETDX, Version: 4},
		{TEE: dcap.TEETDX, Version: 5, Body: dcap.BodyTD15},
	} {
		runtime := []byte(`{"k":"v"}`)
		o.RuntimeData = runtime
		q := e.quote(o)
		_, c := e.tokenOf(e.attest("TdxVm", map[string]any{
			"quote": b64u(q), "runtimeData": map[string]string{"data": b64u(runtime), "dataType": "JSON"},
		}))
		if c["x-ms-attestation-type"] != "tdxvm" || c["eat_profile"] != service.TDXEATProfile ||
			c["attester_tcb_status"] != "UpToDate" || c["dbgstat"] != "disabled" || c["tdx_td_attributes_debug"] != false {
			t.Errorf("v%d claims %v", o.Version, c)
		}
		if rt, _ := c["x-ms-runtime"].(map[string]any); rt["k"] != "v" {
			t.Errorf("x-ms-runtime %v", c["x-ms-runtime"])
		}
		if len(c["tdx_mrtd"].(string)) != 96 || len(c["tdx_report_data"].(string)) != 128 {
			t.Errorf("tdx_mrtd %v tdx_report_data %v", c["tdx_mrtd"], c["tdx_report_data"])
		}
		if c["x-ms-policy-hash"] != service.PolicyHash(service.PermitAllPolicy) {
			t.Errorf("policy hash %v", c["x-ms-policy-hash"])
		}
	}
}

// TestRealVectors attests real quotes with their real collateral through
// the HTTP API, at each vector's verification time.
func TestRealVectors(t *testing.T) {
	dir := testvectors.Dir(t)
	cases := []struct {
		set, typ, path, collateral, status string
		at                                 string
	}{
		{"S1", "SgxEnclave", "dcap-qvl/sample/sgx_quote", "dcap-qvl/sample/sgx_quote_collateral.json", "ConfigurationAndSWHardeningNeeded", "2025-07-01T00:00:00Z"},
		{"T1", "TdxVm", "dcap-qvl/sample/tdx_quote", "dcap-qvl/sample/tdx_quote_collateral.json", "UpToDate", "2025-07-01T00:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.set, func(t *testing.T) {
			at := mustTime(t, tc.at)
			e := newEnv(t, envOptions{clock: at, collateral: []string{tc.collateral}, noDev: true})
			q := testvectors.Read(t, dir, tc.path)
			h, c := e.tokenOf(e.attest(tc.typ, map[string]any{"quote": b64u(q)}))
			if h["kid"] != sharedKey().KID {
				t.Errorf("a real quote's token is signed by %v, not the production key", h["kid"])
			}
			if c["x-attestd-tcb-status"] != tc.status {
				t.Errorf("tcb status %v, want %s", c["x-attestd-tcb-status"], tc.status)
			}
			if _, ok := c["x-attestd-simulated"]; ok {
				t.Error("a real quote's token says simulated")
			}
			// The wrong route for the quote's TEE.
			other := "TdxVm"
			if tc.typ == "TdxVm" {
				other = "SgxEnclave"
			}
			wantError(t, e.attest(other, map[string]any{"quote": b64u(q)}), 400, "InvalidParameter", "evidence_type_mismatch")
			// Out of the collateral's window.
			late := newEnv(t, envOptions{clock: at.AddDate(1, 0, 0), collateral: []string{tc.collateral}, noDev: true})
			r := late.attest(tc.typ, map[string]any{"quote": b64u(q)})
			if r.status != 400 {
				t.Errorf("a year later: status %d %s", r.status, r.body)
			}
		})
	}
	t.Run("no collateral", func(t *testing.T) {
		e := newEnv(t, envOptions{clock: mustTime(t, "2025-07-01T00:00:00Z"), noDev: true})
		q := testvectors.Read(t, dir, "dcap-qvl/sample/sgx_quote")
		wantError(t, e.attest("SgxEnclave", map[string]any{"quote": b64u(q)}), 400, "InvalidParameter", "collateral_unavailable")
	})
	t.Run("simulator quote without dev mode", func(t *testing.T) {
		e := newEnv(t, envOptions{noDev: true, collateral: []string{"dcap-qvl/sample/sgx_quote_collateral.json"}})
		q := e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX})
		wantError(t, e.attest("SgxEnclave", map[string]any{"quote": b64u(q)}), 400, "InvalidParameter", "pck_chain_invalid")
	})
}

// TestSimulatorFaults sends every simulator fault through the HTTP API:
// each rejection gets a 400 whose reason is the verifier's code; faults the
// verifier turns into a TCB status get a token that says so; the runtime
// data fault is caught by the binding check.
func TestSimulatorFaults(t *testing.T) {
	e := newEnv(t, envOptions{})
	runtime := []byte("bound runtime data")
	for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
		route := "SgxEnclave"
		if tee == dcap.TEETDX {
			route = "TdxVm"
		}
		for _, f := range simulator.Faults() {
			if !f.AppliesTo(tee) {
				continue
			}
			t.Run(route+"/"+f.Name, func(t *testing.T) {
				q := e.quote(simulator.QuoteOptions{TEE: tee, RuntimeData: runtime, Fault: f.Name})
				r := e.attest(route, map[string]any{"quote": b64u(q), "runtimeData": map[string]string{"data": b64u(runtime)}})
				exp, err := e.sim.Expect(tee, f.Name)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case f.CaughtBy == "runtime-data-binding":
					wantError(t, r, 400, "InvalidParameter", "runtime_data_mismatch")
				case exp.Code != "":
					wantError(t, r, 400, "InvalidParameter", string(exp.Code))
				default:
					_, c := e.tokenOf(r)
					if c["x-attestd-tcb-status"] != string(exp.TCBStatus) {
						t.Errorf("tcb status %v, want %s", c["x-attestd-tcb-status"], exp.TCBStatus)
					}
					if f.CaughtBy == "policy" {
						debug := c["x-ms-sgx-is-debuggable"]
						if tee == dcap.TEETDX {
							debug = c["tdx_td_attributes_debug"]
						}
						if debug != true {
							t.Errorf("debug claim %v", debug)
						}
					}
				}
			})
		}
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	runtime := []byte("runtime")
	sgx := e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX, RuntimeData: runtime})
	tdx := e.quote(simulator.QuoteOptions{TEE: dcap.TEETDX, RuntimeData: runtime})
	ok := b64u(sgx)
	cases := []struct {
		name, path, ctype, body string
		status                  int
		code, reason            string
	}{
		{"malformed JSON", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":`, 400, "InvalidParameter", "malformed_json"},
		{"not an object", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `["quote"]`, 400, "InvalidParameter", "malformed_json"},
		{"two values", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{} {}`, 400, "InvalidParameter", "malformed_json"},
		{"empty body", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", ``, 400, "InvalidParameter", "malformed_json"},
		{"quote is a number", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":5}`, 400, "InvalidParameter", "malformed_json"},
		{"missing quote", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{}`, 400, "InvalidParameter", "missing_evidence"},
		{"empty quote", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":""}`, 400, "InvalidParameter", "missing_evidence"},
		{"bad base64", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"!!!"}`, 400, "InvalidParameter", "invalid_base64"},
		{"mixed alphabets", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"ab-+"}`, 400, "InvalidParameter", "invalid_base64"},
		{"not a quote", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"aGVsbG8"}`, 400, "InvalidParameter", "malformed_quote"},
		{"runtime data without data", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `","runtimeData":{"dataType":"Binary"}}`, 400, "InvalidParameter", "missing_data"},
		{"bad dataType", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `","runtimeData":{"data":"AA","dataType":"Text"}}`, 400, "InvalidParameter", "invalid_data_type"},
		{"runtime data mismatch", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `","runtimeData":{"data":"` + b64u([]byte("other")) + `","dataType":"Binary"}}`, 400, "InvalidParameter", "runtime_data_mismatch"},
		{"JSON runtime data not JSON", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `","runtimeData":{"data":"` + b64u(runtime) + `","dataType":"JSON"}}`, 400, "InvalidParameter", "invalid_json_data"},
		{"init time data mismatch", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `","initTimeData":{"data":"AA","dataType":"Binary"}}`, 400, "InvalidParameter", "init_time_data_mismatch"},
		{"TDX quote to the SGX route", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + b64u(tdx) + `"}`, 400, "InvalidParameter", "evidence_type_mismatch"},
		{"SGX quote to the TDX route", "/attest/TdxVm?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `"}`, 400, "InvalidParameter", "evidence_type_mismatch"},
		{"no api-version", "/attest/SgxEnclave", "application/json", `{"quote":"` + ok + `"}`, 400, "ApiVersionUnspecified", "api_version_missing"},
		{"unknown api-version", "/attest/SgxEnclave?api-version=2018-09-01-preview", "application/json", `{"quote":"` + ok + `"}`, 400, "UnsupportedApiVersion", "api_version_unsupported"},
		{"unknown attestation type", "/attest/Nitro?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `"}`, 404, "NotFound", "unknown_attestation_type"},
		{"wrong content type", "/attest/SgxEnclave?api-version=2022-08-01", "text/plain", `{"quote":"` + ok + `"}`, 415, "InvalidParameter", "unsupported_media_type"},
		{"draft policy that does not compile", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `","draftPolicyForAttestation":"version=1.0; authorizationrules{=> deny()}; issuancerules{};"}`, 400, "PolicyParsingError", "policy_invalid"},
		{"draft policy that denies", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + ok + `","draftPolicyForAttestation":"version=1.0; authorizationrules{=> deny();}; issuancerules{};"}`, 400, "PolicyEvaluationError", "policy_denied"},
		{"unknown route", "/nothing/Foo?api-version=2022-08-01", "application/json", `{}`, 404, "NotFound", "not_found"},
		{"POST on a policy path without :reset", "/policies/SgxEnclave?api-version=2022-08-01", "", ``, 405, "MethodNotAllowed", "method_not_allowed"},
		{"oversized body", "/attest/SgxEnclave?api-version=2022-08-01", "application/json", `{"quote":"` + strings.Repeat("A", MaxAttestBody) + `"}`, 413, "InvalidParameter", "body_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do("POST", tc.path, tc.ctype, []byte(tc.body)), tc.status, tc.code, tc.reason)
		})
	}
	t.Run("GET on an attest route", func(t *testing.T) {
		r := e.do("GET", "/attest/SgxEnclave?api-version=2022-08-01", "", nil)
		wantError(t, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "method_not_allowed")
	})
	// After all of that, the server still serves.
	e.tokenOf(e.attest("SgxEnclave", map[string]any{"quote": ok}))
}

func TestAPIVersions(t *testing.T) {
	e := newEnv(t, envOptions{})
	q := b64u(e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX}))
	for _, v := range APIVersions() {
		r := e.do("POST", "/attest/sgxenclave?api-version="+v, "application/json", []byte(`{"quote":"`+q+`"}`))
		e.tokenOf(r)
	}
}

func TestDraftPolicy(t *testing.T) {
	e := newEnv(t, envOptions{})
	q := b64u(e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX}))
	r := e.attest("SgxEnclave", map[string]any{"quote": q, "draftPolicyForAttestation": service.PermitAllPolicy})
	h, c := e.tokenOf(r)
	// MAA: a draft-policy token is unsecured and cannot pass as a
	// production token.
	if h["alg"] != "none" || !strings.HasSuffix(mustToken(t, r), ".") {
		t.Errorf("draft token header %v", h)
	}
	if c["x-ms-policy-hash"] != service.PolicyHash(service.PermitAllPolicy) || c["x-attestd-draft-policy"] != true {
		t.Errorf("draft claims %v", c)
	}
	if _, ok := c["x-ms-policy"]; ok {
		t.Error("an empty issuancerules issued x-ms-policy")
	}
}

func mustToken(t *testing.T, r response) string {
	var body struct{ Token string }
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Token
}

func TestKeysAndMetadata(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/certs", "/certs/", "/certs?api-version=2020-10-01"} {
		r := e.do("GET", path, "", nil)
		if r.status != 200 || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var raw struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.Keys) == 0 {
			t.Fatalf("%s: %s", path, r.body)
		}
		for _, k := range raw.Keys {
			keys := make([]string, 0, len(k))
			for name := range k {
				keys = append(keys, name)
			}
			slices.Sort(keys)
			// Exactly MAA's members; every key RSA with a kid and an x5c.
			if !slices.Equal(keys, []string{"kid", "kty", "x5c"}) || k["kty"] != "RSA" || len(k["x5c"].([]any)) == 0 {
				t.Errorf("JWKS entry %v", k)
			}
		}
	}
	r := e.do("GET", "/.well-known/openid-configuration", "", nil)
	var md map[string]any
	if err := json.Unmarshal(r.body, &md); err != nil {
		t.Fatal(err)
	}
	if md["issuer"] != e.issuer || md["jwks_uri"] != e.issuer+"/certs" || fmt.Sprint(md["id_token_signing_alg_values_supported"]) != "[RS256]" {
		t.Errorf("metadata %v", md)
	}
	if sharedKey().Certificate.Subject.String() != "CN="+e.issuer || sharedKey().Certificate.Issuer.String() != "CN="+e.issuer {
		t.Errorf("signing certificate subject %s issuer %s", sharedKey().Certificate.Subject, sharedKey().Certificate.Issuer)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := e.do("GET", p, "", nil); r.status != 200 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	e.tokenOf(e.attest("SgxEnclave", map[string]any{"quote": b64u(e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX}))}))
	e.attest("SgxEnclave", map[string]any{"quote": "AA"})
	r := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`attestd_attestations_total{result="ok",type="SgxEnclave"} 1`,
		`attestd_attestations_total{result="malformed_quote",type="SgxEnclave"} 1`,
		`attestd_attestation_duration_seconds_bucket{outcome="ok",type="SgxEnclave"`,
		`attestd_policy_decisions_total{decision="permit",type="SgxEnclave"} 1`,
		`attestd_token_signings_total{kind="attestation"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestConcurrentAttestations runs attestations in parallel (with -race)
// against one server.
func TestConcurrentAttestations(t *testing.T) {
	e := newEnv(t, envOptions{})
	q := b64u(e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX}))
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", "/attest/SgxEnclave?api-version=2020-10-01", "application/json", []byte(`{"quote":"`+q+`"}`))
			if r.status != 200 {
				errs <- string(r.body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

// TestInitTimeData binds init-time data to the enclave's CONFIGID (SGX)
// and the TD's MRCONFIGID (TDX).
func TestInitTimeData(t *testing.T) {
	e := newEnv(t, envOptions{})
	init := []byte(`{"config":"v1"}`)
	sum := sha256.Sum256(init)
	var configID [64]byte
	copy(configID[:], sum[:])
	var mrconfig [48]byte
	copy(mrconfig[:], sum[:])
	sgx := e.quote(simulator.QuoteOptions{TEE: dcap.TEESGX, Enclave: simulator.EnclaveFields{ConfigID: configID, ConfigSVN: 3}})
	_, c := e.tokenOf(e.attest("SgxEnclave", map[string]any{"quote": b64u(sgx), "initTimeData": map[string]string{"data": b64u(init), "dataType": "JSON"}}))
	if it, _ := c["x-ms-inittime"].(map[string]any); it["config"] != "v1" || c["x-ms-sgx-config-id"] != hex.EncodeToString(configID[:]) || num(t, c["x-ms-sgx-config-svn"]) != 3 {
		t.Errorf("SGX claims: inittime %v config-id %v config-svn %v", c["x-ms-inittime"], c["x-ms-sgx-config-id"], c["x-ms-sgx-config-svn"])
	}
	tdx := e.quote(simulator.QuoteOptions{TEE: dcap.TEETDX, TD: simulator.TDFields{MRCONFIGID: mrconfig}})
	_, c = e.tokenOf(e.attest("TdxVm", map[string]any{"quote": b64u(tdx), "initTimeData": map[string]string{"data": b64u(init), "dataType": "Binary"}}))
	if c["tdx_mrconfigid"] != hex.EncodeToString(mrconfig[:]) {
		t.Errorf("tdx_mrconfigid %v", c["tdx_mrconfigid"])
	}
	// Other data than the enclave was configured with.
	wantError(t, e.attest("TdxVm", map[string]any{"quote": b64u(tdx), "initTimeData": map[string]string{"data": b64u([]byte("other"))}}),
		400, "InvalidParameter", "init_time_data_mismatch")
}
