package keys

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/internal/store/sqlite"
	"github.com/attestd/attestd/token"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	sealer, err := store.NewAESGCMSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "attestd.db"), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestRotationAndRetention: a rotated-out key stays published for the
// retention period (the token lifetime plus skew), then is pruned.
func TestRotationAndRetention(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m, err := New(ctx, Config{Store: st, Issuer: "https://a.test", Clock: clock, Retention: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := m.ActiveKey()
	if first.Certificate.Subject.CommonName != "https://a.test" || len(first.KID) != 44 {
		t.Fatalf("first key %s %s", first.KID, first.Certificate.Subject)
	}
	now = now.Add(time.Hour)
	second, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := m.ActiveKey(); a.KID != second.KID {
		t.Fatal("the new key is not active")
	}
	if pub := m.Published(); len(pub) != 2 || pub[0].KID != second.KID || pub[1].KID != first.KID {
		t.Fatalf("published %v", pub)
	}
	// Just inside the retention period: still published.
	now = now.Add(8 * time.Hour)
	if err := m.Reload(ctx); err != nil || len(m.Published()) != 2 {
		t.Fatalf("at retention end: %d keys, %v", len(m.Published()), err)
	}
	// Past it: pruned from the JWKS and the store.
	now = now.Add(time.Second)
	if err := m.Reload(ctx); err != nil || len(m.Published()) != 1 {
		t.Fatalf("after retention: %d keys, %v", len(m.Published()), err)
	}
	if stored, _ := st.SigningKeys(ctx, store.DefaultTenant); len(stored) != 1 {
		t.Fatalf("store still holds %d keys", len(stored))
	}
	// A second manager over the same store sees the same active key.
	m2, err := New(ctx, Config{Store: st, Issuer: "https://a.test", Clock: clock, Retention: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := m2.ActiveKey(); a.KID != second.KID {
		t.Fatal("reopened manager has another active key")
	}
}

// TestIssuers: a key made for another issuer (another replica, or a
// rotation with another --issuer) never signs here, and older unretired
// keys count as retired from when the next key of their issuer was made.
func TestIssuers(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, err := New(ctx, Config{Store: st, Issuer: "https://a.test", Clock: clock, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := a.ActiveKey()
	// Another process rotates for another issuer, without pruning.
	b, err := Open(ctx, Config{Store: st, Issuer: "https://b.test", Clock: clock, NoPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stored, _ := st.SigningKeys(ctx, store.DefaultTenant); len(stored) != 2 {
		t.Fatalf("rotate made %d keys in all, want 2", len(stored))
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := a.ActiveKey(); k.KID != ka.KID {
		t.Fatal("a adopted b's key")
	}
	if pub := a.Published(); len(pub) != 2 || pub[0].KID != ka.KID || pub[1].KID != kb.KID {
		t.Fatalf("a publishes %d keys", len(pub))
	}
	// Two unretired keys of one issuer (concurrent rotations): the older
	// counts as retired when the newer was made, and is pruned after the
	// retention.
	if err := st.AddSigningKey(ctx, mustStored(t, "https://a.test", now.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute + time.Hour + time.Second)
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := a.ActiveKey(); k.KID == ka.KID {
		t.Fatal("the older key still signs")
	}
	for _, k := range a.Published() {
		if k.KID == ka.KID {
			t.Fatal("the superseded key outlived its retention")
		}
	}
}

func mustStored(t *testing.T, issuer string, at time.Time) store.SigningKey {
	t.Helper()
	k, err := token.GenerateKey(nil, issuer, at)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := k.PKCS8()
	return store.SigningKey{Tenant: store.DefaultTenant, KID: k.KID, Algorithm: k.Algorithm, PrivateKeyPKCS8: p, CertificateDER: k.Certificate.Raw, CreatedAt: at}
}
