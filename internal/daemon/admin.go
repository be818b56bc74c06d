package daemon

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/auth"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/policy"
)

// runAdminToken implements `attestd admin-token create`: it makes a token,
// prints it once, and appends only its hash to the token file.
func runAdminToken(args []string, stdio IO) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stdio.Stderr, "attestd admin-token: subcommand create\n\nUsage: attestd admin-token create --name NAME --role reader|contributor|attester --file FILE\n")
		return ExitUsage
	}
	fset := flag.NewFlagSet("attestd admin-token create", flag.ContinueOnError)
	fset.SetOutput(stdio.Stderr)
	name := fset.String("name", "", "`NAME` of the token's holder (letters, digits, . _ -)")
	roleName := fset.String("role", "", "`ROLE`: attester, reader or contributor (required)")
	file := fset.String("file", "", "token `FILE` to append the hash to (default --admin-token-file / ATTESTD_ADMIN_TOKEN_FILE; created 0600 if absent)")
	if err := fset.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *file == "" {
		*file = stdio.Getenv("ATTESTD_ADMIN_TOKEN_FILE")
	}
	if *name == "" || *file == "" || fset.NArg() > 0 {
		fmt.Fprintln(stdio.Stderr, "attestd admin-token create: --name and --file (or ATTESTD_ADMIN_TOKEN_FILE) are required")
		return ExitUsage
	}
	if *roleName == "" {
		fmt.Fprintln(stdio.Stderr, "attestd admin-token create: --role is required (attester, reader or contributor)")
		return ExitUsage
	}
	role, err := auth.ParseRole(*roleName)
	if err != nil || role == auth.RoleNone {
		fmt.Fprintf(stdio.Stderr, "attestd admin-token create: role %q: want attester, reader or contributor\n", *roleName)
		return ExitUsage
	}
	// Refuse a name already in the file before making anything.
	if existing, err := os.ReadFile(*file); err == nil {
		toks, err := auth.ParseAdminTokens(strings.NewReader(string(existing)))
		if err != nil {
			fmt.Fprintf(stdio.Stderr, "attestd admin-token create: %s: %v\n", *file, err)
			return ExitError
		}
		if toks.Has(*name) {
			fmt.Fprintf(stdio.Stderr, "attestd admin-token create: %s already has a token named %q\n", *file, *name)
			return ExitError
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stdio.Stderr, "attestd admin-token create: %v\n", err)
		return ExitError
	}
	tok, err := auth.NewAdminToken(rand.Reader)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestd admin-token create: %v\n", err)
		return ExitError
	}
	line, err := auth.AdminTokenLine(*name, role, tok)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestd admin-token create: %v\n", err)
		return ExitUsage
	}
	f, err := os.OpenFile(*file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestd admin-token create: %v\n", err)
		return ExitError
	}
	_, werr := fmt.Fprintln(f, line)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		fmt.Fprintf(stdio.Stderr, "attestd admin-token create: writing %s: %v\n", *file, werr)
		return ExitError
	}
	fmt.Fprintln(stdio.Stdout, tok)
	fmt.Fprintf(stdio.Stderr, "token %q (%s) added to %s; it is shown only now. A running attestd reads the file at start.\n", *name, role, *file)
	return ExitOK
}

// runPolicyHistory implements `attestd policy history`: every stored
// version of a type's policy, read from the store directly.
func runPolicyHistory(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 || args[0] != "history" {
		fmt.Fprint(stdio.Stderr, "attestd policy: subcommand history\n\nUsage: attestd policy history --type sgx|openenclave|tdx [--text] [store flags]\n")
		return ExitUsage
	}
	cf := newConfigFlags("attestd policy history")
	typeName := cf.fs.String("type", "", "attestation `TYPE`: sgx, openenclave or tdx (or the MAA names)")
	withText := cf.fs.Bool("text", false, "include each version's policy text")
	cfg, code, ok := parse(cf, args[1:], stdio)
	if !ok {
		return code
	}
	t, known := service.ParseAttestationType(aliasType(*typeName))
	if !known {
		fmt.Fprintf(stdio.Stderr, "attestd policy history: --type %q: want sgx, openenclave or tdx\n", *typeName)
		return ExitUsage
	}
	// Reading history must not create a store where there is none (a
	// mistyped --data-dir).
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "attestd.db")); err != nil {
		fmt.Fprintf(stdio.Stderr, "attestd policy history: no store in %s: %v\n", cfg.DataDir, err)
		return ExitError
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestd policy history: %v\n", err)
		return ExitError
	}
	defer st.Close()
	h, err := st.PolicyHistory(ctx, store.DefaultTenant, string(t))
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "attestd policy history: %v\n", err)
		return ExitError
	}
	type row struct {
		Version   int       `json:"version"`
		Action    string    `json:"action"`
		Hash      string    `json:"policyHash"`
		ChangedBy string    `json:"changedBy"`
		Signed    bool      `json:"signed"`
		CreatedAt time.Time `json:"createdAt"`
		Text      string    `json:"text,omitempty"`
	}
	out := make([]row, 0, len(h))
	for _, p := range h {
		r := row{Version: p.Version, Action: "set", ChangedBy: p.ChangedBy, Signed: len(p.SignerCertificateDER) > 0, CreatedAt: p.CreatedAt}
		text := p.Text
		if text == "" {
			r.Action = "reset"
			text = service.DefaultPolicyText(t)
		}
		r.Hash = policy.Hash(text)
		if *withText {
			r.Text = text
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

// aliasType maps attestctl's short type names to MAA's.
func aliasType(s string) string {
	switch strings.ToLower(s) {
	case "sgx":
		return string(service.TypeSGX)
	case "openenclave", "oe":
		return string(service.TypeOpenEnclave)
	case "tdx":
		return string(service.TypeTDX)
	}
	return s
}
