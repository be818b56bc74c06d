// Package sdk_test drives attestd with Microsoft's own MAA client,
// @azure/attestation 1.0.0 from npm, over HTTPS: the SDK fetches the OpenID
// metadata and the signers, attests SGX quotes and Open Enclave reports with
// binary and JSON runtime data, validates every token with its default
// validation and maps the claims to its AttestationResult. conformance.mjs
// holds the checks; this test starts attestd, mints the evidence and runs
// node. See README.md.
package sdk_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/openenclave"
	"github.com/attestd/attestd/internal/daemon"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/simulator"
)

// sdkPackage is where `npm ci` in this directory installs the SDK.
const sdkPackage = "node_modules/@azure/attestation/package.json"

// testTimeout bounds the whole run: attestd, node and the SDK's calls.
const testTimeout = 2 * time.Minute

// requireSDK says whether a missing node or SDK fails the test (CI sets
// ATTESTD_REQUIRE_SDK=1) instead of skipping it.
func requireSDK() bool { return os.Getenv("ATTESTD_REQUIRE_SDK") == "1" }

// fixture is what conformance.mjs reads. Binary values are standard
// base64; the script hands the decoded bytes to the SDK, which encodes them
// its own way (base64url) on the wire.
type fixture struct {
	Issuer string `json:"issuer"`
	// PolicyHash is the x-ms-policy-hash of the default SGX policy
	// (base64url, as in the token).
	PolicyHash string `json:"policyHash"`
	// TokenLifetimeSeconds is exp - iat of attestd's tokens.
	TokenLifetimeSeconds int64 `json:"tokenLifetimeSeconds"`
	// Binary is evidence bound to binary runtime data; JSON to runtime data
	// that is a JSON object.
	Binary evidenceCase `json:"binary"`
	JSON   evidenceCase `json:"json"`
	// WrongRuntimeData is not bound into Binary's quote: attesting it must
	// fail with 400 InvalidParameter.
	WrongRuntimeData []byte `json:"wrongRuntimeData"`
	// DecoyCertificate is an RSA certificate (PEM) of a key attestd never
	// used: the script checks that the SDK's validation fails with it.
	DecoyCertificate string `json:"decoyCertificate"`
}

type evidenceCase struct {
	Quote       []byte       `json:"quote"`
	Report      []byte       `json:"report"` // Open Enclave report: header + Quote
	RuntimeData []byte       `json:"runtimeData"`
	Expect      expectations `json:"expect"`
}

// expectations are the AttestationResult values the evidence must give.
type expectations struct {
	MrEnclave    string `json:"mrEnclave"`
	MrSigner     string `json:"mrSigner"`
	ProductID    int    `json:"productId"`
	SVN          int    `json:"svn"`
	IsDebuggable bool   `json:"isDebuggable"`
}

