package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/simulator"
)

// TestSimRoundTrip drives the simulator and the verifier through the CLI
// only: sim collateral, then sim quote for each fault, then evidence
// verify with the simulator root. Each verdict must be the one the
// simulator documents for the fault.
func TestSimRoundTrip(t *testing.T) {
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	verifyAt := at.Add(24 * time.Hour).Format(time.RFC3339)
	work := t.TempDir()
	runtime := filepath.Join(work, "runtime.json")
	if err := os.WriteFile(runtime, []byte(`{"nonce":"abc"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	collateralDir := func(t *testing.T, fault string) string {
		dir := filepath.Join(work, "collateral", "clean")
		if fault != "" {
			dir = filepath.Join(work, "collateral", fault)
		}
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		args := []string{"sim", "collateral", "--at", at.Format(time.RFC3339), "--out", dir}
		if fault != "" {
			args = append(args, "--fault", fault)
		}
		if code, _, stderr := runCLI(t, args...); code != ExitOK {
			t.Fatalf("sim collateral: exit %d: %s", code, stderr)
		}
		return dir
	}

	code, stdout, _ := runCLI(t, "sim", "faults")
	if code != ExitOK {
		t.Fatalf("sim faults: exit %d", code)
	}
	names := strings.Fields(stdout)
	if !slices.Equal(names, simulator.FaultNames()) {
		t.Fatalf("sim faults printed %v", names)
	}
	sim, err := simulator.New(simulator.Options{Now: at})
	if err != nil {
		t.Fatal(err)
	}
	for _, tee := range []string{"sgx", "tdx"} {
		teeType := dcap.TEESGX
		if tee == "tdx" {
			teeType = dcap.TEETDX
		}
		for _, fault := range append([]string{""}, names...) {
			f, _ := simulator.LookupFault(fault)
			if fault != "" && !f.AppliesTo(teeType) {
				continue
			}
			t.Run(tee+"/"+fault, func(t *testing.T) {
				quote := filepath.Join(work, tee+"-"+fault+".quote")
				args := []string{"sim", "quote", "--type", tee, "--runtime-data", runtime, "--out", quote}
				if fault != "" {
					args = append(args, "--fault", fault)
				}
				if code, _, stderr := runCLI(t, args...); code != ExitOK {
					t.Fatalf("sim quote: exit %d: %s", code, stderr)
				}
				dir := collateralDir(t, fault)
				// The PCS-format files for one TEE, not the bundle, so that
				// the loaders see what Intel's services serve.
				args = []string{"evidence", "verify", "--json", "--at", verifyAt, "--trust-root", filepath.Join(dir, "root.pem"), "--quote", quote}
				for _, name := range []string{"tcbinfo-" + tee + ".json", "qeidentity-" + tee + ".json", "tcb-info-issuer-chain.pem", "rootcrl.der", "pckcrl-platform.der"} {
					args = append(args, "--collateral", filepath.Join(dir, name))
				}
				code, stdout, stderr := runCLI(t, args...)
				var got verifyOutput
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Fatalf("exit %d, output is not JSON: %v\n%s%s", code, err, stdout, stderr)
				}
				want, err := sim.Expect(teeType, fault)
				if err != nil {
					t.Fatal(err)
				}
				if want.Code != "" {
					if code != ExitRejected || got.Error == nil || got.Error.Code != string(want.Code) {
						t.Fatalf("exit %d, %s; want rejection %s", code, stdout, want.Code)
					}
					return
				}
				if code != ExitOK || got.TCBStatus != string(want.TCBStatus) || !slices.Equal(got.AdvisoryIDs, want.AdvisoryIDs) {
					t.Fatalf("exit %d, %s; want %s %v", code, stdout, want.TCBStatus, want.AdvisoryIDs)
				}
				if got.TEEType != tee {
					t.Errorf("teeType %s", got.TEEType)
				}
			})
		}
	}

	// The same quote without --trust-root: Intel's pinned root refuses it.
	quote := filepath.Join(work, "sgx-.quote")
	dir := collateralDir(t, "")
	code, stdout, _ = runCLI(t, "evidence", "verify", "--json", "--at", verifyAt, "--quote", quote, "--collateral", filepath.Join(dir, "bundle-sgx.json"))
	if code != ExitRejected || !strings.Contains(stdout, `"code": "pck_chain_invalid"`) {
		t.Errorf("simulated quote without --trust-root: exit %d, %s", code, stdout)
	}
	// With it and the bundle, it verifies.
	code, stdout, _ = runCLI(t, "evidence", "verify", "--json", "--at", verifyAt, "--trust-root", filepath.Join(dir, "root.pem"), "--quote", quote, "--collateral", filepath.Join(dir, "bundle-sgx.json"))
	if code != ExitOK {
		t.Errorf("bundle: exit %d, %s", code, stdout)
	}
}

func TestSimCLIOptions(t *testing.T) {
	work := t.TempDir()
	// Every encoding and version the command offers is accepted by verify.
	dir := filepath.Join(work, "col")
	if code, _, stderr := runCLI(t, "sim", "collateral", "--seed", "other", "--out", dir); code != ExitOK {
		t.Fatalf("sim collateral: %s", stderr)
	}
	for _, c := range [][]string{
		{"--type", "sgx", "--version", "4", "--format", "hex"},
		{"--type", "sgx", "--version", "5", "--format", "base64", "--debug"},
		{"--type", "tdx", "--version", "5", "--body", "td1.0"},
		{"--type", "tdx", "--version", "5", "--body", "td1.5"},
	} {
		quote := filepath.Join(work, "q")
		args := append([]string{"sim", "quote", "--seed", "other", "--out", quote}, c...)
		if code, _, stderr := runCLI(t, args...); code != ExitOK {
			t.Fatalf("%v: %s", c, stderr)
		}
		code, stdout, stderr := runCLI(t, "evidence", "verify", "--json", "--trust-root", filepath.Join(dir, "root.pem"), "--quote", quote,
			"--collateral", filepath.Join(dir, "bundle-"+c[1]+".json"))
		if code != ExitOK {
			t.Errorf("%v: exit %d %s %s", c, code, stdout, stderr)
		}
		if slices.Contains(c, "--debug") && !strings.Contains(stdout, `"debug": true`) {
			t.Errorf("--debug quote does not verify as debug: %s", stdout)
		}
	}
	// Standard output.
	code, stdout, _ := runCLI(t, "sim", "quote", "--type", "tdx", "--format", "hex", "--out", "-")
	if code != ExitOK || len(strings.TrimSpace(stdout)) < 2000 {
		t.Errorf("quote to stdout: exit %d, %d bytes", code, len(stdout))
	}
	code, stdout, _ = runCLI(t, "sim", "faults", "--long")
	if code != ExitOK || !strings.Contains(stdout, "pck_revoked") || !strings.Contains(stdout, "caught by policy") {
		t.Errorf("sim faults --long: %s", stdout)
	}
	for _, args := range [][]string{
		{"sim"},
		{"sim", "frob"},
		{"sim", "quote", "--type", "sgx"},
		{"sim", "quote", "--type", "sev", "--out", filepath.Join(work, "x")},
		{"sim", "quote", "--type", "sgx", "--version", "9", "--out", filepath.Join(work, "x")},
		{"sim", "quote", "--type", "sgx", "--fault", "nope", "--out", filepath.Join(work, "x")},
		{"sim", "quote", "--type", "sgx", "--fault", "tdx-module-mismatch", "--out", filepath.Join(work, "x")},
		{"sim", "quote", "--type", "tdx", "--body", "td2", "--out", filepath.Join(work, "x")},
		{"sim", "quote", "--type", "sgx", "--format", "pem", "--out", filepath.Join(work, "x")},
		{"sim", "quote", "--type", "sgx", "--runtime-data", filepath.Join(work, "missing"), "--out", filepath.Join(work, "x")},
		{"sim", "collateral"},
		{"sim", "collateral", "--at", "soon", "--out", dir},
		{"sim", "collateral", "--fault", "nope", "--out", dir},
		{"sim", "faults", "extra"},
	} {
		if code, _, _ := runCLI(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d; want %d", args, code, ExitUsage)
		}
	}
}
