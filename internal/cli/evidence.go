package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
)

// maxInputFile bounds every file the CLI reads.
const maxInputFile = 16 << 20

func runEvidenceVerify(ctx context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("attestctl evidence verify", flag.ContinueOnError)
	quotePath := fs.String("quote", "", "quote `FILE`: binary, hex, 0x-hex, base64 or base64url (- for standard input)")
	var collateral multiFlag
	fs.Var(&collateral, "collateral", "collateral `FILE` (repeatable; format detected; earlier files take precedence)")
	atFlag := fs.String("at", "", "verify at this `RFC3339` time instead of now")
	trustRoot := fs.String("trust-root", "", "trust this root CA `PEM` instead of Intel's SGX Root CA (for the simulator)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl evidence verify --quote FILE [--collateral FILE]... [--at RFC3339] [--trust-root PEM] [--json]")
		fmt.Fprintln(fs.Output(), "\nVerifies an Intel SGX or TDX DCAP quote against collateral. Exit status: 0 verified\n(whatever the TCB status), 1 rejected, 2 usage error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	if *quotePath == "" {
		fmt.Fprintln(stdio.Stderr, "attestctl evidence verify: --quote is required")
		fs.Usage()
		return ExitUsage
	}
	at := time.Now()
	if *atFlag != "" {
		t, err := time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			fmt.Fprintf(stdio.Stderr, "attestctl evidence verify: --at %q is not an RFC 3339 time (e.g. 2025-07-01T00:00:00Z)\n", *atFlag)
			return ExitUsage
		}
		at = t
	}
	opts := []dcap.Option{dcap.WithClock(func() time.Time { return at })}
	if *trustRoot != "" {
		root, err := readRootPEM(*trustRoot)
		if err != nil {
			fmt.Fprintf(stdio.Stderr, "attestctl evidence verify: --trust-root: %v\n", err)
			return ExitUsage
		}
		opts = append(opts, dcap.WithTrustRoot(root))
	}
	raw, err := readInput(*quotePath, stdio.Stdin)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestctl evidence verify: --quote: %v\n", err)
		return ExitUsage
	}
	var parts []*dcap.Collateral
	for _, path := range collateral {
		b, err := readInput(path, stdio.Stdin)
		if err != nil {
			fmt.Fprintf(stdio.Stderr, "attestctl evidence verify: --collateral: %v\n", err)
			return ExitUsage
		}
		c, _, err := dcap.LoadCollateral(b)
		if err != nil {
			return reject(stdio, *asJSON, fmt.Errorf("collateral %s: %w", path, err))
		}
		parts = append(parts, c)
	}

	quote, _, err := dcap.DecodeQuote(raw)
	if err != nil {
		return reject(stdio, *asJSON, err)
	}
	res, err := dcap.NewVerifier(opts...).VerifyQuote(ctx, quote, dcap.MergeCollateral(parts...))
	if err != nil {
		return reject(stdio, *asJSON, err)
	}
	claims := res.Claims()
	if *asJSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(claims); err != nil {
			fmt.Fprintf(stdio.Stderr, "attestctl evidence verify: %v\n", err)
			return ExitRejected
		}
		return ExitOK
	}
	printSummary(stdio.Stdout, claims)
	return ExitOK
}

// reject reports a rejection: a JSON error object, or a line on stderr.
func reject(stdio IO, asJSON bool, err error) int {
	code := dcap.CodeOf(err)
	if code == "" {
		code = "verification_failed"
	}
	if asJSON {
		out := map[string]any{"error": map[string]string{"code": string(code), "message": err.Error()}}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(stdio.Stdout, string(b))
	} else {
		fmt.Fprintf(stdio.Stderr, "rejected: %v\n", err)
	}
	return ExitRejected
}

func printSummary(w io.Writer, c *dcap.Claims) {
	fmt.Fprintf(w, "verified: %s quote v%d\n", strings.ToUpper(c.TEEType), c.QuoteVersion)
	fmt.Fprintf(w, "tcb status:    %s", c.TCBStatus)
	if len(c.AdvisoryIDs) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(c.AdvisoryIDs, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "platform:      %s, tcb date %s, fmspc %x\n", c.PlatformTCBStatus, c.TCBDate.Format(time.DateOnly), []byte(c.FMSPC))
	fmt.Fprintf(w, "quoting enclave: %s\n", c.QETCBStatus)
	if m := c.TDXModule; m != nil {
		fmt.Fprintf(w, "tdx module:    %s svn %d %s\n", m.ID, m.ISVSVN, m.TCBStatus)
	}
	if s := c.SGX; s != nil {
		fmt.Fprintf(w, "mrenclave:     %x\nmrsigner:      %x\nisvprodid %d isvsvn %d debug %v\n", []byte(s.MRENCLAVE), []byte(s.MRSIGNER), s.ISVProdID, s.ISVSVN, s.Debug)
	}
	if t := c.TDX; t != nil {
		fmt.Fprintf(w, "mrtd:          %x\ndebug %v\n", []byte(t.MRTD), t.TDAttributeFlags.Debug)
	}
	fmt.Fprintf(w, "collateral valid until %s\n", c.CollateralExpiry.Format(time.RFC3339))
}

// readInput reads a file, or standard input for "-", up to maxInputFile.
func readInput(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		if stdin == nil {
			return nil, errors.New("standard input is not available here")
		}
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInputFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxInputFile)
	}
	return b, nil
}

// readRootPEM reads one CA certificate (PEM or DER).
func readRootPEM(path string) (*x509.Certificate, error) {
	b, err := readInput(path, nil)
	if err != nil {
		return nil, err
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s holds a %s, not a CERTIFICATE", path, blk.Type)
		}
		der = blk.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !cert.IsCA {
		return nil, errors.New(path + " is not a CA certificate")
	}
	return cert, nil
}
