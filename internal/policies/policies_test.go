package policies

import (
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/internal/store/sqlite"
	"github.com/attestd/attestd/internal/testpki"
	"github.com/attestd/attestd/token"
)

const (
	denyAll   = `version=1.0; authorizationrules{ =>deny(); }; issuancerules{ };`
	issueOne  = `version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type="SecurityLevelValue", value=100); };`
	permitAll = `version=1.0; authorizationrules{=> permit();}; issuancerules{};`
)

func openStore(t *testing.T) (store.Store, string) {
	t.Helper()
	sealer, err := store.NewAESGCMSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "attestd.db")
	st, err := sqlite.Open(context.Background(), path, sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func sgxClaims() []service.Claim {
	return []service.Claim{
		{Type: "x-ms-ver", Value: "1.0"}, {Type: "x-ms-attestation-type", Value: "sgx"}, {Type: "x-ms-sgx-is-debuggable", Value: false},
		{Type: "x-ms-sgx-mrenclave", Value: "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2"},
		{Type: "x-ms-sgx-mrsigner", Value: "2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa"},
		{Type: "x-ms-sgx-product-id", Value: 1}, {Type: "x-ms-sgx-svn", Value: 1},
	}
}

func unsigned(text string) string { return token.UnsecuredDocument(token.PolicyPayload(text)) }

func signed(t *testing.T, s *testpki.Signer, payload []byte) string {
	t.Helper()
	jws, err := token.SignJWS(s.Key, s.Chain, payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func reason(err error) string {
	var e *service.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func evaluate(t *testing.T, m *Manager, ty service.AttestationType) *service.PolicyDecision {
	t.Helper()
	d, err := m.Evaluate(context.Background(), ty, nil, sgxClaims())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAADModeLifecycle(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	m, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if m.TrustModel() != TrustAAD {
		t.Fatalf("trust model %s", m.TrustModel())
	}
	// The default, as MAA returns it: an unsigned document of the text.
	cur, err := m.Get(ctx, service.TypeSGX)
	if err != nil || !cur.Default || cur.Text != service.DefaultSGXPolicy || cur.Hash != "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw" {
		t.Fatalf("default: %+v, %v", cur, err)
	}
	if cur.JWS != unsigned(service.DefaultSGXPolicy) {
		t.Errorf("default JWS %q", cur.JWS)
	}
	if d := evaluate(t, m, service.TypeSGX); !d.Permit || len(d.Issued) != 6 {
		t.Fatalf("default decision %+v", d)
	}

	doc := unsigned(denyAll)
	res, err := m.Set(ctx, service.TypeSGX, doc, "token:alice")
	if err != nil {
		t.Fatal(err)
	}
	if res.Resolution != "Updated" || res.TokenHash != token.DocumentHash(doc) || res.Signer != nil || res.Version != 1 {
		t.Errorf("set result %+v", res)
	}
	if d := evaluate(t, m, service.TypeSGX); d.Permit {
		t.Error("deny-all policy permitted")
	}
	// Other types keep their defaults.
	if d := evaluate(t, m, service.TypeOpenEnclave); !d.Permit {
		t.Error("OpenEnclave lost its default")
	}
	cur, _ = m.Get(ctx, service.TypeSGX)
	if cur.Default || cur.JWS != doc || cur.Text != denyAll || cur.Version != 1 {
		t.Errorf("after set: %+v", cur)
	}

	// A bad policy is refused with its position, and changes nothing.
	_, err = m.Set(ctx, service.TypeSGX, unsigned("version=1.0; authorizationrules{=> permit()}; issuancerules{};"), "token:alice")
	var se *service.Error
	if !errors.As(err, &se) || se.Code != service.CodePolicyParsingError || !strings.Contains(se.Message, "line 1") {
		t.Errorf("bad policy: %v", err)
	}
	if cur2, _ := m.Get(ctx, service.TypeSGX); cur2.Version != 1 {
		t.Errorf("a refused policy changed the stored one: v%d", cur2.Version)
	}

	res, err = m.Reset(ctx, service.TypeSGX, token.UnsecuredDocument(nil), "token:bob")
	if err != nil || res.Resolution != "Removed" || res.TokenHash != "" {
		t.Fatalf("reset: %+v, %v", res, err)
	}
	if d := evaluate(t, m, service.TypeSGX); !d.Permit || d.Hash != "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw" {
		t.Error("reset did not restore the default")
	}
	h, err := m.History(ctx, service.TypeSGX)
	if err != nil || len(h) != 2 || h[0].ChangedBy != "token:alice" || h[1].ChangedBy != "token:bob" || h[1].Text != "" {
		t.Errorf("history %+v, %v", h, err)
	}
	// Certificates are an isolated-mode feature.
	if certs, err := m.Certificates(ctx); err != nil || len(certs) != 0 {
		t.Errorf("AAD certificates %v, %v", certs, err)
	}
	signer := testpki.SelfSigned(t, "someone", testpki.Options{EC: true})
	if _, err := m.AddCertificate(ctx, signed(t, signer, token.CertificatePayload(signer.Cert)), "token:alice"); reason(err) != "not_isolated" {
		t.Errorf("AAD add certificate: %v", err)
	}
}

func TestAADModeSignedPolicy(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	m, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	s := testpki.SelfSigned(t, "aad signer", testpki.Options{})
	doc := signed(t, s, token.PolicyPayload(issueOne))
	res, err := m.Set(ctx, service.TypeSGX, doc, "token:a")
	if err != nil {
		t.Fatal(err)
	}
	if res.Signer == nil || !res.Signer.Equal(s.Cert) {
		t.Error("the signer was not recorded")
	}
	d := evaluate(t, m, service.TypeSGX)
	if d.Signer == nil || !d.Signer.Equal(s.Cert) || len(d.Issued) != 1 || d.Issued[0].Type != "SecurityLevelValue" {
		t.Errorf("decision %+v", d)
	}
	// A signature that does not verify is refused even in AAD mode.
	parts := strings.Split(doc, ".")
	bad := parts[0] + "." + strings.Split(unsigned(denyAll), ".")[1] + "." + parts[2]
	if _, err := m.Set(ctx, service.TypeSGX, bad, "token:a"); reason(err) != "bad_document_signature" {
		t.Errorf("tampered signed policy: %v", err)
	}
}

func TestIsolatedMode(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	st, _ := openStore(t)
	if _, err := New(ctx, Config{Store: st, Isolated: true}); err == nil {
		t.Fatal("isolated mode without certificates was accepted")
	}
	root := testpki.SelfSigned(t, "policy signer", testpki.Options{})
	ca := testpki.SelfSigned(t, "policy CA", testpki.Options{CA: true, EC: true})
	m, err := New(ctx, Config{Store: st, Isolated: true, InitialCertificates: []*x509.Certificate{root.Cert, ca.Cert}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if m.TrustModel() != TrustIsolated {
		t.Fatal("not isolated")
	}

	if _, err := m.Set(ctx, service.TypeSGX, unsigned(denyAll), "token:a"); reason(err) != "unsigned_document" {
		t.Errorf("unsigned policy in isolated mode: %v", err)
	}
	if _, err := m.Reset(ctx, service.TypeSGX, token.UnsecuredDocument(nil), "token:a"); reason(err) != "unsigned_document" {
		t.Errorf("unsigned reset in isolated mode: %v", err)
	}
	stranger := testpki.SelfSigned(t, "stranger", testpki.Options{EC: true})
	if _, err := m.Set(ctx, service.TypeSGX, signed(t, stranger, token.PolicyPayload(denyAll)), "token:a"); reason(err) != "untrusted_signer" {
		t.Errorf("policy signed by an unregistered certificate: %v", err)
	}
	// A registered certificate signs directly...
	if _, err := m.Set(ctx, service.TypeSGX, signed(t, root, token.PolicyPayload(denyAll)), "token:a"); err != nil {
		t.Fatalf("policy signed by a registered certificate: %v", err)
	}
	// ...and a registered CA vouches for the certificates it issues.
	leaf := ca.Issue(t, "issued by the policy CA", testpki.Options{EC: true})
	if _, err := m.Set(ctx, service.TypeSGX, signed(t, leaf, token.PolicyPayload(permitAll)), "token:a"); err != nil {
		t.Fatalf("policy signed by a certificate a registered CA issued: %v", err)
	}
	// A non-CA registered certificate does not.
	fake := &testpki.Signer{Key: root.Key, Cert: root.Cert, Chain: root.Chain}
	notCA := fake.Issue(t, "issued by a non-CA", testpki.Options{})
	if _, err := m.Set(ctx, service.TypeSGX, signed(t, notCA, token.PolicyPayload(denyAll)), "token:a"); reason(err) != "untrusted_signer" {
		t.Errorf("certificate issued by a non-CA signer: %v", err)
	}
	// An expired signer is refused.
	old := testpki.SelfSigned(t, "expired", testpki.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	if _, err := m.Set(ctx, service.TypeSGX, signed(t, old, token.PolicyPayload(denyAll)), "token:a"); reason(err) != "signer_certificate_expired" {
		t.Errorf("expired signer: %v", err)
	}
	if _, err := m.Reset(ctx, service.TypeSGX, signed(t, root, nil), "token:a"); err != nil {
		t.Errorf("signed reset: %v", err)
	}

	// Certificates: add one signed by a registered signer, then remove.
	newcomer := testpki.SelfSigned(t, "newcomer", testpki.Options{EC: true})
	r, err := m.AddCertificate(ctx, signed(t, root, token.CertificatePayload(newcomer.Cert)), "token:a")
	if err != nil || !r.Present || !r.Changed || r.Thumbprint != token.Thumbprint(newcomer.Cert) {
		t.Fatalf("add: %+v, %v", r, err)
	}
	if r, err := m.AddCertificate(ctx, signed(t, root, token.CertificatePayload(newcomer.Cert)), "token:a"); err != nil || !r.Present || r.Changed {
		t.Errorf("adding again: %+v, %v", r, err)
	}
	// The newcomer can now sign.
	if _, err := m.Set(ctx, service.TypeSGX, signed(t, newcomer, token.PolicyPayload(permitAll)), "token:a"); err != nil {
		t.Errorf("policy signed by an added certificate: %v", err)
	}
	// A stranger cannot add itself.
	if _, err := m.AddCertificate(ctx, signed(t, stranger, token.CertificatePayload(stranger.Cert)), "token:a"); reason(err) != "untrusted_signer" {
		t.Errorf("self-added certificate: %v", err)
	}
	for _, c := range []*testpki.Signer{newcomer, ca} {
		if r, err := m.RemoveCertificate(ctx, signed(t, root, token.CertificatePayload(c.Cert)), "token:a"); err != nil || r.Present || !r.Changed {
			t.Fatalf("remove %s: %+v, %v", c.Cert.Subject, r, err)
		}
	}
	if _, err := m.Set(ctx, service.TypeSGX, signed(t, newcomer, token.PolicyPayload(permitAll)), "token:a"); reason(err) != "untrusted_signer" {
		t.Errorf("policy signed by a removed certificate: %v", err)
	}
	// The RSA-signed document that added the CA once cannot add it again.
	caAdd := signed(t, root, token.CertificatePayload(ca.Cert))
	if r, err := m.AddCertificate(ctx, caAdd, "token:a"); err != nil || !r.Changed {
		t.Fatalf("re-adding the CA with a new document: %+v, %v", r, err)
	}
	// (An EC signer: RS256 documents are deterministic, and root's remove
	// document for the CA was used above.)
	if _, err := m.RemoveCertificate(ctx, signed(t, leaf, token.CertificatePayload(ca.Cert)), "token:a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddCertificate(ctx, caAdd, "token:a"); reason(err) != "document_reused" {
		t.Errorf("replayed add document: %v", err)
	}
	if _, err := m.RemoveCertificate(ctx, signed(t, root, token.CertificatePayload(root.Cert)), "token:a"); reason(err) != "last_policy_certificate" {
		t.Errorf("removing the last certificate: %v", err)
	}
	if certs, _ := m.Certificates(ctx); len(certs) != 1 || !certs[0].Equal(root.Cert) {
		t.Errorf("certificates left: %d", len(certs))
	}
	// An expired certificate does not count as a remaining one.
	later := now.Add(-time.Hour)
	expiring := testpki.SelfSigned(t, "expiring", testpki.Options{EC: true, NotBefore: later.Add(-time.Hour), NotAfter: now.Add(time.Minute)})
	if _, err := m.AddCertificate(ctx, signed(t, root, token.CertificatePayload(expiring.Cert)), "token:a"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour) // expiring has expired; root is still valid
	if _, err := m.RemoveCertificate(ctx, signed(t, root, token.CertificatePayload(root.Cert)), "token:a"); reason(err) != "last_policy_certificate" {
		t.Errorf("removing the last valid certificate beside an expired one: %v", err)
	}
	now = now.Add(-time.Hour)

	// The trust model is for life: a restart without --isolated stays
	// isolated, and an AAD tenant cannot be made isolated.
	m2, err := New(ctx, Config{Store: st, Clock: clock})
	if err != nil || m2.TrustModel() != TrustIsolated {
		t.Errorf("reopened: %v, %v", m2, err)
	}
	st2, _ := openStore(t)
	if _, err := New(ctx, Config{Store: st2}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Config{Store: st2, Isolated: true, InitialCertificates: []*x509.Certificate{root.Cert}}); err == nil {
		t.Error("an AAD tenant was turned isolated")
	}
}

func TestReloadAndDrafts(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	a, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Set(ctx, service.TypeTDX, unsigned(denyAll), "token:a"); err != nil {
		t.Fatal(err)
	}
	if d, _ := b.Evaluate(ctx, service.TypeTDX, nil, nil); !d.Permit {
		t.Fatal("b saw a's change before reloading")
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := b.Evaluate(ctx, service.TypeTDX, nil, nil); d.Permit {
		t.Error("b did not pick up a's change on reload")
	}
	// A draft replaces the stored policy for one evaluation.
	draft := issueOne
	d, err := b.Evaluate(ctx, service.TypeTDX, &draft, nil)
	if err != nil || !d.Permit || !d.Draft || len(d.Issued) != 1 {
		t.Errorf("draft: %+v, %v", d, err)
	}
	bad := "version=9.9;"
	if _, err := b.Evaluate(ctx, service.TypeTDX, &bad, nil); reason(err) != "policy_invalid" {
		t.Errorf("bad draft: %v", err)
	}
}

func TestMalformedDocuments(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	m, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, doc, reason string }{
		{"not a JWS", "hello", "malformed_jws"},
		{"empty payload on set", token.UnsecuredDocument(nil), "empty_policy"},
		{"payload not a policy document", token.UnsecuredDocument([]byte(`{"x":1}`)), "malformed_policy_document"},
		{"payload not JSON", token.UnsecuredDocument([]byte(`x`)), "malformed_policy_document"},
	} {
		if _, err := m.Set(ctx, service.TypeSGX, tc.doc, "token:a"); reason(err) != tc.reason {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.reason)
		}
	}
	if _, err := m.Reset(ctx, service.TypeSGX, unsigned(denyAll), "token:a"); reason(err) != "malformed_reset_document" {
		t.Errorf("reset with a payload: %v", err)
	}
	if h, _ := m.History(ctx, service.TypeSGX); len(h) != 0 {
		t.Errorf("refused documents were stored: %d versions", len(h))
	}
}
