package keys

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/internal/store/sqlite"
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
