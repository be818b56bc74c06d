// Package storetest is the conformance suite every store.Store backend
// passes. A backend's tests call Run with a function that opens a fresh,
// empty store; the suite knows nothing about how data is kept, so the
// embedded SQLite store and a PostgreSQL store are held to one contract.
//
// Beyond what the interface comments say, the suite pins down:
//   - times read back Equal to what was stored, to the nanosecond;
//   - signing key KIDs are unique per tenant, not globally;
//   - SigningKeys and PolicyHistory return an empty list, not ErrNotFound,
//     when there is nothing to return;
//   - PutPolicy ignores the caller's Version and keeps a given CreatedAt;
//   - a nil and an empty byte slice are the same (no certificate);
//   - a cancelled context makes every method fail with an error wrapping
//     context.Canceled.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/store"
)

// Run runs the suite. open must return a new, empty store, and close it
// when the test ends (t.Cleanup). The subtests run in parallel, each with
// its own store, so open is called concurrently.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"SigningKeysEmpty", testSigningKeysEmpty},
		{"SigningKeyRoundTrip", testSigningKeyRoundTrip},
		{"SigningKeyOrder", testSigningKeyOrder},
		{"SigningKeyConflict", testSigningKeyConflict},
		{"SigningKeyTenants", testSigningKeyTenants},
		{"RetireSigningKey", testRetireSigningKey},
		{"DeleteSigningKey", testDeleteSigningKey},
		{"SecretRoundTrip", testSecretRoundTrip},
		{"PolicyNotFound", testPolicyNotFound},
		{"PolicyVersions", testPolicyVersions},
		{"PolicyFields", testPolicyFields},
		{"PolicyScopes", testPolicyScopes},
		{"PolicyConcurrentPut", testPolicyConcurrentPut},
		{"PolicyChangedBy", testPolicyChangedBy},
		{"PolicyCertificates", testPolicyCertificates},
		{"PolicyCertificateLast", testPolicyCertificateLast},
		{"PolicyCertificateConcurrentRemove", testPolicyCertificateConcurrentRemove},
		{"UseDocument", testUseDocument},
		{"Settings", testSettings},
		{"Ping", testPing},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// t0 returns the suite's base time. It has nanoseconds and a non-UTC zone,
// to catch stores that round times or compare them with ==.
func t0() time.Time {
	return time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+1", 3600))
}

func newKey(tenant, kid string, created time.Time) store.SigningKey {
	return store.SigningKey{
		Tenant:          tenant,
		KID:             kid,
		Algorithm:       "RS256",
		PrivateKeyPKCS8: []byte("private key of " + tenant + "/" + kid),
		CertificateDER:  []byte("certificate of " + tenant + "/" + kid),
		CreatedAt:       created,
	}
}

func checkKey(t *testing.T, got, want store.SigningKey) {
	t.Helper()
	if got.Tenant != want.Tenant || got.KID != want.KID || got.Algorithm != want.Algorithm {
		t.Errorf("key identity: got %q/%q/%q, want %q/%q/%q", got.Tenant, got.KID, got.Algorithm, want.Tenant, want.KID, want.Algorithm)
	}
	if !bytes.Equal(got.PrivateKeyPKCS8, want.PrivateKeyPKCS8) {
		t.Errorf("key %q: private key differs after the round trip", want.KID)
	}
	if !bytes.Equal(got.CertificateDER, want.CertificateDER) {
		t.Errorf("key %q: certificate differs after the round trip", want.KID)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("key %q: CreatedAt = %v, want %v", want.KID, got.CreatedAt, want.CreatedAt)
	}
	if !got.RetiredAt.Equal(want.RetiredAt) {
		t.Errorf("key %q: RetiredAt = %v, want %v", want.KID, got.RetiredAt, want.RetiredAt)
	}
}

