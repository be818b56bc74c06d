// Package cli implements attestctl, the command line for clients, relying
// parties and operators. cmd/attestctl only calls Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses.
const (
	ExitOK       = 0 // success (evidence verified, whatever its TCB status)
	ExitRejected = 1 // the evidence (or token, or management request) was rejected
	ExitUsage    = 2 // bad command line, unreadable input or unwritable output
)

// IO is where a command reads and writes.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (ATTESTD_TOKEN); cmd/attestctl passes
	// os.Getenv. Nil means an empty environment.
	Getenv func(string) string
}

const usage = `attestctl: client, relying-party and operator tool for attestd

Usage:
  attestctl evidence verify --quote FILE [--collateral FILE]... [--at RFC3339] [--trust-root PEM] [--json]
  attestctl sim quote --type sgx|tdx [--version N] [--runtime-data FILE] [--debug] [--fault NAME] [--seed S] --out FILE
  attestctl sim collateral [--seed S] --out DIR
  attestctl sim faults
  attestctl attest --url URL --type sgx|openenclave|tdx (--quote FILE | --sim) [--runtime-data FILE | --runtime-json FILE] [--nonce S] [--ca PEM]
  attestctl token verify --url URL [--ca PEM] [--allow-simulated] [--jwks FILE] [--at RFC3339] [--expect NAME=STRING | NAME:=JSON]... (TOKEN | -)
  attestctl policy get --url URL --type sgx|openenclave|tdx [--json] [ADMIN FLAGS]
  attestctl policy set --url URL --type sgx|openenclave|tdx --file FILE [--sign-key PEM --sign-cert PEM] [ADMIN FLAGS]
  attestctl policy reset --url URL --type sgx|openenclave|tdx [--sign-key PEM --sign-cert PEM] [ADMIN FLAGS]
  attestctl signer list --url URL [--pem] [ADMIN FLAGS]
  attestctl signer add|remove --url URL --cert PEM --sign-key PEM --sign-cert PEM [ADMIN FLAGS]

ADMIN FLAGS: [--token T | --token-file F] (default $ATTESTD_TOKEN) [--ca PEM] [--insecure-skip-token-verify]

Run "attestctl COMMAND -h" for a command's flags.
`

// Run runs attestctl with args (without the program name) and returns the
// exit status.
func Run(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdio.Stderr, usage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	switch args[0] {
	case "evidence":
		if len(args) < 2 || args[1] != "verify" {
			return usageError(stdio, "attestctl evidence: the only subcommand is verify")
		}
		return runEvidenceVerify(ctx, args[2:], stdio)
	case "sim":
		return runSim(ctx, args[1:], stdio)
	case "attest":
		return runAttest(ctx, args[1:], stdio)
	case "token":
		if len(args) < 2 || args[1] != "verify" {
			return usageError(stdio, "attestctl token: the only subcommand is verify")
		}
		return runTokenVerify(ctx, args[2:], stdio)
	case "policy":
		return runPolicy(ctx, args[1:], stdio)
	case "signer":
		return runSigner(ctx, args[1:], stdio)
	}
	return usageError(stdio, fmt.Sprintf("attestctl: unknown command %q", args[0]))
}

func usageError(stdio IO, msg string) int {
	fmt.Fprintln(stdio.Stderr, msg)
	fmt.Fprint(stdio.Stderr, usage)
	return ExitUsage
}

// parseFlags parses a flag set, mapping -h and errors to exit statuses.
// It returns ok=false with the status to exit with.
func parseFlags(fs *flag.FlagSet, args []string, stdio IO) (int, bool) {
	fs.SetOutput(stdio.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stdio.Stderr, "%s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return ExitUsage, false
	}
	return 0, true
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