func TestAzureAttestationSDK(t *testing.T) {
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

	issuer := startAttestd(t, ctx, dir, certFile, keyFile, func(*daemon.Config) {})
	fx := makeFixture(t, issuer, time.Duration(daemon.DefaultConfig().TokenLifetime))
	fixtureFile := filepath.Join(dir, "fixture.json")
	b, err := json.MarshalIndent(fx, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixtureFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// --dns-result-order=ipv4first: attestd listens on 127.0.0.1 only, and
	// localhost must not resolve to ::1 first.
	cmd := exec.CommandContext(ctx, node, "--dns-result-order=ipv4first", "conformance.mjs", fixtureFile)
	cmd.Env = append(childEnv(),
		"ATTESTD_URL="+issuer,
		"NODE_EXTRA_CA_CERTS="+caPEM,
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("node conformance.mjs (%s):\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		if ctx.Err() != nil {
			t.Fatalf("node did not finish within %s: %v", testTimeout, err)
		}
		t.Fatalf("node conformance.mjs failed: %v (output above)", err)
	}
}

// unavailable skips, or fails when the SDK run is required.
func unavailable(t *testing.T, why string) {
	t.Helper()
	if requireSDK() {
		t.Fatalf("%s; ATTESTD_REQUIRE_SDK=1 requires the SDK conformance test to run", why)
	}
	t.Skipf("%s; set ATTESTD_REQUIRE_SDK=1 to make this a failure", why)
}

// childEnv is the test's environment without proxy settings, which the
// SDK's HTTP pipeline would honour even for localhost, and without
// NODE_OPTIONS that could change how node runs the script.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "ATTESTD_URL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// makeFixture mints the evidence with the simulator attestd trusts in dev
// mode (the default seed).
func makeFixture(t *testing.T, issuer string, lifetime time.Duration) fixture {
	t.Helper()
	sim, err := simulator.New(simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(runtimeData []byte, debug bool, e simulator.EnclaveFields) evidenceCase {
		q, err := sim.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX, RuntimeData: runtimeData, Debug: debug, Enclave: e})
		if err != nil {
			t.Fatal(err)
		}
		return evidenceCase{
			Quote: q, Report: openenclave.Wrap(q), RuntimeData: runtimeData,
			Expect: expectations{
				MrEnclave: hex.EncodeToString(e.MRENCLAVE[:]), MrSigner: hex.EncodeToString(e.MRSIGNER[:]),
				ProductID: int(e.ISVProdID), SVN: int(e.ISVSVN), IsDebuggable: debug,
			},
		}
	}
	// Binary runtime data: every byte value, so that a base64 alphabet or
	// padding mix-up shows.
	binaryData := make([]byte, 256+7)
	for i := range binaryData {
		binaryData[i] = byte(i * 7)
	}
	// JSON runtime data: a JWK like MAA's own test vector, plus the JSON
	// types and characters a re-encoding could get wrong.
	jsonData := []byte(`{
  "jwk": {"kty": "EC", "crv": "P-256", "x": "18wHLeIgW9wVN6VD1Txgpqy2LszYkMf6J8njVAibvhM", "y": "cV4dS4UaLMgP_4fY4j8ir7cl1TXlFdAgcx55o7TkcSA"},
  "nested": {"list": [1, 2.5, -3, true, false, null, "x"], "empty": {}, "none": []},
  "text": "ünïcødé <&> \"quoted\" \\ /",
  "n": 12345
}`)
	binaryCase := mint(binaryData, false, simulator.EnclaveFields{
		MRENCLAVE: sha256.Sum256([]byte("attestd sdk conformance: binary enclave")),
		MRSIGNER:  sha256.Sum256([]byte("attestd sdk conformance: signer")),
		ISVProdID: 1, ISVSVN: 1,
	})
	// Different values per field, so that swapped claims show.
	jsonCase := mint(jsonData, true, simulator.EnclaveFields{
		MRENCLAVE: sha256.Sum256([]byte("attestd sdk conformance: json enclave")),
		MRSIGNER:  sha256.Sum256([]byte("attestd sdk conformance: other signer")),
		ISVProdID: 7, ISVSVN: 42,
	})
	return fixture{
		Issuer:               issuer,
		PolicyHash:           service.PolicyHash(service.DefaultPolicyText(service.TypeSGX)),
		TokenLifetimeSeconds: int64(lifetime / time.Second),
		Binary:               binaryCase,
		JSON:                 jsonCase,
		WrongRuntimeData:     []byte("runtime data the quote does not bind"),
		DecoyCertificate:     decoyCertificate(t, issuer),
	}
}

// decoyCertificate is a self-signed RSA certificate named like attestd's
// signing certificate, for a key that signed nothing.
func decoyCertificate(t *testing.T, issuer string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: issuer},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// writeTLS creates a throwaway CA and a server certificate for localhost
// and 127.0.0.1 signed by it; it returns the CA's PEM file (for
// NODE_EXTRA_CA_CERTS) and the server's certificate and key files.
func writeTLS(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "attestd SDK conformance test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	certFile = filepath.Join(dir, "server.pem")
	keyFile = filepath.Join(dir, "server-key.pem")
	writePEM(t, caFile, "CERTIFICATE", caDER)
	writePEM(t, certFile, "CERTIFICATE", srvDER)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return caFile, certFile, keyFile
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
