package daemon

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/simulator"
	"github.com/attestd/attestd/token"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "attestd.json")
	if err := os.WriteFile(file, []byte(`{"addr":"127.0.0.1:1111","dataDir":"/from/file","tokenLifetime":"2h","issuer":"https://file.example","logLevel":"warn"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cf := newConfigFlags("test")
	if err := cf.fs.Parse([]string{"--config", file, "--data-dir", "/from/flag", "--dev"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := cf.resolve(env(map[string]string{"ATTESTD_ADDR": "127.0.0.1:2222", "ATTESTD_DATA_DIR": "/from/env", "ATTESTD_TOKEN_LIFETIME": "3h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:2222" || cfg.DataDir != "/from/flag" || time.Duration(cfg.TokenLifetime) != 3*time.Hour ||
		cfg.Issuer != "https://file.example" || cfg.LogLevel != "warn" || !cfg.Dev || cfg.LogFormat != "text" {
		t.Errorf("resolved %+v", cfg)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.json")
	if err := os.WriteFile(unknown, []byte(`{"adress":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"tls half":        {[]string{"--tls-cert", "c.pem"}, nil, "go together"},
		"issuer slash":    {[]string{"--issuer", "https://a.example/"}, nil, "slash"},
		"issuer scheme":   {[]string{"--issuer", "a.example"}, nil, "http(s) URL"},
		"lifetime":        {[]string{"--token-lifetime", "1s"}, nil, "outside"},
		"addr":            {[]string{"--addr", "nohost"}, nil, "addr"},
		"log level":       {[]string{"--log-level", "loud"}, nil, "log level"},
		"unknown field":   {[]string{"--config", unknown}, nil, "unknown field"},
		"missing file":    {[]string{"--config", filepath.Join(dir, "none.json")}, nil, "no such file"},
		"env dev":         {nil, map[string]string{"ATTESTD_DEV": "maybe"}, "ATTESTD_DEV"},
		"env lifetime":    {nil, map[string]string{"ATTESTD_TOKEN_LIFETIME": "soon"}, "ATTESTD_TOKEN_LIFETIME"},
		"env config file": {nil, map[string]string{"ATTESTD_CONFIG": unknown}, "unknown field"},
	} {
		t.Run(name, func(t *testing.T) {
			cf := newConfigFlags("test")
			if err := cf.fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if _, err := cf.resolve(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestIssuerFor(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}
	if got, err := issuerFor(Config{TLSCert: "c"}, loop); err != nil || got != "https://localhost:8443" {
		t.Error(got, err)
	}
	if got, err := issuerFor(Config{}, &net.TCPAddr{IP: net.IPv6loopback, Port: 80}); err != nil || got != "http://localhost:80" {
		t.Error(got, err)
	}
	for _, ip := range []net.IP{net.IPv4zero, net.ParseIP("10.1.2.3")} {
		if _, err := issuerFor(Config{}, &net.TCPAddr{IP: ip, Port: 80}); err == nil || !strings.Contains(err.Error(), "--issuer") {
			t.Errorf("%s without --issuer: %v", ip, err)
		}
	}
	if got, err := issuerFor(Config{Issuer: "https://attest.example"}, &net.TCPAddr{IP: net.IPv4zero, Port: 80}); err != nil || got != "https://attest.example" {
		t.Error(got, err)
	}
}

func start(t *testing.T, cfg Config) *Instance {
	t.Helper()
	inst, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func jwks(t *testing.T, client *http.Client, url string) token.JWKS {
	t.Helper()
	resp, err := client.Get(url + "/certs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set token.JWKS
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

func kids(set token.JWKS) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

// TestKeysPersistAndRotate: the key made on first start survives a
// restart; a new issuer gets a new key; attestd keys rotate adds a key that
// a running instance picks up, with the old key still published.
func TestKeysPersistAndRotate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.Issuer = "http://attestd.test"
	cfg.KeyReloadInterval = Duration(50 * time.Millisecond)
	inst := start(t, cfg)
	url := "http://" + inst.Addr.String()
	first := kids(jwks(t, http.DefaultClient, url))
	if len(first) != 1 {
		t.Fatalf("first start published %v", first)
	}
	if info, err := os.Stat(filepath.Join(cfg.DataDir, "store.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("store.key: %v %v", info, err)
	}

	// Rotate from another "process" while the instance runs.
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"keys", "rotate", "--data-dir", cfg.DataDir}, IO{Stdout: &out, Stderr: &errOut}); code != ExitOK {
		t.Fatalf("keys rotate: %d %s", code, errOut.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	var after []string
	for time.Now().Before(deadline) {
		if after = kids(jwks(t, http.DefaultClient, url)); len(after) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(after) != 2 || after[1] != first[0] || !strings.Contains(out.String(), after[0]) {
		t.Fatalf("after rotation /certs has %v (before %v); rotate said %q", after, first, out.String())
	}
	if err := inst.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := inst.Shutdown(context.Background()); err == nil {
		t.Error("a second Shutdown reported success")
	}

	// Restart: same keys.
	inst = start(t, cfg)
	url = "http://" + inst.Addr.String()
	if again := kids(jwks(t, http.DefaultClient, url)); strings.Join(again, ",") != strings.Join(after, ",") {
		t.Errorf("after restart %v, want %v", again, after)
	}
	if err := inst.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// keys list shows both, the old one retired.
	out.Reset()
	if code := Run(context.Background(), []string{"keys", "list", "--data-dir", cfg.DataDir}, IO{Stdout: &out, Stderr: &errOut}); code != ExitOK {
		t.Fatalf("keys list: %d %s", code, errOut.String())
	}
	var listed []struct {
		KID       string     `json:"kid"`
		Subject   string     `json:"subject"`
		RetiredAt *time.Time `json:"retiredAt"`
	}
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil || len(listed) != 2 || listed[0].RetiredAt == nil || listed[1].RetiredAt != nil ||
		listed[0].Subject != "CN=http://attestd.test" {
		t.Fatalf("keys list: %s (%v)", out.String(), err)
	}

	// A new public URL: the signing certificate must name it, so a new key.
	cfg.Issuer = "http://other.test"
	inst = start(t, cfg)
	defer inst.Shutdown(context.Background())
	set := jwks(t, http.DefaultClient, "http://"+inst.Addr.String())
	if len(set.Keys) != 3 || set.Keys[0].KID == after[0] {
		t.Errorf("new issuer: keys %v", kids(set))
	}
}

func TestWrongStoreKey(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreKey = strings.Repeat("ab", 32)
	inst := start(t, cfg)
	if err := inst.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.StoreKey = strings.Repeat("cd", 32)
	if _, err := Start(context.Background(), cfg, Options{}); err == nil {
		t.Fatal("started with the wrong store key")
	}
}

// TestServeTLSAndShutdown runs attestd serve as the command does, over
// HTTPS, and stops it by cancelling the context.
func TestServeTLSAndShutdown(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", addr, "--tls-cert", certFile, "--tls-key", keyFile,
			"--data-dir", filepath.Join(dir, "data"), "--dev"}, IO{Stdout: io.Discard, Stderr: io.Discard})
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	var md map[string]any
	for i := 0; ; i++ {
		resp, err := client.Get("https://" + addr + "/.well-known/openid-configuration")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&md)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("metadata: %v", err)
			}
			break
		}
		if i > 100 {
			t.Fatalf("attestd did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, port, _ := net.SplitHostPort(addr)
	if md["issuer"] != "https://localhost:"+port {
		t.Errorf("issuer %v", md["issuer"])
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("attestd did not stop")
	}
}

func TestRunUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	stdio := IO{Stdout: &out, Stderr: &errOut}
	if Run(context.Background(), []string{"bogus"}, stdio) != ExitUsage || Run(context.Background(), []string{"keys"}, stdio) != ExitUsage ||
		Run(context.Background(), []string{"serve", "--nope"}, stdio) != ExitUsage {
		t.Error("bad command lines did not exit 2")
	}
	if Run(context.Background(), []string{"version"}, stdio) != ExitOK || !strings.Contains(out.String(), Version) {
		t.Error("version")
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), pool
}

// TestDevKeyIsSeparate: simulated evidence is signed by an in-memory key
// of its own, published only while dev mode is on; the stored production
// key never signs it.
func TestDevKeyIsSeparate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.Dev = true
	cfg.Issuer = "http://attestd.test" // the same across restarts
	inst := start(t, cfg)
	url := "http://" + inst.Addr.String()
	published := kids(jwks(t, http.DefaultClient, url))
	prod, err := inst.keys.ActiveKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(published) != 2 || published[0] != prod.KID {
		t.Fatalf("dev mode publishes %v; production key %s", published, prod.KID)
	}
	devKID := published[1]
	sim, err := simulator.New(simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sim.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Attest(context.Background(), client.SGX, client.AttestRequest{Evidence: q})
	if err != nil {
		t.Fatal(err)
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h struct{ Kid string }
	if err := json.Unmarshal(header, &h); err != nil || h.Kid != devKID {
		t.Fatalf("simulated evidence signed by %q, want the dev key %q", h.Kid, devKID)
	}
	if err := inst.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.Dev = false
	inst = start(t, cfg)
	defer inst.Shutdown(context.Background())
	if after := kids(jwks(t, http.DefaultClient, "http://"+inst.Addr.String())); len(after) != 1 || after[0] != prod.KID {
		t.Fatalf("without dev mode /certs has %v, want only %s", after, prod.KID)
	}
}
