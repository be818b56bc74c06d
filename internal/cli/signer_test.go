package cli

import (
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/token"
)

func TestSignerUsageErrors(t *testing.T) {
	keyPath, certPath, _ := signerFiles(t, "s")
	url := "https://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"signer"}, ExitUsage, "attestctl signer list"},
		{"unknown subcommand", []string{"signer", "rotate"}, ExitUsage, `unknown subcommand "rotate"`},
		{"help", []string{"signer", "--help"}, ExitOK, "attestctl signer add"},
		{"add help", []string{"signer", "add", "-h"}, ExitOK, "--sign-cert"},
		{"list without url", []string{"signer", "list"}, ExitUsage, "--url is required"},
		{"add without cert", []string{"signer", "add", "--url", url, "--sign-key", keyPath, "--sign-cert", certPath}, ExitUsage, "--cert is required"},
		{"add unsigned", []string{"signer", "add", "--url", url, "--cert", certPath}, ExitUsage, "--sign-key and --sign-cert are required"},
		{"remove with key only", []string{"signer", "remove", "--url", url, "--cert", certPath, "--sign-key", keyPath}, ExitUsage, "--sign-key needs --sign-cert"},
		{"unreadable cert", []string{"signer", "add", "--url", url, "--cert", filepath.Join(t.TempDir(), "nope"), "--sign-key", keyPath, "--sign-cert", certPath}, ExitUsage, "--cert: open"},
		{"cert is a key", []string{"signer", "add", "--url", url, "--cert", keyPath, "--sign-key", keyPath, "--sign-cert", certPath}, ExitUsage, "no PEM CERTIFICATE"},
	} {
		code, _, stderr := runAdmin(t, nil, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, stderr, tc.code, tc.want)
		}
	}
}

func TestSignerListAddRemove(t *testing.T) {
	keyPath, certPath, first := signerFiles(t, "first signer")
	key2, cert2Path, second := signerFiles(t, "second signer")
	f := newAdminFake(t, first)
	env := map[string]string{TokenEnv: adminBearer}
	common := []string{"--url", f.srv.URL, "--ca", f.caPath}

	code, out, stderr := runAdmin(t, env, "", append([]string{"signer", "list"}, common...)...)
	if want := token.Thumbprint(first) + "  CN=first signer  2040-01-02T03:04:05Z\n"; code != ExitOK || out != want {
		t.Fatalf("list: exit %d, %q, want %q: %s", code, out, want, stderr)
	}
	if r, _ := f.lastRequest(); r.Method != "GET" || r.URL.Path != "/certificates" || r.URL.RawQuery != "api-version=2022-08-01" {
		t.Errorf("list request %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	}

	code, out, stderr = runAdmin(t, env, "", append([]string{"signer", "add", "--cert", cert2Path, "--sign-key", keyPath, "--sign-cert", certPath}, common...)...)
	if code != ExitOK || out != token.Thumbprint(second)+" IsPresent\n" {
		t.Fatalf("add: exit %d, %q: %s", code, out, stderr)
	}
	r, body := f.lastRequest()
	var doc string
	if r.URL.Path != "/certificates:add" || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("add request %s %q", r.URL.Path, body)
	}
	if jws, err := token.ParseJWS(doc); err != nil || !jws.Chain[0].Equal(first) {
		t.Errorf("add document signed by %v: %v", jws, err)
	}

	code, out, stderr = runAdmin(t, env, "", append([]string{"signer", "list", "--pem"}, common...)...)
	if code != ExitOK {
		t.Fatalf("list --pem: exit %d: %s", code, stderr)
	}
	var n int
	for rest := []byte(out); ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
	}
	if n != 2 {
		t.Errorf("list --pem: %d certificates in %q", n, out)
	}

	code, out, stderr = runAdmin(t, env, "", append([]string{"signer", "remove", "--cert", certPath, "--sign-key", key2, "--sign-cert", cert2Path}, common...)...)
	if code != ExitOK || out != token.Thumbprint(first)+" IsAbsent\n" {
		t.Fatalf("remove: exit %d, %q: %s", code, out, stderr)
	}
	if r, _ := f.lastRequest(); r.URL.Path != "/certificates:remove" {
		t.Errorf("remove path %s", r.URL.Path)
	}

	// An empty list says so on standard error and prints nothing.
	f.set(func(f *adminFake) { f.signers = nil })
	code, out, stderr = runAdmin(t, env, "", append([]string{"signer", "list"}, common...)...)
	if code != ExitOK || out != "" || !strings.Contains(stderr, "no policy signing certificates") {
		t.Errorf("empty list: exit %d, %q, %q", code, out, stderr)
	}
	// A DER certificate works for --cert too.
	der := filepath.Join(t.TempDir(), "c.der")
	if err := os.WriteFile(der, second.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runAdmin(t, env, "", append([]string{"signer", "add", "--cert", der, "--sign-key", key2, "--sign-cert", cert2Path}, common...)...)
	if code != ExitOK || out != token.Thumbprint(second)+" IsPresent\n" {
		t.Errorf("add DER: exit %d, %q: %s", code, out, stderr)
	}
}
