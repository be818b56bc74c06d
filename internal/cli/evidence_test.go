package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testvectors"
)

type verifyOutput struct {
	TEEType      string   `json:"teeType"`
	QuoteVersion int      `json:"quoteVersion"`
	TCBStatus    string   `json:"tcbStatus"`
	AdvisoryIDs  []string `json:"advisoryIDs"`
	FMSPC        string   `json:"fmspc"`
	Claims       map[string]any
	Error        *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

// Sets whose verdict under Intel's semantics differs from expected.json's
// simplified checker (see evidence/dcap/vectors_test.go).
var intelStatus = map[string]string{"T4": "TDRelaunchAdvised"}

func TestEvidenceVerifyRealVectors(t *testing.T) {
	dir, sets := testvectors.Sets(t)
	for _, s := range sets {
		if !s.Complete() || (s.Kind != "sgx" && s.Kind != "tdx") {
			continue
		}
		t.Run(s.ID, func(t *testing.T) {
			args := []string{"evidence", "verify", "--json", "--at", s.VerificationTime, "--quote", filepath.Join(dir, s.Evidence.Path)}
			for _, c := range s.Collateral {
				args = append(args, "--collateral", filepath.Join(dir, c.Path))
			}
			code, stdout, stderr := runCLI(t, args...)
			var got verifyOutput
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("exit %d, output is not JSON: %v\n%s\n%s", code, err, stdout, stderr)
			}
			if s.Expected.Error != "" {
				if code != ExitRejected || got.Error == nil || got.Error.Code != "tcb_level_not_supported" {
					t.Fatalf("exit %d, output %s; want exit 1 with tcb_level_not_supported", code, stdout)
				}
				return
			}
			if code != ExitOK {
				t.Fatalf("exit %d: %s %s", code, stdout, stderr)
			}
			want := s.Expected.TCBStatus
			if o, ok := intelStatus[s.ID]; ok {
				want = o
			}
			if got.TCBStatus != want {
				t.Errorf("tcbStatus %s; want %s", got.TCBStatus, want)
			}
			if got.TEEType != s.Kind || got.QuoteVersion != s.Evidence.Quote.Version {
				t.Errorf("teeType %s v%d; want %s v%d", got.TEEType, got.QuoteVersion, s.Kind, s.Evidence.Quote.Version)
			}
			if got.FMSPC != strings.ToLower(s.Evidence.Quote.FMSPC) {
				t.Errorf("fmspc %s; want %s", got.FMSPC, s.Evidence.Quote.FMSPC)
			}
			if got.AdvisoryIDs == nil || !slices.IsSorted(got.AdvisoryIDs) {
				t.Errorf("advisoryIDs %v: want a sorted array", got.AdvisoryIDs)
			}
			if _, ok := intelStatus[s.ID]; !ok && len(s.Expected.AdvisoryIDs) > 0 && !slices.Equal(got.AdvisoryIDs, s.Expected.AdvisoryIDs) {
				t.Errorf("advisoryIDs %v; want %v", got.AdvisoryIDs, s.Expected.AdvisoryIDs)
			}
			key := "mrenclave"
			if s.Kind == "tdx" {
				key = "mrtd"
			}
			if v, _ := got.Claims[key].(string); len(v) == 0 || strings.ToLower(v) != v {
				t.Errorf("claims.%s = %q: want lowercase hex", key, v)
			}
		})
	}
}

func TestEvidenceVerifyExitStatuses(t *testing.T) {
	dir, sets := testvectors.Sets(t)
	var s1 testvectors.Set
	for _, s := range sets {
		if s.ID == "S1" {
			s1 = s
		}
	}
	quote := filepath.Join(dir, s1.Evidence.Path)
	col := filepath.Join(dir, s1.Collateral[0].Path)

	// Human output on success.
	code, stdout, _ := runCLI(t, "evidence", "verify", "--at", s1.VerificationTime, "--quote", quote, "--collateral", col)
	if code != ExitOK || !strings.Contains(stdout, "ConfigurationAndSWHardeningNeeded") {
		t.Errorf("exit %d, output %q", code, stdout)
	}
	// Outside the validity window: rejected with a code.
	code, stdout, _ = runCLI(t, "evidence", "verify", "--json", "--at", "2030-01-01T00:00:00Z", "--quote", quote, "--collateral", col)
	if code != ExitRejected || !strings.Contains(stdout, `"code": "collateral_expired"`) {
		t.Errorf("expired: exit %d, output %q", code, stdout)
	}
	// No collateral.
	code, stdout, _ = runCLI(t, "evidence", "verify", "--json", "--at", s1.VerificationTime, "--quote", quote)
	if code != ExitRejected || !strings.Contains(stdout, `"code": "collateral_missing"`) {
		t.Errorf("no collateral: exit %d, output %q", code, stdout)
	}
	// Garbage quote.
	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, []byte("not a quote"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, "evidence", "verify", "--json", "--quote", junk, "--collateral", col)
	if code != ExitRejected || !strings.Contains(stdout, `"code": "malformed_quote"`) {
		t.Errorf("junk quote: exit %d, output %q", code, stdout)
	}
	// Usage errors exit 2.
	for _, args := range [][]string{
		{"evidence", "verify"},
		{"evidence", "verify", "--quote", quote, "--at", "yesterday"},
		{"evidence", "verify", "--quote", filepath.Join(dir, "does-not-exist")},
		{"evidence", "verify", "--quote", quote, "--trust-root", col},
		{"evidence", "frobnicate"},
		{"nonsense"},
	} {
		if code, _, _ := runCLI(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d; want %d", args, code, ExitUsage)
		}
	}
	// base64 and 0x-hex encodings of the same quote are detected.
	raw := testvectors.Read(t, dir, s1.Evidence.Path)
	for name, text := range map[string]string{
		"b64":  b64(raw, false),
		"b64u": b64(raw, true),
	} {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(text+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, stdout, stderr := runCLI(t, "evidence", "verify", "--at", s1.VerificationTime, "--quote", p, "--collateral", col); code != ExitOK {
			t.Errorf("%s: exit %d %s %s", name, code, stdout, stderr)
		}
	}
}