func kids(keys []store.SigningKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

func mustKeys(t *testing.T, s store.Store, tenant string) []store.SigningKey {
	t.Helper()
	keys, err := s.SigningKeys(t.Context(), tenant)
	if err != nil {
		t.Fatalf("SigningKeys(%q): %v", tenant, err)
	}
	return keys
}

func mustAdd(t *testing.T, s store.Store, k store.SigningKey) {
	t.Helper()
	if err := s.AddSigningKey(t.Context(), k); err != nil {
		t.Fatalf("AddSigningKey(%q/%q): %v", k.Tenant, k.KID, err)
	}
}

func testSigningKeysEmpty(t *testing.T, s store.Store) {
	if keys := mustKeys(t, s, store.DefaultTenant); len(keys) != 0 {
		t.Fatalf("new store has keys %v", kids(keys))
	}
}

func testSigningKeyRoundTrip(t *testing.T, s store.Store) {
	want := newKey(store.DefaultTenant, "k1", t0())
	mustAdd(t, s, want)
	keys := mustKeys(t, s, store.DefaultTenant)
	if len(keys) != 1 {
		t.Fatalf("got keys %v, want [k1]", kids(keys))
	}
	checkKey(t, keys[0], want)

	// A key may arrive already retired (an import) and without a
	// certificate.
	retired := newKey(store.DefaultTenant, "k2", t0().Add(time.Second))
	retired.RetiredAt = t0().Add(time.Hour + time.Nanosecond)
	retired.CertificateDER = nil
	mustAdd(t, s, retired)
	keys = mustKeys(t, s, store.DefaultTenant)
	if len(keys) != 2 {
		t.Fatalf("got keys %v, want [k1 k2]", kids(keys))
	}
	checkKey(t, keys[1], retired)
}

func testSigningKeyOrder(t *testing.T, s store.Store) {
	// Added out of order: the list is by CreatedAt, oldest first.
	for _, k := range []struct {
		kid string
		at  time.Duration
	}{{"c", 2 * time.Hour}, {"a", 0}, {"d", 3 * time.Hour}, {"b", time.Hour}} {
		mustAdd(t, s, newKey(store.DefaultTenant, k.kid, t0().Add(k.at)))
	}
	got := kids(mustKeys(t, s, store.DefaultTenant))
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("order: got %v, want %v", got, want)
	}
}

func testSigningKeyConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	orig := newKey(store.DefaultTenant, "k1", t0())
	mustAdd(t, s, orig)
	dup := newKey(store.DefaultTenant, "k1", t0().Add(time.Minute))
	dup.PrivateKeyPKCS8 = []byte("another private key")
	err := s.AddSigningKey(ctx, dup)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("adding a duplicate KID: got %v, want ErrConflict", err)
	}
	keys := mustKeys(t, s, store.DefaultTenant)
	if len(keys) != 1 {
		t.Fatalf("after the conflict: keys %v", kids(keys))
	}
	checkKey(t, keys[0], orig) // the original is untouched
}

func testSigningKeyTenants(t *testing.T, s store.Store) {
	a := newKey("tenant-a", "k1", t0())
	b := newKey("tenant-b", "k1", t0().Add(time.Second)) // same KID, other tenant
	mustAdd(t, s, a)
	mustAdd(t, s, b)
	if keys := mustKeys(t, s, "tenant-a"); len(keys) != 1 {
		t.Errorf("tenant-a: keys %v", kids(keys))
	} else {
		checkKey(t, keys[0], a)
	}
	if keys := mustKeys(t, s, "tenant-b"); len(keys) != 1 {
		t.Errorf("tenant-b: keys %v", kids(keys))
	} else {
		checkKey(t, keys[0], b)
	}
	if keys := mustKeys(t, s, "tenant-c"); len(keys) != 0 {
		t.Errorf("tenant-c: keys %v", kids(keys))
	}
	// Retiring or deleting in one tenant leaves the other alone.
	ctx := t.Context()
	if err := s.RetireSigningKey(ctx, "tenant-a", "k1", t0().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSigningKey(ctx, "tenant-a", "k1"); err != nil {
		t.Fatal(err)
	}
	if keys := mustKeys(t, s, "tenant-b"); len(keys) != 1 {
		t.Errorf("tenant-b after changes to tenant-a: keys %v", kids(keys))
	} else {
		checkKey(t, keys[0], b)
	}
}

func testRetireSigningKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	k1 := newKey(store.DefaultTenant, "k1", t0())
	k2 := newKey(store.DefaultTenant, "k2", t0().Add(time.Second))
	mustAdd(t, s, k1)
	mustAdd(t, s, k2)
	k1.RetiredAt = t0().Add(90*time.Minute + 7*time.Nanosecond)
	if err := s.RetireSigningKey(ctx, store.DefaultTenant, "k1", k1.RetiredAt); err != nil {
		t.Fatalf("RetireSigningKey: %v", err)
	}
	keys := mustKeys(t, s, store.DefaultTenant)
	if len(keys) != 2 {
		t.Fatalf("keys %v", kids(keys))
	}
	checkKey(t, keys[0], k1)
	checkKey(t, keys[1], k2) // still active

	// Retiring again moves the time.
	k1.RetiredAt = k1.RetiredAt.Add(time.Minute)
	if err := s.RetireSigningKey(ctx, store.DefaultTenant, "k1", k1.RetiredAt); err != nil {
		t.Fatalf("RetireSigningKey again: %v", err)
	}
	checkKey(t, mustKeys(t, s, store.DefaultTenant)[0], k1)

	for _, c := range []struct{ tenant, kid string }{
		{store.DefaultTenant, "missing"},
		{"other-tenant", "k1"},
	} {
		if err := s.RetireSigningKey(ctx, c.tenant, c.kid, t0()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RetireSigningKey(%q, %q): got %v, want ErrNotFound", c.tenant, c.kid, err)
		}
	}
}

func testDeleteSigningKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, kid := range []string{"k1", "k2", "k3"} {
		mustAdd(t, s, newKey(store.DefaultTenant, kid, t0().Add(time.Duration(i)*time.Second)))
	}
	if err := s.DeleteSigningKey(ctx, store.DefaultTenant, "k2"); err != nil {
		t.Fatalf("DeleteSigningKey: %v", err)
	}
	if got, want := kids(mustKeys(t, s, store.DefaultTenant)), []string{"k1", "k3"}; !slices.Equal(got, want) {
		t.Fatalf("after delete: %v, want %v", got, want)
	}
	if err := s.DeleteSigningKey(ctx, store.DefaultTenant, "k2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting twice: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteSigningKey(ctx, "other-tenant", "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting in another tenant: got %v, want ErrNotFound", err)
	}
	// The KID is free again.
	mustAdd(t, s, newKey(store.DefaultTenant, "k2", t0().Add(time.Hour)))
}

func testSecretRoundTrip(t *testing.T, s store.Store) {
	// Every byte value, NULs included, and a size beyond RSA-4096's PKCS #8
	// encoding.
	secret := make([]byte, 8192)
	for i := range secret {
		secret[i] = byte(i * 7)
	}
	cert := make([]byte, 3000)
	for i := range cert {
		cert[i] = byte(255 - i)
	}
	k := store.SigningKey{Tenant: store.DefaultTenant, KID: "big", Algorithm: "RS256", PrivateKeyPKCS8: slices.Clone(secret), CertificateDER: cert, CreatedAt: t0()}
	mustAdd(t, s, k)
	// A caller that reuses (or zeroes) its buffer afterwards must not
	// change what was stored.
	k.PrivateKeyPKCS8[0] ^= 0xff
	k.PrivateKeyPKCS8 = secret
	got := mustKeys(t, s, store.DefaultTenant)
	if len(got) != 1 {
		t.Fatalf("keys %v", kids(got))
	}
	checkKey(t, got[0], k)
	// Reads return independent copies.
	got[0].PrivateKeyPKCS8[0] ^= 0xff
	checkKey(t, mustKeys(t, s, store.DefaultTenant)[0], k)
}

func checkPolicy(t *testing.T, got, want store.Policy) {
	t.Helper()
	if got.Tenant != want.Tenant || got.AttestationType != want.AttestationType || got.Version != want.Version {
		t.Errorf("policy identity: got %q/%q v%d, want %q/%q v%d", got.Tenant, got.AttestationType, got.Version, want.Tenant, want.AttestationType, want.Version)
	}
	if got.Text != want.Text {
		t.Errorf("policy %s v%d: Text = %q, want %q", want.AttestationType, want.Version, got.Text, want.Text)
	}
	if got.JWS != want.JWS {
		t.Errorf("policy %s v%d: JWS = %q, want %q", want.AttestationType, want.Version, got.JWS, want.JWS)
	}
	if !bytes.Equal(got.SignerCertificateDER, want.SignerCertificateDER) {
		t.Errorf("policy %s v%d: signer certificate differs", want.AttestationType, want.Version)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("policy %s v%d: CreatedAt = %v, want %v", want.AttestationType, want.Version, got.CreatedAt, want.CreatedAt)
	}
}

