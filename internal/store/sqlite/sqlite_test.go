package sqlite

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/internal/store/storetest"
)

func newSealer(t *testing.T) store.Sealer {
	t.Helper()
	key := make([]byte, store.KeySize)
	rand.Read(key)
	s, err := store.NewAESGCMSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOpen(t *testing.T, path string, sealer store.Sealer) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, sealer)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "attestd.db"), newSealer(t))
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, Memory, newSealer(t))
	})
}

// rawDB opens the database file directly, as an attacker with the file or
// a future attestd would see it.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func testKey(tenant, kid string, pk []byte) store.SigningKey {
	return store.SigningKey{
		Tenant: tenant, KID: kid, Algorithm: "RS256",
		PrivateKeyPKCS8: pk, CertificateDER: []byte("cert " + kid),
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "attestd.db")
	sealer := newSealer(t)
	s, err := Open(ctx, path, sealer)
	if err != nil {
		t.Fatal(err)
	}
	key := testKey(store.DefaultTenant, "k1", []byte("secret"))
	if err := s.AddSigningKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	retiredAt := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", -7*3600))
	if err := s.RetireSigningKey(ctx, store.DefaultTenant, "k1", retiredAt); err != nil {
		t.Fatal(err)
	}
	p, err := s.PutPolicy(ctx, store.Policy{Tenant: store.DefaultTenant, AttestationType: "TdxVm", Text: "policy"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(ctx, "issuer", "me"); err != nil {
		t.Fatal(err)
	}
	var applied []int64
	rows, err := s.r.QueryContext(ctx, `SELECT applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a int64
		rows.Scan(&a)
		applied = append(applied, a)
	}
	rows.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 3 { // migrations are idempotent: reopening applies nothing
		s := mustOpen(t, path, sealer)
		keys, err := s.SigningKeys(ctx, store.DefaultTenant)
		if err != nil || len(keys) != 1 {
			t.Fatalf("reopen %d: keys %v, %v", i, keys, err)
		}
		if !bytes.Equal(keys[0].PrivateKeyPKCS8, key.PrivateKeyPKCS8) || !keys[0].CreatedAt.Equal(key.CreatedAt) || !keys[0].RetiredAt.Equal(retiredAt) {
			t.Fatalf("reopen %d: key %+v", i, keys[0])
		}
		if keys[0].CreatedAt.Location() != time.UTC {
			t.Errorf("times should read back in UTC, got %v", keys[0].CreatedAt.Location())
		}
		got, err := s.Policy(ctx, store.DefaultTenant, "TdxVm")
		if err != nil || got.Version != 1 || got.Text != "policy" || !got.CreatedAt.Equal(p.CreatedAt) {
			t.Fatalf("reopen %d: policy %+v, %v", i, got, err)
		}
		if v, err := s.Setting(ctx, "issuer"); err != nil || v != "me" {
			t.Fatalf("reopen %d: setting %q, %v", i, v, err)
		}
		var again []int64
		rows, err := s.r.QueryContext(ctx, `SELECT applied_at FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a int64
			rows.Scan(&a)
			again = append(again, a)
		}
		rows.Close()
		if !slices.Equal(applied, again) {
			t.Fatalf("reopen %d: schema_migrations changed: %v -> %v", i, applied, again)
		}
		s.Close()
	}
}

func TestMigrations(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %s has version %d, want %d", m.name, m.version, i+1)
		}
	}
	s := mustOpen(t, Memory, newSealer(t))
	var n, max int
	if err := s.w.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || max != len(ms) {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, max, len(ms))
	}
	for _, table := range []string{"signing_keys", "policies", "settings", "key_check"} {
		var name string
		if err := s.w.QueryRow(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&name); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "attestd.db")
	sealer := newSealer(t)
	mustOpen(t, path, sealer).Close()
	exec(t, rawDB(t, path), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`)

	_, err := Open(t.Context(), path, sealer)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open: got %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("the error should name the database's version: %v", err)
	}
	t.Log(err)
}

func TestFailedMigrationRollsBack(t *testing.T) {
	db := rawDB(t, filepath.Join(t.TempDir(), "x.db"))
	db.SetMaxOpenConns(1)
	ms := []migration{
		{1, "0001_a.sql", `CREATE TABLE a (x INTEGER);`},
		{2, "0002_b.sql", `CREATE TABLE b (x INTEGER); CREATE TABLE broken (;`},
	}
	err := migrate(t.Context(), db, ms, time.Now)
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql") {
		t.Fatalf("migrate: got %v, want an error naming 0002_b.sql", err)
	}
	var v int
	db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if v != 1 {
		t.Fatalf("schema version %d after a failed migration 2, want 1", v)
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'b'`).Scan(&n)
	if n != 0 {
		t.Fatal("a failed migration left a table behind")
	}
	// Fixed, it applies.
	ms[1].sql = `CREATE TABLE b (x INTEGER);`
	if err := migrate(t.Context(), db, ms, time.Now); err != nil {
		t.Fatal(err)
	}
	db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if v != 2 {
		t.Fatalf("schema version %d, want 2", v)
	}
}

