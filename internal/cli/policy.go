package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/token"
	"github.com/attestd/attestd/verify"
)

// TokenEnv is the environment variable a management command reads the
// bearer token from when neither --token nor --token-file is given.
const TokenEnv = "ATTESTD_TOKEN"

// adminFlags are the flags every management command (policy, signer)
// takes: where the service is, how to authenticate, and whether to verify
// its answers.
type adminFlags struct {
	url, token, tokenFile, caPath, apiVersion string
	skipVerify                                bool
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "url", "", "attestation service base `URL` (attestd or MAA)")
	fs.StringVar(&a.token, "token", "", "bearer `TOKEN` (visible to other local users in the process list; prefer --token-file or $"+TokenEnv+")")
	fs.StringVar(&a.tokenFile, "token-file", "", "read the bearer token from `FILE` (- for standard input)")
	fs.StringVar(&a.caPath, "ca", "", "trust only this CA `PEM` for HTTPS")
	fs.StringVar(&a.apiVersion, "api-version", client.DefaultAPIVersion, "api-version `V` to send")
	fs.BoolVar(&a.skipVerify, "insecure-skip-token-verify", false, "do not verify the service's signed answers (they are then trusted as far as the TLS connection is)")
}

// bearer returns the token from --token, --token-file or $ATTESTD_TOKEN,
// in that order; "" means none.
func (a *adminFlags) bearer(stdio IO) (string, error) {
	if a.token != "" && a.tokenFile != "" {
		return "", errors.New("give at most one of --token and --token-file")
	}
	if a.token != "" {
		return strings.TrimSpace(a.token), nil
	}
	if a.tokenFile != "" {
		b, err := readInput(a.tokenFile, stdio.Stdin)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("--token-file %s is empty", a.tokenFile)
		}
		return t, nil
	}
	if stdio.Getenv != nil {
		return strings.TrimSpace(stdio.Getenv(TokenEnv)), nil
	}
	return "", nil
}

// client builds the management client. Unless --insecure-skip-token-verify
// is given, it reads the service's OpenID metadata for its issuer and
// verifies every answer against the keys the issuer publishes.
func (a *adminFlags) client(ctx context.Context, stdio IO) (*client.Client, error) {
	if a.url == "" {
		return nil, errors.New("--url is required")
	}
	bearer, err := a.bearer(stdio)
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(a.caPath)
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithHTTPClient(hc), client.WithAPIVersion(a.apiVersion)}
	if bearer != "" {
		opts = append(opts, client.WithBearerToken(bearer))
	}
	if !a.skipVerify {
		probe, err := client.New(a.url, client.WithHTTPClient(hc))
		if err != nil {
			return nil, err
		}
		md, err := probe.OpenIDMetadata(ctx)
		if err != nil {
			return nil, fmt.Errorf("finding the service's issuer to verify its answers (--insecure-skip-token-verify skips that): %w", err)
		}
		issuer := md.Issuer
		if issuer == "" {
			// MAA's 2020-10-01 example metadata has no issuer; its tokens
			// carry the base URL.
			issuer = strings.TrimRight(a.url, "/")
		}
		v, err := verify.New(issuer, verify.WithHTTPClient(hc))
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithResponseVerifier(v))
	}
	return client.New(a.url, opts...)
}

// loadSigner reads --sign-key and --sign-cert; both or neither.
func loadSigner(keyPath, certPath string) (*client.Signer, error) {
	switch {
	case keyPath == "" && certPath == "":
		return nil, nil
	case certPath == "":
		return nil, errors.New("--sign-key needs --sign-cert, the signing certificate (PEM, leaf first)")
	case keyPath == "":
		return nil, errors.New("--sign-cert needs --sign-key, the signing certificate's private key (PEM)")
	}
	keyPEM, err := readInput(keyPath, nil)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w", err)
	}
	certPEM, err := readInput(certPath, nil)
	if err != nil {
		return nil, fmt.Errorf("--sign-cert: %w", err)
	}
	s, err := client.LoadSigner(keyPEM, certPEM)
	if err != nil {
		return nil, fmt.Errorf("--sign-key/--sign-cert: %w", err)
	}
	return s, nil
}

// parseAttestationType accepts attestctl's short names and MAA's path
// names, in any case.
func parseAttestationType(s string) (client.AttestationType, error) {
	switch strings.ToLower(s) {
	case "sgx", "sgxenclave":
		return client.SGX, nil
	case "openenclave", "oe":
		return client.OpenEnclave, nil
	case "tdx", "tdxvm":
		return client.TDX, nil
	case "":
		return "", errors.New("--type is required: sgx, openenclave or tdx")
	}
	return "", fmt.Errorf("--type %q: want sgx, openenclave or tdx (or SgxEnclave, OpenEnclave, TdxVm)", s)
}

