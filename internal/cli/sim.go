package cli

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/simulator"
)

func runSim(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 {
		return usageError(stdio, "attestctl sim: a subcommand is required: quote, collateral or faults")
	}
	switch args[0] {
	case "quote":
		return runSimQuote(ctx, args[1:], stdio)
	case "collateral":
		return runSimCollateral(ctx, args[1:], stdio)
	case "faults":
		return runSimFaults(args[1:], stdio)
	}
	return usageError(stdio, fmt.Sprintf("attestctl sim: unknown subcommand %q", args[0]))
}

const simSeedHelp = "simulator `seed`: one seed gives one PKI and platform (the default is public and insecure)"

func runSimQuote(_ context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("attestctl sim quote", flag.ContinueOnError)
	teeName := fs.String("type", "", "TEE `type`: sgx or tdx")
	version := fs.Int("version", 0, "quote `version`: 3, 4 or 5 for sgx (default 3); 4 or 5 for tdx (default 4)")
	bodyName := fs.String("body", "", "body of a version 5 tdx quote: td1.0 or td1.5 (default td1.5)")
	runtimePath := fs.String("runtime-data", "", "bind this `FILE`'s bytes: report data = SHA-256(contents) || 32 zero bytes")
	debug := fs.Bool("debug", false, "mark the enclave or TD debuggable")
	fault := fs.String("fault", "", "inject this fault (see attestctl sim faults)")
	seed := fs.String("seed", simulator.DefaultSeed, simSeedHelp)
	format := fs.String("format", "binary", "output `encoding`: binary, hex or base64")
	out := fs.String("out", "", "write the quote to `FILE` (- for standard output)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl sim quote --type sgx|tdx [--version N] [--body td1.0|td1.5] [--runtime-data FILE] [--debug] [--fault NAME] [--seed S] [--format F] --out FILE")
		fmt.Fprintln(fs.Output(), "\nMints a DCAP quote on the simulated platform. Verify it with the collateral of\n\"attestctl sim collateral\" and --trust-root DIR/root.pem.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stdio.Stderr, "attestctl sim quote: "+format+"\n", a...)
		return ExitUsage
	}
	if *out == "" {
		return fail("--out is required")
	}
	tee, err := parseTEE(*teeName)
	if err != nil {
		return fail("%v", err)
	}
	opts := simulator.QuoteOptions{TEE: tee, Version: *version, Debug: *debug, Fault: *fault}
	switch *bodyName {
	case "":
	case "td1.0":
		opts.Body = dcap.BodyTD10
	case "td1.5":
		opts.Body = dcap.BodyTD15
	default:
		return fail("--body %q is not td1.0 or td1.5", *bodyName)
	}
	if *runtimePath != "" {
		if opts.RuntimeData, err = readInput(*runtimePath, stdio.Stdin); err != nil {
			return fail("--runtime-data: %v", err)
		}
	}
	sim, err := simulator.New(simulator.Options{Seed: *seed})
	if err != nil {
		return fail("%v", err)
	}
	quote, err := sim.Quote(opts)
	if err != nil {
		return fail("%v", err)
	}
	switch *format {
	case "binary":
	case "hex":
		quote = []byte(hex.EncodeToString(quote) + "\n")
	case "base64":
		quote = []byte(base64.StdEncoding.EncodeToString(quote) + "\n")
	default:
		return fail("--format %q is not binary, hex or base64", *format)
	}
	// Output that cannot be written is reported like unreadable input:
	// exit status 1 means evidence was rejected, which nothing here does.
	if *out == "-" {
		if _, err := stdio.Stdout.Write(quote); err != nil {
			return fail("write quote: %v", err)
		}
		return ExitOK
	}
	if err := os.WriteFile(*out, quote, 0o644); err != nil {
		return fail("%v", err)
	}
	return ExitOK
}

func runSimCollateral(_ context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("attestctl sim collateral", flag.ContinueOnError)
	seed := fs.String("seed", simulator.DefaultSeed, simSeedHelp)
	fault := fs.String("fault", "", "write the collateral served for quotes with this fault (differs for the collateral faults)")
	atFlag := fs.String("at", "", "issue the collateral at this `RFC3339` time (default now); it is valid for 30 days")
	out := fs.String("out", "", "write the files into `DIR` (created if missing)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl sim collateral [--seed S] [--fault NAME] [--at RFC3339] --out DIR")
		fmt.Fprintln(fs.Output(), "\nWrites the simulated platform's collateral for SGX and TDX: Intel PCS response\nbodies, issuer chains, CRLs, an attestd bundle per TEE, and root.pem (the root\nto pass to attestctl evidence verify --trust-root).")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stdio.Stderr, "attestctl sim collateral: "+format+"\n", a...)
		return ExitUsage
	}
	if *out == "" {
		return fail("--out is required")
	}
	at := time.Now()
	if *atFlag != "" {
		t, err := time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			return fail("--at %q is not an RFC 3339 time", *atFlag)
		}
		if t.IsZero() {
			return fail("--at must be a real time, not the zero time")
		}
		at = t
	}
	sim, err := simulator.New(simulator.Options{Seed: *seed, Now: at})
	if err != nil {
		return fail("%v", err)
	}
	files := map[string][]byte{}
	for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
		if f, err := simulator.LookupFault(*fault); *fault != "" && err == nil && !f.AppliesTo(tee) {
			continue
		}
		set, err := sim.Collateral(tee, *fault)
		if err != nil {
			return fail("%v", err)
		}
		for name, data := range set.Files {
			files[name] = data
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail("%v", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			return fail("%v", err)
		}
	}
	fmt.Fprintf(stdio.Stderr, "wrote %d files to %s (valid %s to %s)\n", len(files), *out,
		sim.Now().Format(time.RFC3339), sim.Now().Add(30*24*time.Hour).Format(time.RFC3339))
	return ExitOK
}

func runSimFaults(args []string, stdio IO) int {
	fs := flag.NewFlagSet("attestctl sim faults", flag.ContinueOnError)
	long := fs.Bool("long", false, "also print each fault's expected verifier code (or later check) and description")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl sim faults [--long]\n\nLists the faults attestctl sim quote --fault can inject, one per line.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	writeFailed := func(err error) int {
		fmt.Fprintf(stdio.Stderr, "attestctl sim faults: %v\n", err)
		return ExitUsage
	}
	if !*long {
		for _, name := range simulator.FaultNames() {
			if _, err := fmt.Fprintln(stdio.Stdout, name); err != nil {
				return writeFailed(err)
			}
		}
		return ExitOK
	}
	tw := tabwriter.NewWriter(stdio.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\tVERDICT\tDESCRIPTION")
	for _, f := range simulator.Faults() {
		verdict := string(f.Code)
		switch {
		case verdict != "":
		case f.CaughtBy != "":
			verdict = "verifies; caught by " + f.CaughtBy
		default:
			verdict = "verifies with a lower TCB status"
		}
		if f.TDXOnly {
			verdict += " (tdx only)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Name, verdict, f.Description)
	}
	if err := tw.Flush(); err != nil {
		return writeFailed(err)
	}
	return ExitOK
}

func parseTEE(name string) (dcap.TEEType, error) {
	switch name {
	case "sgx":
		return dcap.TEESGX, nil
	case "tdx":
		return dcap.TEETDX, nil
	case "":
		return 0, fmt.Errorf("--type is required (sgx or tdx)")
	}
	return 0, fmt.Errorf("--type %q is not sgx or tdx", name)
}
