package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/openenclave"
	"github.com/attestd/attestd/simulator"
)

// requestTimeout bounds one call to the service.
const requestTimeout = 60 * time.Second

func httpClient(caPath string) (*http.Client, error) {
	if caPath == "" {
		return &http.Client{Timeout: requestTimeout}, nil
	}
	pem, err := readInput(caPath, nil)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	hc, err := client.NewHTTPClientWithCA(pem)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	return hc, nil
}

func runAttest(ctx context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("attestctl attest", flag.ContinueOnError)
	url := fs.String("url", "", "attestation service base `URL` (attestd or MAA)")
	typ := fs.String("type", "", "evidence `TYPE`: sgx, openenclave or tdx")
	quotePath := fs.String("quote", "", "evidence `FILE`: a quote (sgx, tdx) or an Open Enclave report; binary, hex or base64 (- for standard input)")
	sim := fs.Bool("sim", false, "attest freshly minted simulator evidence (the service must run with --dev)")
	seed := fs.String("seed", "", "simulator `SEED` for --sim (default the simulator's default seed)")
	debug := fs.Bool("debug", false, "with --sim: mint a debug enclave / TD (to try a policy that refuses them)")
	runtimeData := fs.String("runtime-data", "", "runtime data `FILE`, sent as Binary")
	runtimeJSON := fs.String("runtime-json", "", "runtime data `FILE` holding a JSON object, sent as JSON")
	nonce := fs.String("nonce", "", "`NONCE` echoed in the token")
	caPath := fs.String("ca", "", "trust only this CA `PEM` for HTTPS")
	apiVersion := fs.String("api-version", client.DefaultAPIVersion, "api-version `V` to send")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: attestctl attest --url URL --type sgx|openenclave|tdx (--quote FILE | --sim [--debug]) [--runtime-data FILE | --runtime-json FILE] [--nonce S] [--ca PEM]")
		fmt.Fprintln(fs.Output(), "\nSends evidence to an attestation service and prints the token. With --sim the evidence is minted\nby the simulator with the runtime data bound into its report data. Exit status: 0 token printed,\n1 the service refused the evidence, 2 usage, input or connection error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdio); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stdio.Stderr, "attestctl attest: "+format+"\n", a...)
		return ExitUsage
	}
	var at client.AttestationType
	tee := dcap.TEESGX
	switch strings.ToLower(*typ) {
	case "sgx":
		at = client.SGX
	case "openenclave", "oe":
		at = client.OpenEnclave
	case "tdx":
		at, tee = client.TDX, dcap.TEETDX
	default:
		return fail("--type must be sgx, openenclave or tdx")
	}
	if *url == "" {
		return fail("--url is required")
	}
	if (*quotePath == "") == !*sim {
		return fail("give exactly one of --quote and --sim")
	}
	if *debug && !*sim {
		return fail("--debug goes with --sim")
	}
	if *runtimeData != "" && *runtimeJSON != "" {
		return fail("give at most one of --runtime-data and --runtime-json")
	}
	var rt *client.Data
	if p := *runtimeData + *runtimeJSON; p != "" {
		b, err := readInput(p, stdio.Stdin)
		if err != nil {
			return fail("runtime data: %v", err)
		}
		if *runtimeJSON != "" && !json.Valid(b) {
			return fail("--runtime-json %s is not JSON", p)
		}
		rt = &client.Data{Bytes: b, JSON: *runtimeJSON != ""}
	}
	var evidence []byte
	if *sim {
		s, err := simulator.New(simulator.Options{Seed: *seed})
		if err != nil {
			return fail("%v", err)
		}
		opts := simulator.QuoteOptions{TEE: tee, Debug: *debug}
		if rt != nil {
			opts.RuntimeData = rt.Bytes
		}
		if evidence, err = s.Quote(opts); err != nil {
			return fail("simulator: %v", err)
		}
		if at == client.OpenEnclave {
			evidence = openenclave.Wrap(evidence)
		}
	} else {
		raw, err := readInput(*quotePath, stdio.Stdin)
		if err != nil {
			return fail("--quote: %v", err)
		}
		if evidence, err = decodeEvidence(raw, at); err != nil {
			return fail("--quote %s: %v", *quotePath, err)
		}
	}
	hc, err := httpClient(*caPath)
	if err != nil {
		return fail("%v", err)
	}
	c, err := client.New(*url, client.WithHTTPClient(hc), client.WithAPIVersion(*apiVersion))
	if err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	tok, err := c.Attest(ctx, at, client.AttestRequest{Evidence: evidence, RuntimeData: rt, Nonce: *nonce})
	if err != nil {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 {
			fmt.Fprintf(stdio.Stderr, "attestctl attest: refused: %s\n", apiErr.Error())
			return ExitRejected
		}
		fmt.Fprintf(stdio.Stderr, "attestctl attest: %v\n", err)
		return ExitUsage
	}
	if _, err := fmt.Fprintln(stdio.Stdout, tok); err != nil {
		return ExitUsage
	}
	return ExitOK
}

// decodeEvidence accepts binary, hex (optionally 0x) and base64 of either
// alphabet. Quotes go through the DCAP decoder, which knows their shape;
// an Open Enclave report is recognised by its header.
func decodeEvidence(raw []byte, at client.AttestationType) ([]byte, error) {
	if at != client.OpenEnclave {
		q, _, err := dcap.DecodeQuote(raw)
		return q, err
	}
	if len(raw) >= 8 && binary.LittleEndian.Uint32(raw) == 1 && binary.LittleEndian.Uint32(raw[4:]) == 2 {
		return raw, nil
	}
	text := strings.TrimSpace(string(raw))
	text = strings.TrimPrefix(strings.TrimPrefix(text, "0x"), "0X")
	if b, err := hex.DecodeString(text); err == nil && len(b) > 0 {
		return b, nil
	}
	trimmed := strings.TrimRight(text, "=")
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(trimmed); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	if bytes.Equal(raw, nil) {
		return nil, errors.New("empty")
	}
	return nil, errors.New("not an Open Enclave report in binary, hex or base64")
}