func mustPut(t *testing.T, s store.Store, p store.Policy) store.Policy {
	t.Helper()
	got, err := s.PutPolicy(t.Context(), p)
	if err != nil {
		t.Fatalf("PutPolicy(%q/%q): %v", p.Tenant, p.AttestationType, err)
	}
	return got
}

func testPolicyNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.Policy(ctx, store.DefaultTenant, "SgxEnclave"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Policy on a new store: got %v, want ErrNotFound", err)
	}
	h, err := s.PolicyHistory(ctx, store.DefaultTenant, "SgxEnclave")
	if err != nil || len(h) != 0 {
		t.Errorf("PolicyHistory on a new store: %d versions, %v; want none, nil", len(h), err)
	}
	mustPut(t, s, store.Policy{Tenant: store.DefaultTenant, AttestationType: "SgxEnclave", Text: "x"})
	// Other types and tenants still have none.
	for _, c := range []struct{ tenant, typ string }{
		{store.DefaultTenant, "TdxVm"},
		{"other-tenant", "SgxEnclave"},
	} {
		if _, err := s.Policy(ctx, c.tenant, c.typ); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Policy(%q, %q): got %v, want ErrNotFound", c.tenant, c.typ, err)
		}
	}
}

func testPolicyVersions(t *testing.T, s store.Store) {
	ctx := t.Context()
	texts := []string{"version=1.0; authorizationrules{=>permit();};", "version=1.0; authorizationrules{=>deny();};", ""}
	var put []store.Policy
	for i, text := range texts {
		p := mustPut(t, s, store.Policy{
			Tenant: store.DefaultTenant, AttestationType: "SgxEnclave", Text: text,
			Version: 42, // ignored: the store assigns versions
		})
		if p.Version != i+1 {
			t.Fatalf("put #%d: Version = %d, want %d", i+1, p.Version, i+1)
		}
		if p.CreatedAt.IsZero() {
			t.Fatalf("put #%d: CreatedAt not filled in", i+1)
		}
		if p.Text != text || p.Tenant != store.DefaultTenant || p.AttestationType != "SgxEnclave" {
			t.Fatalf("put #%d returned %+v", i+1, p)
		}
		got, err := s.Policy(ctx, store.DefaultTenant, "SgxEnclave")
		if err != nil {
			t.Fatalf("Policy after put #%d: %v", i+1, err)
		}
		checkPolicy(t, got, p) // the newest, exactly as PutPolicy returned it
		put = append(put, p)
	}
	h, err := s.PolicyHistory(ctx, store.DefaultTenant, "SgxEnclave")
	if err != nil {
		t.Fatalf("PolicyHistory: %v", err)
	}
	if len(h) != len(put) {
		t.Fatalf("PolicyHistory: %d versions, want %d", len(h), len(put))
	}
	for i := range h {
		checkPolicy(t, h[i], put[i])
	}
}

func testPolicyFields(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := store.Policy{
		Tenant:               store.DefaultTenant,
		AttestationType:      "OpenEnclave",
		Text:                 "version=1.0;\nauthorizationrules { => permit(); };\n",
		JWS:                  "eyJhbGciOiJSUzI1NiJ9.eyJBdHRlc3RhdGlvblBvbGljeSI6Ii4uLiJ9.c2ln",
		SignerCertificateDER: []byte{0x30, 0x82, 0x00, 0x00, 0xff},
		CreatedAt:            t0(), // a given CreatedAt is kept
	}
	got := mustPut(t, s, want)
	want.Version = 1
	checkPolicy(t, got, want)
	read, err := s.Policy(ctx, store.DefaultTenant, "OpenEnclave")
	if err != nil {
		t.Fatal(err)
	}
	checkPolicy(t, read, want)
}

