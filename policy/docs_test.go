package policy

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// docPolicies returns the ```policy blocks of docs/policy.md, keyed by the heading above each.
func docPolicies(t *testing.T) map[string]string {
	b, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	heading := ""
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "#") {
			heading = strings.TrimSpace(strings.TrimLeft(lines[i], "#"))
		}
		if lines[i] != "```policy" {
			continue
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		out[heading] = strings.Join(body, "\n")
	}
	return out
}

func TestDocExamples(t *testing.T) {
	docs := docPolicies(t)
	if len(docs) != 6 {
		t.Fatalf("found %d policy blocks: %v", len(docs), docs)
	}
	for h, text := range docs {
		if _, err := Compile(text); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	sgx := func(mutate func([]Claim)) []Claim {
		in := sgxClaims()
		if mutate != nil {
			mutate(in)
		}
		return in
	}
	set := func(i int, v any) func([]Claim) { return func(c []Claim) { c[i].Value = v } }

	p := mustCompile(t, docs["A first policy"])
	wantIssued(t, mustEval(t, p, sgx(nil)), map[string]any{"enclave-author": mrsigner})

	p = mustCompile(t, docs["Pin the enclave author, require a minimum SVN, refuse debug enclaves"])
	if d := mustEval(t, p, sgx(set(6, 3))); !d.Permit {
		t.Errorf("svn 3: %+v", d)
	}
	for name, m := range map[string]func([]Claim){"svn 2": set(6, 2), "debug": func(c []Claim) { c[6].Value = 3; c[2].Value = true }} {
		if d := mustEval(t, p, sgx(m)); d.Permit {
			t.Errorf("%s: %+v", name, d)
		}
	}

	p = mustCompile(t, docs["Accept only a current TCB, and refuse one advisory"])
	d := mustEval(t, p, sgx(nil))
	wantIssued(t, d, map[string]any{"tcb-status": "UpToDate", "advisories-reviewed": true})
	d = mustEval(t, p, sgx(func(c []Claim) { c[10].Value = "SWHardeningNeeded"; c[11].Value = []string{} }))
	wantIssued(t, d, map[string]any{"tcb-status": "SWHardeningNeeded", "advisories-reviewed": true})
	d = mustEval(t, p, sgx(set(11, []string{"INTEL-SA-00615", "INTEL-SA-00999"})))
	wantIssued(t, d, map[string]any{"tcb-status": "UpToDate", "advisories-reviewed": false})
	for name, m := range map[string]func([]Claim){
		"OutOfDate": set(10, "OutOfDate"),
		"advisory":  set(11, []string{"INTEL-SA-00615", "INTEL-SA-00334"}),
		"simulated": func(c []Claim) { c[15] = Claim{Type: "x-attestd-simulated", Value: true} },
	} {
		if d := mustEval(t, p, sgx(m)); d.Permit {
			t.Errorf("%s: %+v", name, d)
		}
	}

	p = mustCompile(t, docs["TDX: pin MRTD and the RTMRs"])
	mrtd := "ed9bb53678a21c9855c7f692c0b505f9a46423af2c21954942b30c741ee3e6873bc42a168b867eba084f76167feee04e"
	tdx := []Claim{
		{Type: "x-ms-ver", Value: "1.0"}, {Type: "x-ms-attestation-type", Value: "tdxvm"},
		{Type: "dbgstat", Value: "disabled"}, {Type: "attester_tcb_status", Value: "UpToDate"},
		{Type: "tdx_mrtd", Value: mrtd},
		{Type: "tdx_rtmr0", Value: "b9ad79050ecf6e6f8e00eeb1e1af34c7e5ab81384b32e90f8266bbc59e431bd3dac5736e590dfef75e030a773a6c1c33"},
		{Type: "tdx_rtmr1", Value: "45e683c331f9e8b735cf669869ac536be516d2d313fe09af678bfdd59130094dc82b8eaeed5901023275931006fecb3a"},
		{Type: "tdx_rtmr2", Value: strings.Repeat("00", 48)},
	}
	wantIssued(t, mustEval(t, p, tdx), map[string]any{"tdx-mrtd": mrtd})
	tdx[2].Value = "enabled"
	if d := mustEval(t, p, tdx); d.Permit {
		t.Errorf("debug TD permitted")
	}

	p = mustCompile(t, docs["Issue a claim from runtime data with JmesPath"])
	wantIssued(t, mustEval(t, p, sgx(nil)), map[string]any{"enclave-key-id": "EnclaveKey"})
	if d := mustEval(t, p, sgx(set(16, map[string]any{"keys": []any{}}))); d.Permit {
		t.Errorf("no keys: %+v", d)
	}

	p = mustCompile(t, docs["Issue default SGX claims under their current names"])
	d = mustEval(t, p, sgx(nil))
	if !reflect.DeepEqual(d.Properties, map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}) {
		t.Errorf("properties %v", d.Properties)
	}
	want := []Claim{
		{"x-ms-sgx-is-debuggable", false, IssuerService}, {"x-ms-sgx-mrsigner", mrsigner, IssuerService},
		{"x-ms-sgx-mrenclave", mrenclave, IssuerService},
	}
	if !reflect.DeepEqual(d.Issued, want) {
		t.Errorf("issued %+v", d.Issued)
	}
}