func TestNoPlaintextOnDisk(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "attestd.db")
	s, err := Open(ctx, path, newSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	secrets := make([][]byte, 4)
	for i := range secrets {
		secrets[i] = make([]byte, 1200)
		rand.Read(secrets[i])
		if err := s.AddSigningKey(ctx, testKey(store.DefaultTenant, fmt.Sprintf("k%d", i), secrets[i])); err != nil {
			t.Fatal(err)
		}
	}
	// Deleted and retired keys must not linger in plaintext either.
	if err := s.DeleteSigningKey(ctx, store.DefaultTenant, "k0"); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireSigningKey(ctx, store.DefaultTenant, "k1", time.Now()); err != nil {
		t.Fatal(err)
	}

	check := func(when string) {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, fmt.Sprintf("%s (%d bytes)", e.Name(), len(data)))
			if !bytes.Contains(data, []byte("cert k1")) && strings.HasSuffix(e.Name(), ".db") && when == "after close" {
				t.Errorf("%s: the certificate (stored in clear) is not in the file: is this test reading the right file?", e.Name())
			}
			for i, secret := range secrets {
				// Any 16-byte window of a random key is a match by
				// chance with probability about 2^-100.
				for off := 0; off+16 <= len(secret); off += 16 {
					if bytes.Contains(data, secret[off:off+16]) {
						t.Fatalf("%s: %s holds bytes %d..%d of private key k%d in plaintext", when, e.Name(), off, off+16, i)
					}
				}
			}
		}
		t.Logf("%s: searched %v", when, files)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	check("after a checkpoint")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after close")
}

func TestSwappedSealedKeyFails(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "attestd.db")
	s := mustOpen(t, path, newSealer(t))
	for _, k := range []store.SigningKey{
		testKey(store.DefaultTenant, "k1", []byte("secret one")),
		testKey(store.DefaultTenant, "k2", []byte("secret two")),
		testKey("other", "k1", []byte("secret three")),
	} {
		if err := s.AddSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	sealedOf := func(tenant, kid string) []byte {
		var b []byte
		if err := s.w.QueryRow(`SELECT private_key_sealed FROM signing_keys WHERE tenant = ? AND kid = ?`, tenant, kid).Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	k1 := sealedOf(store.DefaultTenant, "k1")

	// Another KID in the same tenant.
	exec(t, s.w, `UPDATE signing_keys SET private_key_sealed = ? WHERE tenant = ? AND kid = ?`, k1, store.DefaultTenant, "k2")
	_, err := s.SigningKeys(ctx, store.DefaultTenant)
	if !errors.Is(err, store.ErrSealedAuth) || !strings.Contains(err.Error(), `"k2"`) {
		t.Fatalf("sealed key copied to k2: got %v, want ErrSealedAuth naming k2", err)
	}
	t.Log(err)

	// The same KID in another tenant.
	exec(t, s.w, `UPDATE signing_keys SET private_key_sealed = ? WHERE tenant = ? AND kid = ?`, k1, "other", "k1")
	if _, err := s.SigningKeys(ctx, "other"); !errors.Is(err, store.ErrSealedAuth) {
		t.Fatalf("sealed key copied to another tenant: got %v, want ErrSealedAuth", err)
	}

	// A row renamed to another KID.
	exec(t, s.w, `DELETE FROM signing_keys WHERE kid = 'k2'`)
	exec(t, s.w, `UPDATE signing_keys SET kid = 'k9' WHERE tenant = ? AND kid = 'k1'`, store.DefaultTenant)
	if _, err := s.SigningKeys(ctx, store.DefaultTenant); !errors.Is(err, store.ErrSealedAuth) {
		t.Fatalf("row renamed: got %v, want ErrSealedAuth", err)
	}
}

func TestWrongKey(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "attestd.db")
	right := newSealer(t)
	s := mustOpen(t, path, right)
	if err := s.AddSigningKey(ctx, testKey(store.DefaultTenant, "k1", []byte("secret"))); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err := Open(ctx, path, newSealer(t))
	if !errors.Is(err, store.ErrWrongKey) || !errors.Is(err, store.ErrSealedAuth) {
		t.Fatalf("Open with another key: got %v, want ErrWrongKey", err)
	}
	t.Log(err)

	// The right key still works: the failed Open changed nothing.
	s = mustOpen(t, path, right)
	if keys, err := s.SigningKeys(ctx, store.DefaultTenant); err != nil || len(keys) != 1 {
		t.Fatalf("right key after a wrong one: %v, %v", keys, err)
	}
	s.Close()

	// Without the key check (deleted by hand), each sealed row still
	// refuses to open under the wrong key rather than yield garbage.
	exec(t, rawDB(t, path), `DELETE FROM key_check`)
	s = mustOpen(t, path, newSealer(t))
	keys, err := s.SigningKeys(ctx, store.DefaultTenant)
	if !errors.Is(err, store.ErrSealedAuth) || keys != nil {
		t.Fatalf("row sealed with another key: got %v, %v; want ErrSealedAuth", keys, err)
	}
	t.Log(err)
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "attestd.db")
	s := mustOpen(t, path, newSealer(t))
	if err := s.PutSetting(t.Context(), "a", "b"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{
		filepath.Dir(dir): os.ModeDir | 0o700,
		dir:               os.ModeDir | 0o700,
		path:              0o600,
		path + "-wal":     0o600,
		path + "-shm":     0o600,
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

func TestPragmas(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "attestd.db"), newSealer(t))
	for name, db := range map[string]*sql.DB{"writer": s.w, "reader": s.r} {
		var mode string
		var fk, busy int
		if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || busy != busyTimeoutMS {
			t.Errorf("%s: journal_mode=%s foreign_keys=%d busy_timeout=%d", name, mode, fk, busy)
		}
	}
	if _, err := s.r.Exec(`INSERT INTO settings (key, value, updated_at) VALUES ('x', 'y', 0)`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestAwkwardPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?#%20x")
	path := filepath.Join(dir, "attestd?.db")
	s := mustOpen(t, path, newSealer(t))
	if err := s.PutSetting(t.Context(), "a", "b"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "attestd?.db") {
			t.Errorf("stray file %q", e.Name())
		}
	}
}