func testPolicyScopes(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Versions count per (tenant, type).
	type scope struct{ tenant, typ string }
	scopes := []scope{{"t1", "SgxEnclave"}, {"t1", "TdxVm"}, {"t2", "SgxEnclave"}}
	for round := 1; round <= 3; round++ {
		for _, sc := range scopes {
			p := mustPut(t, s, store.Policy{Tenant: sc.tenant, AttestationType: sc.typ, Text: fmt.Sprintf("%s/%s #%d", sc.tenant, sc.typ, round)})
			if p.Version != round {
				t.Fatalf("%s/%s round %d: Version = %d", sc.tenant, sc.typ, round, p.Version)
			}
		}
	}
	for _, sc := range scopes {
		p, err := s.Policy(ctx, sc.tenant, sc.typ)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%s/%s #3", sc.tenant, sc.typ); p.Version != 3 || p.Text != want {
			t.Errorf("Policy(%s, %s) = v%d %q, want v3 %q", sc.tenant, sc.typ, p.Version, p.Text, want)
		}
		h, err := s.PolicyHistory(ctx, sc.tenant, sc.typ)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range h {
			if want := fmt.Sprintf("%s/%s #%d", sc.tenant, sc.typ, i+1); p.Version != i+1 || p.Text != want || p.Tenant != sc.tenant || p.AttestationType != sc.typ {
				t.Errorf("PolicyHistory(%s, %s)[%d] = %s/%s v%d %q", sc.tenant, sc.typ, i, p.Tenant, p.AttestationType, p.Version, p.Text)
			}
		}
		if len(h) != 3 {
			t.Errorf("PolicyHistory(%s, %s): %d versions, want 3", sc.tenant, sc.typ, len(h))
		}
	}
}

// concurrentPuts is how many goroutines store a policy at once.
const concurrentPuts = 20

