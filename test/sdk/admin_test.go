package sdk_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/internal/auth"
	"github.com/attestd/attestd/internal/daemon"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/internal/testpki"
	"github.com/attestd/attestd/simulator"
	"github.com/attestd/attestd/token"
)

// adminFixture is what admin.mjs reads.
type adminFixture struct {
	AAD              adminInstance `json:"aad"`
	Isolated         adminInstance `json:"isolated"`
	Quote            []byte        `json:"quote"`
	MrSigner         string        `json:"mrSigner"`
	DefaultSGXPolicy string        `json:"defaultSgxPolicy"`
	DenyPolicy       string        `json:"denyPolicy"`
	IssuePolicy      string        `json:"issuePolicy"`
	IssuePolicyHash  string        `json:"issuePolicyHash"`
	BadPolicy        string        `json:"badPolicy"`
}

type adminInstance struct {
	URL                string `json:"url"`
	AdminToken         string `json:"adminToken"`
	ReaderToken        string `json:"readerToken"`
	SignerKey          string `json:"signerKey,omitempty"`
	SignerCert         string `json:"signerCert,omitempty"`
	NewcomerKey        string `json:"newcomerKey,omitempty"`
	NewcomerCert       string `json:"newcomerCert,omitempty"`
	NewcomerThumbprint string `json:"newcomerThumbprint,omitempty"`
}

// startAttestd starts a dev-mode attestd over HTTPS on a loopback port with
// the configuration changed by edit, and stops it when the test ends.
func startAttestd(t *testing.T, ctx context.Context, dir, certFile, keyFile string, edit func(*daemon.Config)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	cfg := daemon.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Addr = ln.Addr().String()
	cfg.Issuer = issuer
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	cfg.Dev = true
	edit(&cfg)
	inst, err := daemon.Start(ctx, cfg, daemon.Options{Listener: ln})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if inst.URL != issuer {
		t.Errorf("attestd's issuer is %q, want %q", inst.URL, issuer)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := inst.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return issuer
}

// writeAdminTokens writes a token file with a contributor and a reader
// token and returns the file and the two tokens.
func writeAdminTokens(t *testing.T, dir string) (file, contributor, reader string) {
	t.Helper()
	var lines []string
	toks := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.RoleContributor, auth.RoleReader} {
		tok, err := auth.NewAdminToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		line, err := auth.AdminTokenLine("sdk-"+r.String(), r, tok)
		if err != nil {
			t.Fatal(err)
		}
		lines, toks[r] = append(lines, line), tok
	}
	file = filepath.Join(dir, "admin-tokens")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, toks[auth.RoleContributor], toks[auth.RoleReader]
}

// TestAzureAttestationAdminSDK runs admin.mjs: the SDK's
// AttestationAdministrationClient against an AAD-mode and an isolated
// attestd.
func TestAzureAttestationAdminSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "node is not on PATH")
	}
	if _, err := os.Stat(sdkPackage); err != nil {
		unavailable(t, "@azure/attestation is not installed (run `npm ci` in test/sdk): "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dir := t.TempDir()
	caPEM, certFile, keyFile := writeTLS(t, dir)

	var fx adminFixture
	aadDir, isoDir := filepath.Join(dir, "aad"), filepath.Join(dir, "isolated")
	for _, d := range []string{aadDir, isoDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tokFile, contrib, reader := writeAdminTokens(t, aadDir)
	fx.AAD = adminInstance{AdminToken: contrib, ReaderToken: reader}
	fx.AAD.URL = startAttestd(t, ctx, aadDir, certFile, keyFile, func(c *daemon.Config) { c.AdminTokenFile = tokFile })

	signer := testpki.SelfSigned(t, "attestd SDK conformance policy signer", testpki.Options{})
	newcomer := testpki.SelfSigned(t, "attestd SDK conformance newcomer", testpki.Options{})
	_, signerCertFile := signer.WriteFiles(t, isoDir, "signer")
	tokFile, contrib, reader = writeAdminTokens(t, isoDir)
	fx.Isolated = adminInstance{AdminToken: contrib, ReaderToken: reader,
		SignerKey: string(signer.KeyPEM(t)), SignerCert: string(signer.CertPEM()),
		NewcomerKey: string(newcomer.KeyPEM(t)), NewcomerCert: string(newcomer.CertPEM()),
		NewcomerThumbprint: token.Thumbprint(newcomer.Cert)}
	fx.Isolated.URL = startAttestd(t, ctx, isoDir, certFile, keyFile, func(c *daemon.Config) {
		c.AdminTokenFile = tokFile
		c.Isolated = true
		c.PolicySignerCerts = []string{signerCertFile}
	})

	sim, err := simulator.New(simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := simulator.EnclaveFields{MRSIGNER: [32]byte{0xa1, 0xb2}, MRENCLAVE: [32]byte{0xc3}, ISVProdID: 3, ISVSVN: 9}
	if fx.Quote, err = sim.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX, Enclave: e}); err != nil {
		t.Fatal(err)
	}
	fx.MrSigner = hex.EncodeToString(e.MRSIGNER[:])
	fx.DefaultSGXPolicy = service.DefaultSGXPolicy
	fx.DenyPolicy = "version=1.0; authorizationrules{ =>deny(); }; issuancerules{ };"
	fx.IssuePolicy = `version=1.0; authorizationrules{ => permit(); }; issuancerules{ c:[type=="x-ms-sgx-mrsigner"] => issue(type="enclave-signer", value=c.value); => issue(type="SecurityLevelValue", value=100); };`
	fx.IssuePolicyHash = service.PolicyHash(fx.IssuePolicy)
	fx.BadPolicy = "version=1.0;\nauthorizationrules { => permit() };\nissuancerules { };"

	fixtureFile := filepath.Join(dir, "admin-fixture.json")
	b, err := json.MarshalIndent(fx, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixtureFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, node, "--dns-result-order=ipv4first", "admin.mjs", fixtureFile)
	cmd.Env = append(childEnv(), "NODE_EXTRA_CA_CERTS="+caPEM)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("node admin.mjs (%s):\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		if ctx.Err() != nil {
			t.Fatalf("node did not finish within %s: %v", testTimeout, err)
		}
		t.Fatalf("node admin.mjs failed: %v (output above)", err)
	}
}