// Two Stores on one file stand in for two processes: BEGIN IMMEDIATE and
// busy_timeout must keep PutPolicy's versions distinct across them too.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "attestd.db")
	sealer := newSealer(t)
	a := mustOpen(t, path, sealer)
	b := mustOpen(t, path, sealer)
	const n = 10
	var wg sync.WaitGroup
	versions := make(chan int, 2*n)
	for _, s := range []*Store{a, b} {
		for range n {
			wg.Go(func() {
				p, err := s.PutPolicy(t.Context(), store.Policy{Tenant: store.DefaultTenant, AttestationType: "SgxEnclave", Text: "x"})
				if err != nil {
					t.Error(err)
					return
				}
				versions <- p.Version
			})
		}
	}
	wg.Wait()
	close(versions)
	var got []int
	for v := range versions {
		got = append(got, v)
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("versions %v, want 1..%d", got, 2*n)
		}
	}
}

func TestValidation(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, Memory, newSealer(t))
	bad := []store.SigningKey{
		testKey("", "k", []byte("x")),
		testKey(store.DefaultTenant, "", []byte("x")),
		testKey("a\x00b", "k", []byte("x")), // would make the AD ambiguous
		testKey(store.DefaultTenant, "k\x00", []byte("x")),
		testKey(store.DefaultTenant, "k", nil),
	}
	outOfRange := testKey(store.DefaultTenant, "k", []byte("x"))
	outOfRange.CreatedAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	bad = append(bad, outOfRange)
	for _, k := range bad {
		if err := s.AddSigningKey(ctx, k); err == nil {
			t.Errorf("AddSigningKey(%q, %q, %d-byte key, %v) succeeded", k.Tenant, k.KID, len(k.PrivateKeyPKCS8), k.CreatedAt)
		}
	}
	if keys, _ := s.SigningKeys(ctx, store.DefaultTenant); len(keys) != 0 {
		t.Errorf("invalid keys were stored: %d", len(keys))
	}
	if err := s.AddSigningKey(ctx, testKey(store.DefaultTenant, "k", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireSigningKey(ctx, store.DefaultTenant, "k", time.Time{}); err == nil {
		t.Error("retiring at the zero time succeeded")
	}
	if _, err := s.PutPolicy(ctx, store.Policy{Tenant: store.DefaultTenant}); err == nil {
		t.Error("PutPolicy without an attestation type succeeded")
	}
	if err := s.PutSetting(ctx, "", "x"); err == nil {
		t.Error("PutSetting with an empty key succeeded")
	}
}

func TestDefaultTimes(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, Memory, newSealer(t))
	now := time.Date(2030, 1, 1, 0, 0, 0, 1, time.UTC)
	s.now = func() time.Time { return now }
	k := testKey(store.DefaultTenant, "k", []byte("x"))
	k.CreatedAt = time.Time{}
	if err := s.AddSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	keys, err := s.SigningKeys(ctx, store.DefaultTenant)
	if err != nil || len(keys) != 1 || !keys[0].CreatedAt.Equal(now) {
		t.Fatalf("zero CreatedAt: %v, %v; want %v", keys, err, now)
	}
	p, err := s.PutPolicy(ctx, store.Policy{Tenant: store.DefaultTenant, AttestationType: "TdxVm"})
	if err != nil || !p.CreatedAt.Equal(now) {
		t.Fatalf("PutPolicy CreatedAt %v, %v; want %v", p.CreatedAt, err, now)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(t.Context(), Memory, nil); err == nil {
		t.Error("Open without a sealer succeeded")
	}
	if _, err := Open(t.Context(), "", newSealer(t)); err == nil {
		t.Error("Open with an empty path succeeded")
	}
	notADB := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(notADB, bytes.Repeat([]byte("not a database "), 100), 0o600)
	if _, err := Open(t.Context(), notADB, newSealer(t)); err == nil {
		t.Error("Open of a file that is not a database succeeded")
	} else {
		t.Log(err)
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "attestd.db"), newSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded")
	}
}