func testPolicyConcurrentPut(t *testing.T, s store.Store) {
	ctx := t.Context()
	types := []string{"SgxEnclave", "TdxVm"}
	var wg sync.WaitGroup
	results := make(chan store.Policy, concurrentPuts*len(types))
	errs := make(chan error, concurrentPuts*len(types))
	start := make(chan struct{})
	for _, typ := range types {
		for i := range concurrentPuts {
			wg.Go(func() {
				<-start // maximise the overlap
				p, err := s.PutPolicy(ctx, store.Policy{Tenant: store.DefaultTenant, AttestationType: typ, Text: fmt.Sprintf("writer %d", i)})
				if err != nil {
					errs <- err
					return
				}
				results <- p
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Errorf("concurrent PutPolicy: %v", err)
	}
	byType := map[string][]store.Policy{}
	for p := range results {
		byType[p.AttestationType] = append(byType[p.AttestationType], p)
	}
	for _, typ := range types {
		var versions []int
		for _, p := range byType[typ] {
			versions = append(versions, p.Version)
		}
		slices.Sort(versions)
		for i, v := range versions {
			if v != i+1 {
				t.Fatalf("%s: versions %v, want 1..%d, each once", typ, versions, concurrentPuts)
			}
		}
		if len(versions) != concurrentPuts {
			t.Fatalf("%s: %d versions, want %d", typ, len(versions), concurrentPuts)
		}
		h, err := s.PolicyHistory(ctx, store.DefaultTenant, typ)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != concurrentPuts {
			t.Fatalf("%s: history has %d versions, want %d", typ, len(h), concurrentPuts)
		}
		returned := map[int]store.Policy{}
		for _, p := range byType[typ] {
			returned[p.Version] = p
		}
		for i, p := range h {
			if p.Version != i+1 {
				t.Fatalf("%s: history[%d] is version %d", typ, i, p.Version)
			}
			checkPolicy(t, p, returned[p.Version])
		}
		latest, err := s.Policy(ctx, store.DefaultTenant, typ)
		if err != nil {
			t.Fatal(err)
		}
		checkPolicy(t, latest, returned[concurrentPuts])
	}
}

func testSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.Setting(ctx, "issuer"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unset setting: got %v, want ErrNotFound", err)
	}
	set := func(k, v string) {
		t.Helper()
		if err := s.PutSetting(ctx, k, v); err != nil {
			t.Fatalf("PutSetting(%q): %v", k, err)
		}
	}
	get := func(k, want string) {
		t.Helper()
		got, err := s.Setting(ctx, k)
		if err != nil {
			t.Fatalf("Setting(%q): %v", k, err)
		}
		if got != want {
			t.Fatalf("Setting(%q) = %q, want %q", k, got, want)
		}
	}
	set("issuer", "https://attest.example")
	get("issuer", "https://attest.example")
	set("issuer", "https://attest.example:8443") // replace
	get("issuer", "https://attest.example:8443")
	set("empty", "") // set to empty is not unset
	get("empty", "")
	long := string(bytes.Repeat([]byte("ü"), 10000))
	set("long", long)
	get("long", long)
	get("issuer", "https://attest.example:8443")
	if _, err := s.Setting(ctx, "Issuer"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("keys are case-sensitive: Setting(%q) got %v, want ErrNotFound", "Issuer", err)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	// Something to read, so that a store answering reads from memory
	// without looking at the context would be caught.
	mustAdd(t, s, newKey(store.DefaultTenant, "k1", t0()))
	mustPut(t, s, store.Policy{Tenant: store.DefaultTenant, AttestationType: "SgxEnclave", Text: "x"})
	if err := s.PutSetting(t.Context(), "a", "b"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"SigningKeys": func() error { _, err := s.SigningKeys(ctx, store.DefaultTenant); return err },
		"AddSigningKey": func() error {
			return s.AddSigningKey(ctx, newKey(store.DefaultTenant, "k2", t0()))
		},
		"RetireSigningKey": func() error { return s.RetireSigningKey(ctx, store.DefaultTenant, "k1", t0()) },
		"DeleteSigningKey": func() error { return s.DeleteSigningKey(ctx, store.DefaultTenant, "k1") },
		"Policy":           func() error { _, err := s.Policy(ctx, store.DefaultTenant, "SgxEnclave"); return err },
		"PutPolicy": func() error {
			_, err := s.PutPolicy(ctx, store.Policy{Tenant: store.DefaultTenant, AttestationType: "SgxEnclave", Text: "y"})
			return err
		},
		"PolicyHistory": func() error { _, err := s.PolicyHistory(ctx, store.DefaultTenant, "SgxEnclave"); return err },
		"Setting":       func() error { _, err := s.Setting(ctx, "a"); return err },
		"UseDocument": func() error {
			_, err := s.UseDocument(ctx, store.DefaultTenant, "h", t0())
			return err
		},
		"PolicyCertificates": func() error {
			_, err := s.PolicyCertificates(ctx, store.DefaultTenant)
			return err
		},
		"AddPolicyCertificate": func() error {
			_, err := s.AddPolicyCertificate(ctx, newCert(store.DefaultTenant, "c1"))
			return err
		},
		"RemovePolicyCertificate": func() error {
			_, err := s.RemovePolicyCertificate(ctx, store.DefaultTenant, "c1")
			return err
		},
		"PutSetting": func() error { return s.PutSetting(ctx, "a", "c") },
		"Ping":       func() error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: got %v, want an error wrapping context.Canceled", name, err)
		}
	}
	// Nothing was written.
	keys := mustKeys(t, s, store.DefaultTenant)
	if len(keys) != 1 || !keys[0].RetiredAt.IsZero() {
		t.Errorf("keys changed under a cancelled context: %v", kids(keys))
	}
	if p, err := s.Policy(t.Context(), store.DefaultTenant, "SgxEnclave"); err != nil || p.Version != 1 {
		t.Errorf("policy changed under a cancelled context: v%d, %v", p.Version, err)
	}
	if v, err := s.Setting(t.Context(), "a"); err != nil || v != "b" {
		t.Errorf("setting changed under a cancelled context: %q, %v", v, err)
	}
}

func newCert(tenant, id string) store.PolicyCertificate {
	return store.PolicyCertificate{Tenant: tenant, ID: id, CertificateDER: []byte("der of " + id), AddedBy: "token:admin"}
}

func certIDs(cs []store.PolicyCertificate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func mustCerts(t *testing.T, s store.Store, tenant string) []store.PolicyCertificate {
	t.Helper()
	cs, err := s.PolicyCertificates(t.Context(), tenant)
	if err != nil {
		t.Fatalf("PolicyCertificates(%q): %v", tenant, err)
	}
	return cs
}

func testPolicyChangedBy(t *testing.T, s store.Store) {
	p := mustPut(t, s, store.Policy{Tenant: store.DefaultTenant, AttestationType: "SgxEnclave", Text: "x", ChangedBy: "oidc:alice"})
	got, err := s.Policy(t.Context(), store.DefaultTenant, "SgxEnclave")
	if err != nil {
		t.Fatal(err)
	}
	if got.ChangedBy != "oidc:alice" || p.ChangedBy != "oidc:alice" {
		t.Errorf("ChangedBy = %q (returned %q), want oidc:alice", got.ChangedBy, p.ChangedBy)
	}
}

func testPolicyCertificates(t *testing.T, s store.Store) {
	ctx := t.Context()
	if cs := mustCerts(t, s, store.DefaultTenant); len(cs) != 0 {
		t.Fatalf("new store has certificates %v", certIDs(cs))
	}
	a := newCert(store.DefaultTenant, "a")
	a.AddedAt = t0()
	b := newCert(store.DefaultTenant, "b")
	b.AddedAt = t0().Add(time.Second)
	for _, c := range []store.PolicyCertificate{a, b} {
		if added, err := s.AddPolicyCertificate(ctx, c); err != nil || !added {
			t.Fatalf("AddPolicyCertificate(%s) = %v, %v; want true, nil", c.ID, added, err)
		}
	}
	// Adding again is not an error and changes nothing.
	again := a
	again.AddedBy = "someone else"
	if added, err := s.AddPolicyCertificate(ctx, again); err != nil || added {
		t.Errorf("adding a certificate twice = %v, %v; want false, nil", added, err)
	}
	// Another tenant's certificates are separate.
	if _, err := s.AddPolicyCertificate(ctx, newCert("other", "a")); err != nil {
		t.Fatal(err)
	}
	cs := mustCerts(t, s, store.DefaultTenant)
	if !slices.Equal(certIDs(cs), []string{"a", "b"}) {
		t.Fatalf("certificates = %v, want [a b]", certIDs(cs))
	}
	if !bytes.Equal(cs[0].CertificateDER, a.CertificateDER) || cs[0].AddedBy != a.AddedBy || !cs[0].AddedAt.Equal(a.AddedAt) || cs[0].Tenant != store.DefaultTenant {
		t.Errorf("certificate a read back as %+v", cs[0])
	}
	if removed, err := s.RemovePolicyCertificate(ctx, store.DefaultTenant, "nope"); err != nil || removed {
		t.Errorf("removing an absent certificate = %v, %v; want false, nil", removed, err)
	}
	if removed, err := s.RemovePolicyCertificate(ctx, store.DefaultTenant, "a"); err != nil || !removed {
		t.Errorf("removing a = %v, %v; want true, nil", removed, err)
	}
	if cs := mustCerts(t, s, store.DefaultTenant); !slices.Equal(certIDs(cs), []string{"b"}) {
		t.Errorf("after removing a: %v, want [b]", certIDs(cs))
	}
	if cs := mustCerts(t, s, "other"); !slices.Equal(certIDs(cs), []string{"a"}) {
		t.Errorf("other tenant after removing default's a: %v, want [a]", certIDs(cs))
	}
}

func testPolicyCertificateLast(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.AddPolicyCertificate(ctx, newCert(store.DefaultTenant, "only")); err != nil {
		t.Fatal(err)
	}
	removed, err := s.RemovePolicyCertificate(ctx, store.DefaultTenant, "only")
	if !errors.Is(err, store.ErrLastCertificate) || removed {
		t.Errorf("removing the last certificate = %v, %v; want false, ErrLastCertificate", removed, err)
	}
	if cs := mustCerts(t, s, store.DefaultTenant); len(cs) != 1 {
		t.Errorf("the last certificate is gone: %v", certIDs(cs))
	}
}

func testPolicyCertificateConcurrentRemove(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		if _, err := s.AddPolicyCertificate(ctx, newCert(store.DefaultTenant, id)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.RemovePolicyCertificate(ctx, store.DefaultTenant, id); err != nil && !errors.Is(err, store.ErrLastCertificate) {
				t.Errorf("removing %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	if cs := mustCerts(t, s, store.DefaultTenant); len(cs) != 1 {
		t.Errorf("concurrent removals left %d certificates (%v), want exactly 1", len(cs), certIDs(cs))
	}
}

func testUseDocument(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, want := range []bool{true, false, false} {
		if fresh, err := s.UseDocument(ctx, store.DefaultTenant, "abc", t0()); err != nil || fresh != want {
			t.Errorf("use %d: %v, %v; want %v", i, fresh, err, want)
		}
	}
	if fresh, err := s.UseDocument(ctx, "other", "abc", t0()); err != nil || !fresh {
		t.Errorf("another tenant's first use: %v, %v", fresh, err)
	}
}
