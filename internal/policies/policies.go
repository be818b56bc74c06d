// Package policies keeps each tenant's attestation policies and
// policy-management certificates: it compiles a policy once when it is
// stored (or loaded), serves the compiled policy to the attestation path,
// and carries out MAA's management operations: get, set and reset a policy,
// list, add and remove policy-management certificates, under the tenant's
// trust model (AAD or isolated).
package policies

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/token"
)

// TrustModel is how a tenant's policy changes are authorised (maa-compat.md
// §1.7).
type TrustModel string

const (
	// TrustAAD: an authenticated contributor may set a policy, signed or
	// not.
	TrustAAD TrustModel = "aad"
	// TrustIsolated: every policy and certificate change must also be a
	// JWS signed by a registered policy-management certificate (or by a
	// certificate one of them issued).
	TrustIsolated TrustModel = "isolated"
)

// trustModelSetting is the settings key of a tenant's trust model.
func trustModelSetting(tenant string) string { return "trust-model/" + tenant }

// ServiceName is ChangedBy for changes attestd makes itself.
const ServiceName = "attestd"

// Config configures a Manager.
type Config struct {
	Store  store.Store
	Tenant string
	// Isolated asks for isolated mode. It takes effect only when the
	// tenant is created (first start): the trust model is fixed for life,
	// as in MAA.
	Isolated bool
	// InitialCertificates are the policy-management certificates of a new
	// isolated tenant; at least one is required. Ignored afterwards.
	InitialCertificates []*x509.Certificate
	Clock               func() time.Time
	Logger              *slog.Logger
}

// Manager is the policy store's front. It is safe for concurrent use.
type Manager struct {
	store    store.Store
	tenant   string
	model    TrustModel
	clock    func() time.Time
	log      *slog.Logger
	defaults map[service.AttestationType]*policy.Policy

	mu      sync.RWMutex
	current map[service.AttestationType]*entry
	// writeMu serialises this process's changes so that the cache always
	// ends on the newest version.
	writeMu sync.Mutex
	// changeMu is held from checking a document's signer to applying it,
	// so that a signer removed meanwhile cannot still land a change, and
	// two removals cannot each leave the other's signer as the last one.
	changeMu sync.Mutex
}

// entry is the policy in force for one attestation type.
type entry struct {
	stored   store.Policy // Version 0 when nothing was ever stored
	compiled *policy.Policy
	signer   *x509.Certificate
	// broken is set when a stored policy no longer compiles (written by a
	// newer attestd, say): attestations of the type fail rather than fall
	// back to a more permissive default.
	broken error
}

// New opens the tenant's policies, creating the tenant's trust model on
// first start.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("policies: no store")
	}
	if cfg.Tenant == "" {
		cfg.Tenant = store.DefaultTenant
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{store: cfg.Store, tenant: cfg.Tenant, clock: cfg.Clock, log: cfg.Logger,
		defaults: map[service.AttestationType]*policy.Policy{}, current: map[service.AttestationType]*entry{}}
	for _, t := range service.AttestationTypes() {
		p, err := service.CompileDefaultPolicy(t)
		if err != nil {
			return nil, err
		}
		m.defaults[t] = p
	}
	model, err := m.initTrustModel(ctx, cfg)
	if err != nil {
		return nil, err
	}
	m.model = model
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) initTrustModel(ctx context.Context, cfg Config) (TrustModel, error) {
	v, err := m.store.Setting(ctx, trustModelSetting(m.tenant))
	switch {
	case err == nil:
		model := TrustModel(v)
		switch {
		case model != TrustAAD && model != TrustIsolated:
			return "", fmt.Errorf("policies: tenant %q has unknown trust model %q", m.tenant, v)
		case model == TrustAAD && cfg.Isolated:
			return "", fmt.Errorf("policies: tenant %q was created in AAD mode; isolated mode can only be chosen when a tenant is created (start with a new data directory, or keep AAD mode)", m.tenant)
		case model == TrustIsolated && len(cfg.InitialCertificates) > 0:
			m.log.Warn("policy signer certificates from the configuration are ignored: they are read only when the tenant is created; use `attestctl signer add`", "tenant", m.tenant)
		}
		return model, nil
	case !errors.Is(err, store.ErrNotFound):
		return "", fmt.Errorf("policies: reading trust model: %w", err)
	}
	if !cfg.Isolated {
		if len(cfg.InitialCertificates) > 0 {
			return "", errors.New("policies: policy signer certificates were given without isolated mode")
		}
		if err := m.store.PutSetting(ctx, trustModelSetting(m.tenant), string(TrustAAD)); err != nil {
			return "", fmt.Errorf("policies: storing trust model: %w", err)
		}
		return TrustAAD, nil
	}
	if len(cfg.InitialCertificates) == 0 {
		return "", errors.New("policies: isolated mode needs at least one policy signer certificate at first start")
	}
	now := m.clock()
	for _, c := range cfg.InitialCertificates {
		if err := checkCertificateUsable(c, now); err != nil {
			return "", fmt.Errorf("policies: policy signer certificate %s: %w", describe(c), err)
		}
		// Certificates first, the trust model last: a start that dies in
		// between leaves no trust model, so the next start does it again
		// (adding is idempotent).
		if _, err := m.store.AddPolicyCertificate(ctx, store.PolicyCertificate{
			Tenant: m.tenant, ID: token.CertificateID(c), CertificateDER: c.Raw, AddedAt: now, AddedBy: ServiceName,
		}); err != nil {
			return "", fmt.Errorf("policies: storing policy signer certificate: %w", err)
		}
	}
	if err := m.store.PutSetting(ctx, trustModelSetting(m.tenant), string(TrustIsolated)); err != nil {
		return "", fmt.Errorf("policies: storing trust model: %w", err)
	}
	m.log.Info("tenant created in isolated mode", "tenant", m.tenant, "certificates", len(cfg.InitialCertificates))
	return TrustIsolated, nil
}

