package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/internal/auth"
	"github.com/attestd/attestd/internal/testpki"
)

func TestConfigAuthAndIsolation(t *testing.T) {
	cf := newConfigFlags("test")
	if err := cf.fs.Parse([]string{"--oidc-issuer", "https://login.example/t/v2.0", "--oidc-audience", "api://x",
		"--oidc-contributor-role", "Admins", "--oidc-contributor-role", "Owners", "--isolated", "--policy-signer-cert", "a.pem"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := cf.resolve(env(map[string]string{"ATTESTD_ADMIN_TOKEN_FILE": "/etc/tokens", "ATTESTD_OIDC_ROLE_CLAIM": "groups"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminTokenFile != "/etc/tokens" || cfg.OIDCIssuer != "https://login.example/t/v2.0" || cfg.OIDCRoleClaim != "groups" ||
		!slices.Equal(cfg.OIDCContributorRoles, []string{"Admins", "Owners"}) || !slices.Equal(cfg.OIDCReaderRoles, []string{"Attestation.Reader"}) ||
		!cfg.Isolated || !slices.Equal(cfg.PolicySignerCerts, []string{"a.pem"}) || cfg.AttestAuth != "none" {
		t.Errorf("resolved %+v", cfg)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"attest auth without credentials": {[]string{"--attest-auth", "required"}, "needs --admin-token-file"},
		"attest auth value":               {[]string{"--attest-auth", "sometimes"}, "want none or required"},
		"oidc without audience":           {[]string{"--oidc-issuer", "https://idp.example"}, "--oidc-audience"},
		"oidc issuer not a URL":           {[]string{"--oidc-issuer", "idp", "--oidc-audience", "a"}, "http(s) URL"},
		"signer without isolated":         {[]string{"--policy-signer-cert", "a.pem"}, "--isolated"},
	} {
		t.Run(name, func(t *testing.T) {
			cf := newConfigFlags("test")
			if err := cf.fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if _, err := cf.resolve(env(nil)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAdminTokenCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	var out, errOut bytes.Buffer
	stdio := IO{Stdout: &out, Stderr: &errOut, Getenv: env(nil)}
	if code := Run(context.Background(), []string{"admin-token", "create", "--name", "alice", "--role", "reader", "--file", file}, stdio); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), tok) || !strings.HasPrefix(tok, auth.AdminTokenPrefix) {
		t.Fatalf("the file holds the token itself, or the token is malformed: %q", data)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", st.Mode().Perm())
	}
	toks, err := auth.LoadAdminTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{AdminTokens: toks})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(context.Background(), "Bearer "+tok)
	if err != nil || p.Role != auth.RoleReader || p.Name != "token:alice" {
		t.Errorf("the printed token: %+v, %v", p, err)
	}
	// The same name again is refused; a bad role is a usage error.
	out.Reset()
	if code := Run(context.Background(), []string{"admin-token", "create", "--name", "alice", "--role", "reader", "--file", file}, stdio); code != ExitError || out.Len() != 0 {
		t.Errorf("duplicate name: exit %d, printed %q", code, out.String())
	}
	if code := Run(context.Background(), []string{"admin-token", "create", "--name", "bob", "--role", "king", "--file", file}, stdio); code != ExitUsage {
		t.Errorf("bad role: exit %d", code)
	}
	if code := Run(context.Background(), []string{"admin-token", "create", "--name", "bob"}, stdio); code != ExitUsage {
		t.Errorf("no file: exit %d", code)
	}
}

// TestIsolatedTenantAndHistory: a tenant created isolated stays so, its
// signer is listed, policy changes over the API need the signer, and
// `attestd policy history` shows them.
func TestIsolatedTenantAndHistory(t *testing.T) {
	dir := t.TempDir()
	signer := testpki.SelfSigned(t, "daemon test signer", testpki.Options{EC: true})
	_, certFile := signer.WriteFiles(t, dir, "signer")
	tokFile := filepath.Join(dir, "tokens")
	var out, errOut bytes.Buffer
	stdio := IO{Stdout: &out, Stderr: &errOut, Getenv: env(nil)}
	if code := Run(context.Background(), []string{"admin-token", "create", "--name", "ops", "--role", "contributor", "--file", tokFile}, stdio); code != ExitOK {
		t.Fatal(errOut.String())
	}
	tok := strings.TrimSpace(out.String())

	start := func(edit func(*Config)) *Instance {
		t.Helper()
		cfg := DefaultConfig()
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.AdminTokenFile = tokFile
		edit(&cfg)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		inst, err := Start(context.Background(), cfg, Options{Listener: ln})
		if err != nil {
			t.Fatal(err)
		}
		return inst
	}
	stop := func(inst *Instance) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := inst.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}
	inst := start(func(c *Config) { c.Isolated, c.PolicySignerCerts = true, []string{certFile} })
	c, err := client.New(inst.URL, client.WithBearerToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	certs, err := c.PolicyCertificates(ctx)
	if err != nil || len(certs) != 1 || !certs[0].Equal(signer.Cert) {
		t.Fatalf("certificates %v, %v", certs, err)
	}
	text := `version=1.0; authorizationrules{ => permit(); }; issuancerules{ => issue(type="site", value="daemon-test"); };`
	if _, err := c.SetPolicy(ctx, client.AttestationType("SgxEnclave"), text, nil); err == nil {
		t.Error("an unsigned policy was accepted by an isolated tenant")
	}
	if _, err := c.SetPolicy(ctx, client.AttestationType("SgxEnclave"), text, &client.Signer{Key: signer.Key, Chain: signer.Chain}); err != nil {
		t.Fatal(err)
	}
	stop(inst)

	// Restarted without --isolated: still isolated.
	inst = start(func(*Config) {})
	c, _ = client.New(inst.URL, client.WithBearerToken(tok))
	if _, err := c.SetPolicy(ctx, client.AttestationType("SgxEnclave"), text, nil); err == nil {
		t.Error("the tenant lost isolation on restart")
	}
	got, err := c.GetPolicy(ctx, client.AttestationType("SgxEnclave"))
	if err != nil || got.Text != text {
		t.Errorf("policy after restart: %v, %v", got, err)
	}
	stop(inst)

	out.Reset()
	if code := Run(ctx, []string{"policy", "history", "--type", "sgx", "--data-dir", filepath.Join(dir, "data")}, stdio); code != ExitOK {
		t.Fatalf("history: %s", errOut.String())
	}
	var rows []map[string]any
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("history %s: %v", out.String(), err)
	}
	if rows[0]["changedBy"] != "token:ops" || rows[0]["signed"] != true || rows[0]["action"] != "set" || rows[0]["version"] != float64(1) {
		t.Errorf("history row %v", rows[0])
	}
}