// adminFailure reports a failed management call and returns the exit
// status: 1 when the service refused the request (4xx) or its answer did
// not check out, 2 for connection problems, server errors and keys that
// could not be fetched.
func adminFailure(stdio IO, cmd string, err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		fmt.Fprintf(stdio.Stderr, "attestctl: %s\n", formatAPIError(ae))
		if ae.StatusCode >= 400 && ae.StatusCode < 500 {
			return ExitRejected
		}
		return ExitUsage
	}
	if code := verify.CodeOf(err); code != "" {
		fmt.Fprintf(stdio.Stderr, "%s: the service's answer is not valid (%s): %v\n", cmd, code, err)
		if code == verify.CodeKeyUnavailable {
			return ExitUsage
		}
		return ExitRejected
	}
	fmt.Fprintf(stdio.Stderr, "%s: %v\n", cmd, err)
	if errors.Is(err, client.ErrTokenHashMismatch) || errors.Is(err, client.ErrResponseMismatch) {
		return ExitRejected
	}
	return ExitUsage
}

// formatAPIError renders a service error as "<status> <code> (<reason>):
// <message>", leaving out the parts the service did not send.
func formatAPIError(e *client.APIError) string {
	s := fmt.Sprint(e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}

const policyUsage = `Usage:
  attestctl policy get   --url URL --type T [--json] [COMMON FLAGS]
  attestctl policy set   --url URL --type T --file FILE [--sign-key PEM --sign-cert PEM] [COMMON FLAGS]
  attestctl policy reset --url URL --type T [--sign-key PEM --sign-cert PEM] [COMMON FLAGS]

T is sgx, openenclave or tdx (or MAA's SgxEnclave, OpenEnclave, TdxVm). COMMON FLAGS are
--token TOKEN | --token-file FILE (default $ATTESTD_TOKEN), --ca PEM, --api-version V and
--insecure-skip-token-verify. Run "attestctl policy get -h" for details.
`

func runPolicy(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 {
		fmt.Fprint(stdio.Stderr, policyUsage)
		return ExitUsage
	}
	switch args[0] {
	case "get":
		return runPolicyGet(ctx, args[1:], stdio)
	case "set":
		return runPolicySet(ctx, args[1:], stdio)
	case "reset":
		return runPolicyReset(ctx, args[1:], stdio)
	case "-h", "--help", "help":
		fmt.Fprint(stdio.Stderr, policyUsage)
		return ExitOK
	}
	fmt.Fprintf(stdio.Stderr, "attestctl policy: unknown subcommand %q\n", args[0])
	fmt.Fprint(stdio.Stderr, policyUsage)
	return ExitUsage
}

const adminExitStatus = "Exit status: 0 done, 1 the service refused the request or its answer did not check out,\n2 usage, input or connection error."

func runPolicyGet(ctx context.Context, args []string, stdio IO) int {
	const name = "attestctl policy get"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var a adminFlags
	a.register(fs)
	typ := fs.String("type", "", "attestation `TYPE`: sgx, openenclave or tdx")
	asJSON := fs.Bool("json", false, "print a JSON object: type, text, policyHash, tokenHash and the signer")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl policy get --url URL --type sgx|openenclave|tdx [--token T | --token-file F] [--ca PEM] [--insecure-skip-token-verify] [--json]")
		fmt.Fprintln(fs.Output(), "\nPrints the policy the service applies to a type of evidence. The bearer token defaults to $"+TokenEnv+".\n"+adminExitStatus)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stdio.Stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	at, err := parseAttestationType(*typ)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c, err := a.client(ctx, stdio)
	if err != nil {
		return fail(err)
	}
	p, err := c.GetPolicy(ctx, at)
	if err != nil {
		return adminFailure(stdio, name, err)
	}
	if *asJSON {
		out := struct {
			Type             string `json:"type"`
			Text             string `json:"text"`
			PolicyHash       string `json:"policyHash"`
			TokenHash        string `json:"tokenHash"`
			Signer           string `json:"signer,omitempty"`
			SignerThumbprint string `json:"signerThumbprint,omitempty"`
		}{Type: string(at), Text: p.Text, PolicyHash: p.Hash(), TokenHash: token.DocumentHash(p.JWS)}
		if p.Signer != nil {
			out.Signer, out.SignerThumbprint = p.Signer.Subject.String(), token.Thumbprint(p.Signer)
		}
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // policies are full of "=>"
		if err := enc.Encode(out); err != nil {
			return ExitUsage
		}
		return ExitOK
	}
	text := p.Text
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if _, err := fmt.Fprint(stdio.Stdout, text); err != nil {
		return ExitUsage
	}
	return ExitOK
}

func runPolicySet(ctx context.Context, args []string, stdio IO) int {
	const name = "attestctl policy set"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var a adminFlags
	a.register(fs)
	typ := fs.String("type", "", "attestation `TYPE`: sgx, openenclave or tdx")
	file := fs.String("file", "", "policy text `FILE`, sent byte for byte (- for standard input)")
	signKey := fs.String("sign-key", "", "sign the policy with this private key `PEM` (isolated mode)")
	signCert := fs.String("sign-cert", "", "the signing certificate `PEM`, leaf first; required with --sign-key")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl policy set --url URL --type sgx|openenclave|tdx --file FILE [--sign-key PEM --sign-cert PEM] [--token T | --token-file F] [--ca PEM] [--insecure-skip-token-verify]")
		fmt.Fprintln(fs.Output(), "\nStores a policy: unsigned (AAD mode) or signed with --sign-key/--sign-cert (isolated mode). Prints the\nresult and the x-ms-policy-token-hash, after checking that it is the hash of the document sent.\n"+adminExitStatus)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stdio.Stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	at, err := parseAttestationType(*typ)
	if err != nil {
		return fail(err)
	}
	if *file == "" {
		return fail(errors.New("--file is required (- reads standard input)"))
	}
	if *file == "-" && a.tokenFile == "-" {
		return fail(errors.New("--file and --token-file cannot both read standard input"))
	}
	signer, err := loadSigner(*signKey, *signCert)
	if err != nil {
		return fail(err)
	}
	text, err := readInput(*file, stdio.Stdin)
	if err != nil {
		return fail(fmt.Errorf("--file: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c, err := a.client(ctx, stdio)
	if err != nil {
		return fail(err)
	}
	res, err := c.SetPolicy(ctx, at, string(text), signer)
	if err != nil {
		return adminFailure(stdio, name, err)
	}
	return printPolicyResult(stdio, at, res)
}

func runPolicyReset(ctx context.Context, args []string, stdio IO) int {
	const name = "attestctl policy reset"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var a adminFlags
	a.register(fs)
	typ := fs.String("type", "", "attestation `TYPE`: sgx, openenclave or tdx")
	signKey := fs.String("sign-key", "", "sign the reset with this private key `PEM` (isolated mode)")
	signCert := fs.String("sign-cert", "", "the signing certificate `PEM`, leaf first; required with --sign-key")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl policy reset --url URL --type sgx|openenclave|tdx [--sign-key PEM --sign-cert PEM] [--token T | --token-file F] [--ca PEM] [--insecure-skip-token-verify]")
		fmt.Fprintln(fs.Output(), "\nReturns a type of evidence to the service's default policy.\n"+adminExitStatus)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stdio.Stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	at, err := parseAttestationType(*typ)
	if err != nil {
		return fail(err)
	}
	signer, err := loadSigner(*signKey, *signCert)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c, err := a.client(ctx, stdio)
	if err != nil {
		return fail(err)
	}
	res, err := c.ResetPolicy(ctx, at, signer)
	if err != nil {
		return adminFailure(stdio, name, err)
	}
	return printPolicyResult(stdio, at, res)
}

func printPolicyResult(stdio IO, at client.AttestationType, res *client.PolicyResult) int {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s: %s\n", at, res.Resolution)
	if res.TokenHash != "" {
		fmt.Fprintf(&b, "token hash: %s (matches the document sent)\n", res.TokenHash)
	}
	if res.Signer != nil {
		fmt.Fprintf(&b, "signer: %s (%s)\n", res.Signer.Subject, token.Thumbprint(res.Signer))
	}
	if _, err := fmt.Fprint(stdio.Stdout, b.String()); err != nil {
		return ExitUsage
	}
	return ExitOK
}

// readCertificate reads the first certificate of a PEM (or DER) file.
func readCertificate(path string) (*x509.Certificate, error) {
	b, err := readInput(path, nil)
	if err != nil {
		return nil, err
	}
	der := b
	if strings.Contains(string(b), "-----BEGIN") {
		der = nil
		for rest := b; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type == "CERTIFICATE" {
				der = blk.Bytes
				break
			}
		}
		if der == nil {
			return nil, fmt.Errorf("%s has no PEM CERTIFICATE block", path)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

// formatTime is how certificate dates are printed.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