// TrustModel returns the tenant's trust model.
func (m *Manager) TrustModel() TrustModel { return m.model }

// Reload reads every type's newest policy from the store and recompiles
// the ones that changed: a change made by another replica sharing the
// store, or by an older process on the same file, is picked up.
func (m *Manager) Reload(ctx context.Context) error {
	for _, t := range service.AttestationTypes() {
		p, err := m.store.Policy(ctx, m.tenant, string(t))
		if errors.Is(err, store.ErrNotFound) {
			p = store.Policy{}
		} else if err != nil {
			return fmt.Errorf("policies: loading %s policy: %w", t, err)
		}
		m.mu.RLock()
		cur := m.current[t]
		m.mu.RUnlock()
		if cur != nil && cur.stored.Version == p.Version {
			continue
		}
		e := m.compileStored(t, p)
		m.mu.Lock()
		if old := m.current[t]; old == nil || old.stored.Version <= p.Version {
			m.current[t] = e
		}
		m.mu.Unlock()
	}
	return nil
}

// compileStored builds the entry of a stored version (Version 0 or empty
// text: the built-in default).
func (m *Manager) compileStored(t service.AttestationType, p store.Policy) *entry {
	e := &entry{stored: p}
	if p.Version == 0 || p.Text == "" {
		e.compiled = m.defaults[t]
		return e
	}
	compiled, err := policy.Compile(p.Text)
	if err != nil {
		m.log.Error("stored policy does not compile; attestations of this type are refused until it is replaced",
			"type", t, "version", p.Version, "err", err)
		e.broken = err
		return e
	}
	e.compiled = compiled
	if len(p.SignerCertificateDER) > 0 {
		if c, err := x509.ParseCertificate(p.SignerCertificateDER); err == nil {
			e.signer = c
		}
	}
	return e
}

func (m *Manager) entry(t service.AttestationType) (*entry, error) {
	m.mu.RLock()
	e := m.current[t]
	m.mu.RUnlock()
	if e == nil {
		return nil, fmt.Errorf("policies: no policy for attestation type %q", t)
	}
	return e, nil
}

// Evaluate implements service.PolicyEvaluator: the draft if there is one,
// else the stored policy, else the built-in default.
func (m *Manager) Evaluate(ctx context.Context, t service.AttestationType, draft *string, incoming []service.Claim) (*service.PolicyDecision, error) {
	if draft != nil {
		return service.EvaluateDraft(ctx, *draft, incoming)
	}
	e, err := m.entry(t)
	if err != nil {
		return nil, err
	}
	if e.broken != nil {
		return nil, &service.Error{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Reason: "policy_unusable",
			Message: fmt.Sprintf("the stored %s policy (version %d) cannot be compiled by this attestd; replace or reset it", t, e.stored.Version),
			Err:     e.broken}
	}
	return service.Decide(ctx, e.compiled, incoming, e.signer)
}

