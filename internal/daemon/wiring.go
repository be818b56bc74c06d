package daemon

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/attestd/attestd/internal/auth"
	"github.com/attestd/attestd/internal/policies"
	"github.com/attestd/attestd/internal/store"
)

// openPolicies opens the default tenant's policies, creating its trust
// model on first start.
func openPolicies(ctx context.Context, cfg Config, st store.Store, clock func() time.Time, log *slog.Logger) (*policies.Manager, error) {
	var certs []*x509.Certificate
	for _, path := range cfg.PolicySignerCerts {
		cs, err := readCertificates(path)
		if err != nil {
			return nil, fmt.Errorf("policy signer certificate: %w", err)
		}
		// The first certificate of each file only: a full-chain PEM would
		// otherwise register its intermediate and root CAs as trust
		// anchors, and every certificate they ever issued could sign.
		if len(cs) > 1 {
			log.Warn("policy signer file holds several certificates; only the first is registered", "file", path, "ignored", len(cs)-1)
		}
		c := cs[0]
		log.Info("policy signer certificate", "file", path, "subject", c.Subject.String(), "ca", c.IsCA && c.BasicConstraintsValid,
			"not_after", c.NotAfter)
		certs = append(certs, c)
	}
	return policies.New(ctx, policies.Config{Store: st, Tenant: store.DefaultTenant, Isolated: cfg.Isolated,
		InitialCertificates: certs, Clock: clock, Logger: log})
}

// readCertificates reads every CERTIFICATE block of a PEM file.
func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return out, nil
}

// newAuthenticator builds the management API's authenticator, or nil when
// no credential source is configured.
func newAuthenticator(cfg Config, clock func() time.Time, log *slog.Logger) (*auth.Authenticator, error) {
	ac := auth.Config{Clock: clock, Logger: log}
	if cfg.AdminTokenFile != "" {
		toks, err := auth.LoadAdminTokens(cfg.AdminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin tokens: %w", err)
		}
		ac.AdminTokens = toks
		log.Info("admin tokens loaded", "file", cfg.AdminTokenFile, "tokens", toks.Len())
	}
	if cfg.OIDCIssuer != "" {
		roles := map[string]auth.Role{}
		for _, r := range cfg.OIDCAttesterRoles {
			roles[r] = auth.RoleAttester
		}
		for _, r := range cfg.OIDCReaderRoles {
			roles[r] = auth.RoleReader
		}
		for _, r := range cfg.OIDCContributorRoles {
			roles[r] = auth.RoleContributor
		}
		ac.OIDC = &auth.OIDCConfig{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, RoleClaim: cfg.OIDCRoleClaim, RoleMap: roles,
			DiscoveryURL: cfg.OIDCDiscoveryURL}
		log.Info("OIDC bearer tokens accepted", "issuer", cfg.OIDCIssuer, "audience", cfg.OIDCAudience)
	}
	if ac.AdminTokens == nil && ac.OIDC == nil {
		return nil, nil
	}
	return auth.New(ac)
}
