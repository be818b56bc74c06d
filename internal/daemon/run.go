package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/keys"
	"github.com/attestd/attestd/internal/store"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// IO is where the program writes.
type IO struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

const usage = `attestd: MAA-compatible remote attestation service

Usage:
  attestd [serve] [flags]          run the service (the default command)
  attestd keys list [flags]        list the token signing keys
  attestd keys rotate [flags]      add a new signing key; the old one stays published until its tokens expire
  attestd admin-token create --name NAME --role ROLE --file FILE
                                   make a management API bearer token; prints it once, stores only its hash
  attestd policy history --type T [--text] [flags]
                                   list every stored version of a type's policy
  attestd version

Run "attestd serve -h" for the flags. Every flag has an ATTESTD_* environment
variable and a field in the JSON --config file; flags win over the environment,
which wins over the file.
`

// Run runs attestd with args (without the program name) until ctx is done,
// and returns the exit status.
func Run(ctx context.Context, args []string, stdio IO) int {
	if stdio.Getenv == nil {
		stdio.Getenv = func(string) string { return "" }
	}
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, stdio)
	case "keys":
		if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
			fmt.Fprint(stdio.Stderr, "attestd keys: subcommand list or rotate\n\n"+usage)
			return ExitUsage
		}
		return runKeys(ctx, args[0], args[1:], stdio)
	case "admin-token":
		return runAdminToken(args, stdio)
	case "policy":
		return runPolicyHistory(ctx, args, stdio)
	case "version":
		fmt.Fprintln(stdio.Stdout, Version)
		return ExitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdio.Stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stdio.Stderr, "attestd: unknown command %q\n\n%s", cmd, usage)
	return ExitUsage
}

func parse(cf *configFlags, args []string, stdio IO) (Config, int, bool) {
	cf.fs.SetOutput(stdio.Stderr)
	if err := cf.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, ExitOK, false
		}
		return Config{}, ExitUsage, false
	}
	if cf.fs.NArg() > 0 {
		fmt.Fprintf(stdio.Stderr, "%s: unexpected arguments: %s\n", cf.fs.Name(), strings.Join(cf.fs.Args(), " "))
		return Config{}, ExitUsage, false
	}
	cfg, err := cf.resolve(stdio.Getenv)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "%s: %v\n", cf.fs.Name(), err)
		return Config{}, ExitUsage, false
	}
	return cfg, 0, true
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runServe(ctx context.Context, args []string, stdio IO) int {
	cf := newConfigFlags("attestd serve")
	cfg, code, ok := parse(cf, args, stdio)
	if !ok {
		return code
	}
	log := newLogger(cfg, stdio.Stderr)
	inst, err := Start(ctx, cfg, Options{Logger: log})
	if err != nil {
		log.Error("attestd failed to start", "error", err)
		return ExitError
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-inst.done:
		// The listener failed; put the error back for Shutdown to report.
		inst.done <- err
	}
	if err := inst.Shutdown(context.Background()); err != nil {
		log.Error("shutdown", "error", err)
		return ExitError
	}
	log.Info("stopped")
	return ExitOK
}

func runKeys(ctx context.Context, sub string, args []string, stdio IO) int {
	cf := newConfigFlags("attestd keys " + sub)
	cfg, code, ok := parse(cf, args, stdio)
	if !ok {
		return code
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestd keys %s: %v\n", sub, err)
		return ExitError
	}
	defer st.Close()
	if sub == "rotate" {
		issuer := cfg.Issuer
		if issuer == "" {
			// Keep the issuer the current key was made for.
			if ks, err := st.SigningKeys(ctx, store.DefaultTenant); err == nil && len(ks) > 0 {
				if k, err := parseCertCN(ks[len(ks)-1].CertificateDER); err == nil {
					issuer = k
				}
			}
		}
		if issuer == "" {
			fmt.Fprintln(stdio.Stderr, "attestd keys rotate: no existing key to take the issuer from; pass --issuer")
			return ExitUsage
		}
		// Open, not New: New would already make a key for a new issuer,
		// and this command makes exactly one. NoPrune: only the service
		// knows its token lifetime, so only it retires keys for good.
		km, err := keys.Open(ctx, keys.Config{Store: st, Issuer: issuer, NoPrune: true})
		if err != nil {
			fmt.Fprintf(stdio.Stderr, "attestd keys rotate: %v\n", err)
			return ExitError
		}
		k, err := km.Rotate(ctx)
		if err != nil {
			fmt.Fprintf(stdio.Stderr, "attestd keys rotate: %v\n", err)
			return ExitError
		}
		fmt.Fprintf(stdio.Stdout, "new active key %s; a running attestd picks it up within its key reload interval\n", k.KID)
		return ExitOK
	}
	ks, err := st.SigningKeys(ctx, store.DefaultTenant)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestd keys list: %v\n", err)
		return ExitError
	}
	type row struct {
		KID       string     `json:"kid"`
		Algorithm string     `json:"alg"`
		Subject   string     `json:"subject"`
		CreatedAt time.Time  `json:"createdAt"`
		RetiredAt *time.Time `json:"retiredAt,omitempty"`
	}
	out := make([]row, 0, len(ks))
	for _, k := range ks {
		cn, _ := parseCertCN(k.CertificateDER)
		r := row{KID: k.KID, Algorithm: k.Algorithm, Subject: "CN=" + cn, CreatedAt: k.CreatedAt}
		if !k.RetiredAt.IsZero() {
			t := k.RetiredAt
			r.RetiredAt = &t
		}
		out = append(out, r)
	}
	enc := json.NewEncoder(stdio.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return ExitError
	}
	return ExitOK
}