// Current is the policy in force for a type.
type Current struct {
	Text string
	// JWS is the document the policy arrived in, or for a default an
	// unsigned document made for it, as MAA returns its defaults.
	JWS     string
	Signer  *x509.Certificate
	Version int // 0 for a built-in default never changed
	Default bool
	Hash    string
}

// Get returns the policy in force for t.
func (m *Manager) Get(_ context.Context, t service.AttestationType) (*Current, error) {
	e, err := m.entry(t)
	if err != nil {
		return nil, err
	}
	if e.stored.Version == 0 || e.stored.Text == "" {
		text := service.DefaultPolicyText(t)
		return &Current{Text: text, JWS: token.UnsecuredDocument(token.PolicyPayload(text)), Version: e.stored.Version,
			Default: true, Hash: policy.Hash(text)}, nil
	}
	return &Current{Text: e.stored.Text, JWS: e.stored.JWS, Signer: e.signer, Version: e.stored.Version,
		Hash: policy.Hash(e.stored.Text)}, nil
}

// History returns every stored version of t's policy, oldest first.
func (m *Manager) History(ctx context.Context, t service.AttestationType) ([]store.Policy, error) {
	h, err := m.store.PolicyHistory(ctx, m.tenant, string(t))
	if err != nil {
		return nil, fmt.Errorf("policies: history: %w", err)
	}
	return h, nil
}

// ChangeResult is the outcome of a set or reset.
type ChangeResult struct {
	// Resolution is MAA's x-ms-policy-result: "Updated" or "Removed".
	Resolution string
	// TokenHash is x-ms-policy-token-hash of the document sent.
	TokenHash string
	Signer    *x509.Certificate
	Version   int
}

// Set stores a new policy for t from a policy JWS (maa-compat.md §2).
// who names the authenticated caller, for the history.
func (m *Manager) Set(ctx context.Context, t service.AttestationType, document, who string) (*ChangeResult, error) {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	doc, signer, err := m.authenticDocument(ctx, document, "policy")
	if err != nil {
		return nil, err
	}
	if len(doc.Payload) == 0 {
		return nil, invalidOperation("empty_policy", "the policy document has an empty payload; to return to the default policy use :reset")
	}
	text, err := token.PolicyFromPayload(doc.Payload)
	if err != nil {
		return nil, invalidOperation("malformed_policy_document", "%v", err)
	}
	if _, err := policy.Compile(text); err != nil {
		return nil, service.PolicyCompileError("policy", err)
	}
	p := store.Policy{Tenant: m.tenant, AttestationType: string(t), Text: text, JWS: document, ChangedBy: who}
	if signer != nil {
		p.SignerCertificateDER = signer.Raw
	}
	stored, err := m.put(ctx, t, p)
	if err != nil {
		return nil, err
	}
	m.log.Info("policy updated", "type", t, "version", stored.Version, "by", who, "signer", describe(signer), "hash", policy.Hash(text))
	return &ChangeResult{Resolution: "Updated", TokenHash: token.DocumentHash(document), Signer: signer, Version: stored.Version}, nil
}

// Reset returns t to the built-in default. document is a JWS with an empty
// payload, signed in isolated mode.
func (m *Manager) Reset(ctx context.Context, t service.AttestationType, document, who string) (*ChangeResult, error) {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	doc, signer, err := m.authenticDocument(ctx, document, "reset")
	if err != nil {
		return nil, err
	}
	if len(doc.Payload) != 0 {
		return nil, invalidOperation("malformed_reset_document", "a reset document must have an empty payload")
	}
	p := store.Policy{Tenant: m.tenant, AttestationType: string(t), JWS: document, ChangedBy: who}
	if signer != nil {
		p.SignerCertificateDER = signer.Raw
	}
	stored, err := m.put(ctx, t, p)
	if err != nil {
		return nil, err
	}
	m.log.Info("policy reset to the default", "type", t, "version", stored.Version, "by", who, "signer", describe(signer))
	return &ChangeResult{Resolution: "Removed", Signer: signer, Version: stored.Version}, nil
}

func (m *Manager) put(ctx context.Context, t service.AttestationType, p store.Policy) (store.Policy, error) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	p.CreatedAt = m.clock()
	stored, err := m.store.PutPolicy(ctx, p)
	if err != nil {
		return store.Policy{}, fmt.Errorf("policies: storing %s policy: %w", t, err)
	}
	e := m.compileStored(t, stored)
	m.mu.Lock()
	if old := m.current[t]; old == nil || old.stored.Version < stored.Version {
		m.current[t] = e
	}
	m.mu.Unlock()
	return stored, nil
}

