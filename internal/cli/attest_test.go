package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/internal/daemon"
	"github.com/attestd/attestd/internal/testvectors"
	"github.com/attestd/attestd/simulator"
)

// startAttestd runs attestd in dev mode on loopback for a test.
func startAttestd(t *testing.T) string {
	t.Helper()
	cfg := daemon.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Dev = true
	inst, err := daemon.Start(context.Background(), cfg, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Shutdown(context.Background()) })
	return inst.URL
}

// TestAttestAndVerifyToken is the quickstart: attest simulated evidence of
// each type with attestctl, then verify the token as a relying party.
func TestAttestAndVerifyToken(t *testing.T) {
	url := startAttestd(t)
	dir := t.TempDir()
	rtJSON := filepath.Join(dir, "runtime.json")
	if err := os.WriteFile(rtJSON, []byte(`{"pubkey":"abc"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"sgx", "openenclave", "tdx"} {
		t.Run(typ, func(t *testing.T) {
			code, tok, stderr := runCLI(t, "attest", "--url", url, "--type", typ, "--sim", "--runtime-json", rtJSON, "--nonce", "12345")
			if code != ExitOK || strings.Count(strings.TrimSpace(tok), ".") != 2 {
				t.Fatalf("attest: exit %d, %q, %s", code, tok, stderr)
			}
			tok = strings.TrimSpace(tok)
			code, out, stderr := runCLI(t, "token", "verify", "--url", url, "--allow-simulated", "--expect", "nonce=12345", "--expect", "x-attestd-simulated:=true", tok)
			if code != ExitOK {
				t.Fatalf("token verify: exit %d: %s", code, stderr)
			}
			var claims map[string]any
			if err := json.Unmarshal([]byte(out), &claims); err != nil {
				t.Fatal(err)
			}
			rt, _ := claims["x-ms-runtime"].(map[string]any)
			if rt["pubkey"] != "abc" || claims["x-attestd-simulated"] != true || claims["iss"] != url {
				t.Errorf("claims %v", claims)
			}
			// Simulated evidence needs the relying party's opt-in.
			if code, _, stderr := runCLI(t, "token", "verify", "--url", url, tok); code != ExitRejected || !strings.Contains(stderr, "simulated_evidence") {
				t.Errorf("without --allow-simulated: exit %d: %s", code, stderr)
			}
			// A tampered token is not valid.
			parts := strings.Split(tok, ".")
			tampered := parts[0] + "." + parts[1][:len(parts[1])-2] + "xx." + parts[2]
			if code, _, _ := runCLI(t, "token", "verify", "--url", url, "--allow-simulated", tampered); code != ExitRejected {
				t.Errorf("tampered token: exit %d", code)
			}
			if code, _, stderr := runCLI(t, "token", "verify", "--url", url, "--allow-simulated", "--expect", "nonce:=12345", tok); code != ExitRejected || !strings.Contains(stderr, "claim_mismatch") {
				t.Errorf("--expect mismatch: exit %d: %s", code, stderr)
			}
		})
	}
}

func TestAttestRefused(t *testing.T) {
	url := startAttestd(t)
	sim, err := simulator.New(simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sim.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX, Fault: simulator.FaultBadQuoteSignature})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bad.quote")
	if err := os.WriteFile(path, []byte(b64(q, true)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "attest", "--url", url, "--type", "sgx", "--quote", path)
	if code != ExitRejected || !strings.Contains(stderr, "InvalidParameter") {
		t.Errorf("bad quote: exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{
		{"attest", "--type", "sgx", "--sim"},
		{"attest", "--url", url, "--type", "sev", "--sim"},
		{"attest", "--url", url, "--type", "sgx"},
		{"attest", "--url", url, "--type", "sgx", "--sim", "--quote", path},
		{"attest", "--url", "http://127.0.0.1:1", "--type", "sgx", "--sim"},
		{"token", "verify", "--url", url},
		{"token", "verify", "a.b.c"},
		{"token"},
	} {
		if code, _, _ := runCLI(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

// TestTokenVerifyMAARecording verifies a real MAA token with the JWKS
// recorded beside it, at its issue time, through the CLI.
func TestTokenVerifyMAARecording(t *testing.T) {
	path := filepath.Join(testvectors.RecordingsDir(t), "node", "aad_attestation_client", "recording_attestsgxenclaveshared.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Entries []struct {
			RequestURI   string          `json:"RequestUri"`
			ResponseBody json.RawMessage `json:"ResponseBody"`
		}
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	var tok string
	jwks := filepath.Join(t.TempDir(), "certs.json")
	for _, e := range rec.Entries {
		if strings.HasSuffix(e.RequestURI, "/certs") {
			if err := os.WriteFile(jwks, e.ResponseBody, 0o600); err != nil {
				t.Fatal(err)
			}
		} else if tok == "" {
			var body struct{ Token string }
			_ = json.Unmarshal(e.ResponseBody, &body)
			tok = body.Token
		}
	}
	const issuer = "https://sharedwus.wus.attest.azure.net"
	code, out, stderr := runCLI(t, "token", "verify", "--url", issuer, "--jwks", jwks, "--at", "2022-01-28T23:44:40Z",
		"--expect", "x-ms-sgx-mrenclave=b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2", tok)
	if code != ExitOK || !strings.Contains(out, `"x-ms-attestation-type": "sgx"`) {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	// Nine hours later the 8 h token has expired.
	if code, _, stderr := runCLI(t, "token", "verify", "--url", issuer, "--jwks", jwks, "--at", "2022-01-29T08:44:40Z", tok); code != ExitRejected || !strings.Contains(stderr, "expired") {
		t.Errorf("expired: exit %d: %s", code, stderr)
	}
	// Another issuer's name is refused.
	if code, _, _ := runCLI(t, "token", "verify", "--url", "https://attest.example", "--jwks", jwks, "--at", "2022-01-28T23:44:40Z", tok); code != ExitRejected {
		t.Errorf("wrong issuer: exit %d", code)
	}
}
