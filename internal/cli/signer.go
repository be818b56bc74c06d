package cli

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/attestd/attestd/token"
)

const signerUsage = `Usage:
  attestctl signer list   --url URL [--pem] [COMMON FLAGS]
  attestctl signer add    --url URL --cert PEM --sign-key PEM --sign-cert PEM [COMMON FLAGS]
  attestctl signer remove --url URL --cert PEM --sign-key PEM --sign-cert PEM [COMMON FLAGS]

Manages the policy signing certificates of an isolated-mode provider. COMMON FLAGS are
--token TOKEN | --token-file FILE (default $ATTESTD_TOKEN), --ca PEM, --api-version V and
--insecure-skip-token-verify. Run "attestctl signer list -h" for details.
`

func runSigner(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 {
		fmt.Fprint(stdio.Stderr, signerUsage)
		return ExitUsage
	}
	switch args[0] {
	case "list":
		return runSignerList(ctx, args[1:], stdio)
	case "add", "remove":
		return runSignerModify(ctx, args[0], args[1:], stdio)
	case "-h", "--help", "help":
		fmt.Fprint(stdio.Stderr, signerUsage)
		return ExitOK
	}
	fmt.Fprintf(stdio.Stderr, "attestctl signer: unknown subcommand %q\n", args[0])
	fmt.Fprint(stdio.Stderr, signerUsage)
	return ExitUsage
}

func runSignerList(ctx context.Context, args []string, stdio IO) int {
	const name = "attestctl signer list"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var a adminFlags
	a.register(fs)
	asPEM := fs.Bool("pem", false, "print the certificates as PEM")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl signer list --url URL [--pem] [--token T | --token-file F] [--ca PEM] [--insecure-skip-token-verify]")
		fmt.Fprintln(fs.Output(), "\nLists the policy signing certificates, one line each: SHA-1 thumbprint, subject, not-after.\n"+adminExitStatus)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c, err := a.client(ctx, stdio)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	certs, err := c.PolicyCertificates(ctx)
	if err != nil {
		return adminFailure(stdio, name, err)
	}
	if len(certs) == 0 {
		fmt.Fprintln(stdio.Stderr, "no policy signing certificates (the provider is not in isolated mode)")
	}
	var b strings.Builder
	for _, cert := range certs {
		if *asPEM {
			b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
			continue
		}
		fmt.Fprintf(&b, "%s  %s  %s\n", token.Thumbprint(cert), cert.Subject, formatTime(cert.NotAfter))
	}
	if _, err := fmt.Fprint(stdio.Stdout, b.String()); err != nil {
		return ExitUsage
	}
	return ExitOK
}

func runSignerModify(ctx context.Context, op string, args []string, stdio IO) int {
	name := "attestctl signer " + op
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var a adminFlags
	a.register(fs)
	certPath := fs.String("cert", "", "the certificate `PEM` to "+op)
	signKey := fs.String("sign-key", "", "private key `PEM` of a current policy signer")
	signCert := fs.String("sign-cert", "", "certificate `PEM` of that signer, leaf first")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: attestctl signer %s --url URL --cert PEM --sign-key PEM --sign-cert PEM [--token T | --token-file F] [--ca PEM] [--insecure-skip-token-verify]\n", op)
		fmt.Fprintln(fs.Output(), "\nAdds or removes a policy signing certificate. The change must be signed by a current signer. Prints the\ncertificate's thumbprint and the service's result (IsPresent or IsAbsent).\n"+adminExitStatus)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stdio.Stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	if *certPath == "" {
		return fail(fmt.Errorf("--cert is required: the certificate to %s", op))
	}
	if *signKey == "" && *signCert == "" {
		return fail(errors.New("--sign-key and --sign-cert are required: the change must be signed by a current policy signer"))
	}
	signer, err := loadSigner(*signKey, *signCert)
	if err != nil {
		return fail(err)
	}
	cert, err := readCertificate(*certPath)
	if err != nil {
		return fail(fmt.Errorf("--cert: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c, err := a.client(ctx, stdio)
	if err != nil {
		return fail(err)
	}
	call := c.AddPolicyCertificate
	if op == "remove" {
		call = c.RemovePolicyCertificate
	}
	res, err := call(ctx, cert, signer)
	if err != nil {
		return adminFailure(stdio, name, err)
	}
	if _, err := fmt.Fprintf(stdio.Stdout, "%s %s\n", res.Thumbprint, res.Result); err != nil {
		return ExitUsage
	}
	return ExitOK
}