// Certificates returns the tenant's policy-management certificates, oldest
// first; none in AAD mode.
func (m *Manager) Certificates(ctx context.Context) ([]*x509.Certificate, error) {
	stored, err := m.store.PolicyCertificates(ctx, m.tenant)
	if err != nil {
		return nil, fmt.Errorf("policies: certificates: %w", err)
	}
	out := make([]*x509.Certificate, 0, len(stored))
	for _, s := range stored {
		c, err := x509.ParseCertificate(s.CertificateDER)
		if err != nil {
			return nil, fmt.Errorf("policies: stored certificate %s: %w", s.ID, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// CertificateResult is the outcome of a certificate add or remove.
type CertificateResult struct {
	// Thumbprint is MAA's x-ms-certificate-thumbprint.
	Thumbprint string
	// Present is whether the certificate is registered afterwards
	// (x-ms-policycertificates-result IsPresent / IsAbsent).
	Present bool
	Changed bool
}

// AddCertificate registers the certificate named by a signed document.
func (m *Manager) AddCertificate(ctx context.Context, document, who string) (*CertificateResult, error) {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	cert, signer, err := m.certificateDocument(ctx, document)
	if err != nil {
		return nil, err
	}
	if err := checkCertificateUsable(cert, m.clock()); err != nil {
		return nil, invalidParameter("invalid_policy_certificate", "the certificate to add (%s) %v", describe(cert), err)
	}
	registered, err := m.Certificates(ctx)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(registered, cert.Equal) {
		return &CertificateResult{Thumbprint: token.Thumbprint(cert), Present: true}, nil
	}
	if err := m.useOnce(ctx, "add", document); err != nil {
		return nil, err
	}
	added, err := m.store.AddPolicyCertificate(ctx, store.PolicyCertificate{
		Tenant: m.tenant, ID: token.CertificateID(cert), CertificateDER: cert.Raw, AddedAt: m.clock(), AddedBy: who,
	})
	if err != nil {
		return nil, fmt.Errorf("policies: adding certificate: %w", err)
	}
	m.log.Info("policy-management certificate added", "certificate", describe(cert), "changed", added, "by", who, "signer", describe(signer))
	return &CertificateResult{Thumbprint: token.Thumbprint(cert), Present: true, Changed: added}, nil
}

// RemoveCertificate unregisters the certificate named by a signed
// document. At least one certificate valid now must remain: an isolated
// tenant without one could never change anything again.
func (m *Manager) RemoveCertificate(ctx context.Context, document, who string) (*CertificateResult, error) {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	cert, signer, err := m.certificateDocument(ctx, document)
	if err != nil {
		return nil, err
	}
	registered, err := m.Certificates(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(registered, cert.Equal) {
		return &CertificateResult{Thumbprint: token.Thumbprint(cert), Present: false}, nil
	}
	now := m.clock()
	usableLeft := 0
	for _, r := range registered {
		if !r.Equal(cert) && checkCertificateUsable(r, now) == nil {
			usableLeft++
		}
	}
	if usableLeft == 0 {
		return nil, invalidOperation("last_policy_certificate", "removing %s would leave no policy-management certificate valid now, and the tenant could never change its policies again; add its successor first", describe(cert))
	}
	if err := m.useOnce(ctx, "remove", document); err != nil {
		return nil, err
	}
	removed, err := m.store.RemovePolicyCertificate(ctx, m.tenant, token.CertificateID(cert))
	if errors.Is(err, store.ErrLastCertificate) {
		return nil, invalidOperation("last_policy_certificate", "%s is the last policy-management certificate and cannot be removed; add its successor first", describe(cert))
	}
	if err != nil {
		return nil, fmt.Errorf("policies: removing certificate: %w", err)
	}
	m.log.Info("policy-management certificate removed", "certificate", describe(cert), "changed", removed, "by", who, "signer", describe(signer))
	return &CertificateResult{Thumbprint: token.Thumbprint(cert), Present: false, Changed: removed}, nil
}

// useOnce records a certificate document as acted on for op, refusing
// one that was: replaying the document that once added a certificate
// would bring it back after its removal. A replay that changes nothing
// (adding a present certificate) is answered without getting here.
//
// The record is per operation because MAA's add and remove documents are
// the same JSON, and RS256 signatures are deterministic: the SDKs send
// byte-identical documents to add and then remove a certificate.
func (m *Manager) useOnce(ctx context.Context, op, document string) error {
	sum := sha256.Sum256([]byte(document))
	fresh, err := m.store.UseDocument(ctx, m.tenant, op+":"+hex.EncodeToString(sum[:]), m.clock())
	if err != nil {
		return fmt.Errorf("policies: recording the document: %w", err)
	}
	if !fresh {
		return invalidOperation("document_reused", "this signed document was already acted on; a certificate change needs a newly signed document")
	}
	return nil
}

func (m *Manager) certificateDocument(ctx context.Context, document string) (*x509.Certificate, *x509.Certificate, error) {
	if m.model != TrustIsolated {
		return nil, nil, invalidOperation("not_isolated", "policy-management certificates exist only for a tenant in isolated mode; this one is in AAD mode")
	}
	doc, signer, err := m.authenticDocument(ctx, document, "certificate")
	if err != nil {
		return nil, nil, err
	}
	cert, err := token.CertificateFromPayload(doc.Payload)
	if err != nil {
		return nil, nil, invalidOperation("malformed_certificate_document", "%v", err)
	}
	return cert, signer, nil
}

// authenticDocument parses a management JWS and checks its signature as
// the trust model requires. It returns the signer's certificate, or nil
// for an unsigned document (accepted only in AAD mode, and never for a
// certificate operation).
func (m *Manager) authenticDocument(ctx context.Context, document, what string) (*token.JWS, *x509.Certificate, error) {
	doc, err := token.ParseJWS(document)
	if err != nil {
		return nil, nil, invalidOperation("malformed_jws", "the %s document is not a valid JWS: %v", what, err)
	}
	if doc.Unsecured() {
		if m.model == TrustIsolated || what == "certificate" {
			return nil, nil, invalidOperation("unsigned_document", "the %s document must be signed (isolated mode): send a JWS with an x5c header, signed by a policy-management certificate", what)
		}
		return doc, nil, nil
	}
	if err := doc.VerifySignature(); err != nil {
		return nil, nil, invalidParameter("bad_document_signature", "the %s document's signature: %v", what, err)
	}
	leaf := doc.Chain[0]
	now := m.clock()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, nil, invalidParameter("signer_certificate_expired", "the signing certificate %s is valid from %s to %s, not now",
			describe(leaf), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if m.model == TrustAAD {
		// In AAD mode the bearer token authorises the change; a signature
		// is recorded (x-ms-policy-signer) but vouches for nothing.
		return doc, leaf, nil
	}
	if err := m.trusted(ctx, doc.Chain, now); err != nil {
		return nil, nil, err
	}
	return doc, leaf, nil
}

// trusted checks that chain's leaf is a registered policy-management
// certificate, or chains through the x5c intermediates to one that is a
// CA.
func (m *Manager) trusted(ctx context.Context, chain []*x509.Certificate, now time.Time) error {
	registered, err := m.Certificates(ctx)
	if err != nil {
		return err
	}
	leaf := chain[0]
	roots := x509.NewCertPool()
	for _, r := range registered {
		if r.Equal(leaf) {
			return nil
		}
		if r.IsCA && r.BasicConstraintsValid {
			roots.AddCert(r)
		}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return invalidParameter("untrusted_signer", "the signing certificate %s is not a registered policy-management certificate and does not chain to one (%v)", describe(leaf), err)
	}
	return nil
}

// checkCertificateUsable refuses a certificate that could not sign
// anything now: outside its validity window, or with a key too weak.
func checkCertificateUsable(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("is valid from %s to %s, not now", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("has a %d-bit RSA key; at least 2048 bits are required", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("has an EC key on %s; P-256 or P-384 is required", k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("has a %T key; RSA or EC keys are required", k)
	}
	return nil
}

func describe(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%q (thumbprint %s)", c.Subject.String(), token.Thumbprint(c))
}

func invalidOperation(reason, format string, args ...any) *service.Error {
	return &service.Error{Status: http.StatusBadRequest, Code: service.CodeInvalidOperation, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func invalidParameter(reason, format string, args ...any) *service.Error {
	return &service.Error{Status: http.StatusBadRequest, Code: service.CodeInvalidParameter, Reason: reason, Message: fmt.Sprintf(format, args...)}
}
