package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/attestd/attestd/verify"
)

func runTokenVerify(ctx context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("attestctl token verify", flag.ContinueOnError)
	url := fs.String("url", "", "the issuer: the attestation service's base `URL` (attestd or MAA)")
	caPath := fs.String("ca", "", "trust only this CA `PEM` for HTTPS")
	allowSimulated := fs.Bool("allow-simulated", false, "accept tokens minted from simulator evidence (dev mode)")
	jwksPath := fs.String("jwks", "", "verify against this JWKS `FILE` instead of fetching the issuer's keys")
	atFlag := fs.String("at", "", "verify at this `RFC3339` time instead of now")
	var expect multiFlag
	fs.Var(&expect, "expect", "require claim `NAME=STRING`, or NAME:=JSON for a number, boolean, object or array; repeatable")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl token verify --url URL [--ca PEM] [--allow-simulated] [--jwks FILE] [--at RFC3339] [--expect NAME=STRING | NAME:=JSON]... (TOKEN | -)")
		fmt.Fprintln(fs.Output(), "\nVerifies an attestation token (signature by a key the issuer publishes, RS256 only, iss, exp, nbf)\nand prints its claims as JSON. Exit status: 0 valid, 1 not valid, 2 usage or input error.")
		fs.PrintDefaults()
	}
	fs.SetOutput(stdio.Stderr)
	// The token is a positional argument; flags may come before it.
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return ExitOK
		}
		return ExitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stdio.Stderr, "attestctl token verify: "+format+"\n", a...)
		return ExitUsage
	}
	if fs.NArg() != 1 {
		return fail("give one TOKEN, or - to read it from standard input")
	}
	if *url == "" {
		return fail("--url (the issuer) is required")
	}
	raw := fs.Arg(0)
	if raw == "-" {
		b, err := readInput("-", stdio.Stdin)
		if err != nil {
			return fail("%v", err)
		}
		raw = string(b)
	}
	raw = strings.TrimSpace(raw)
	// Accept the service's {"token": "..."} body as well as the bare JWT.
	if strings.HasPrefix(raw, "{") {
		var body struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(raw), &body); err == nil && body.Token != "" {
			raw = body.Token
		}
	}
	opts := []verify.Option{}
	if *allowSimulated {
		opts = append(opts, verify.WithAllowSimulated())
	}
	if *jwksPath != "" {
		b, err := readInput(*jwksPath, nil)
		if err != nil {
			return fail("--jwks: %v", err)
		}
		opts = append(opts, verify.WithKeySet(b))
	} else {
		hc, err := httpClient(*caPath)
		if err != nil {
			return fail("%v", err)
		}
		opts = append(opts, verify.WithHTTPClient(hc))
	}
	if *atFlag != "" {
		at, err := time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			return fail("--at %q is not an RFC 3339 time", *atFlag)
		}
		opts = append(opts, verify.WithClock(func() time.Time { return at }))
	}
	if len(expect) > 0 {
		want := map[string]any{}
		for _, e := range expect {
			name, value, ok := strings.Cut(e, "=")
			if !ok || name == "" || name == ":" {
				return fail("--expect %q: want NAME=STRING or NAME:=JSON", e)
			}
			if jsonName, isJSON := strings.CutSuffix(name, ":"); isJSON {
				var v any
				if err := json.Unmarshal([]byte(value), &v); err != nil {
					return fail("--expect %q: the value after := is not JSON: %v", e, err)
				}
				want[jsonName] = v
				continue
			}
			// A plain string, even when it looks like a number: a nonce
			// of 12345 is the string "12345".
			want[name] = value
		}
		opts = append(opts, verify.WithExpectedClaims(want))
	}
	v, err := verify.New(strings.TrimRight(*url, "/"), opts...)
	if err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestctl token verify: not valid (%s): %v\n", verify.CodeOf(err), err)
		if verify.CodeOf(err) == verify.CodeKeyUnavailable {
			return ExitUsage
		}
		return ExitRejected
	}
	enc := json.NewEncoder(stdio.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(tok.Claims); err != nil {
		return ExitUsage
	}
	return ExitOK
}
