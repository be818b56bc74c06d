// Package sqlite is the embedded store: a single SQLite file in the data
// directory, through the pure-Go driver modernc.org/sqlite (no cgo).
//
// Writes go through a pool of exactly one connection, so write
// transactions queue in Go, where waiting honours the caller's context,
// instead of spinning on SQLite's busy handler. Reads use their own pool:
// in WAL mode they run alongside the writer and see the last commit.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attestd/attestd/internal/store"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Memory is the path that opens a private in-memory database, for tests.
const Memory = ":memory:"

// busyTimeoutMS is how long a connection waits for a lock held by another
// process (a backup tool, the sqlite3 shell) before failing with
// SQLITE_BUSY. Within one process the single writer connection means
// attestd never waits on itself.
const busyTimeoutMS = 10000

// readConns bounds the read pool: each connection has its own page cache,
// and attestd's reads are few and small.
const readConns = 4

// keyCheckPlaintext and keyCheckAD are sealed into key_check when a
// database is created and opened on every later Open.
const (
	keyCheckPlaintext = "attestd store key check v1"
	keyCheckAD        = "attestd/key_check"
)

// Store is a store.Store kept in one SQLite database file.
type Store struct {
	path   string
	w      *sql.DB // one connection: every write, serialized
	r      *sql.DB // reads; the same pool as w for an in-memory database
	sealer store.Sealer
	now    func() time.Time
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path, applies pending
// migrations and checks that sealer opens the data already sealed there.
// path is a file path, or Memory. A new file is created with mode 0600 and
// missing parent directories with mode 0700, since the file holds (sealed)
// private keys and the policies that decide what attests.
//
// Open fails with an error wrapping store.ErrSchemaTooNew if a newer
// attestd has migrated the database, and store.ErrWrongKey if sealer's key
// is not the one the database's secrets were sealed with.
func Open(ctx context.Context, path string, sealer store.Sealer) (*Store, error) {
	if sealer == nil {
		return nil, errors.New("sqlite: Open needs a sealer: private keys are never stored in plaintext")
	}
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	s := &Store{path: path, sealer: sealer, now: time.Now}
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	common.Add("_pragma", "foreign_keys(1)")
	// A write transaction that reads first (PutPolicy's next version)
	// must hold the write lock from BEGIN: a deferred transaction that
	// upgrades later can fail with SQLITE_BUSY whatever busy_timeout is.
	writer := cloneValues(common)
	writer.Set("_txlock", "immediate")

	var err error
	if s.path == Memory {
		// Every connection to ":memory:" is a separate empty database,
		// so an in-memory store has one connection for everything.
		if s.w, err = sql.Open("sqlite", Memory+"?"+writer.Encode()); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		s.w.SetMaxOpenConns(1)
		s.r = s.w
		return s.prepare(ctx)
	}

	abs, err := filepath.Abs(s.path)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := createFile(abs); err != nil {
		return err
	}
	writer.Add("_pragma", "journal_mode(WAL)")
	// FULL syncs the WAL on every commit: a signing key that was
	// reported stored must survive a power cut, or tokens it signed
	// could not be verified. attestd writes rarely, so this is cheap.
	writer.Add("_pragma", "synchronous(FULL)")
	if s.w, err = sql.Open("sqlite", fileURI(abs, writer)); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	// Migrations run before the read pool exists, so no reader ever sees
	// a half-built schema, and WAL mode (persistent in the file) is set.
	if err := s.prepare(ctx); err != nil {
		return err
	}
	reader := cloneValues(common)
	// A read connection that tries to write is a bug in this package.
	reader.Add("_pragma", "query_only(1)")
	if s.r, err = sql.Open("sqlite", fileURI(abs, reader)); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	s.r.SetMaxOpenConns(readConns)
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: opening %s for reading: %w", s.path, err)
	}
	return nil
}

// prepare migrates the schema and checks the store key.
func (s *Store) prepare(ctx context.Context) error {
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	if err := migrate(ctx, s.w, migrations, s.now); err != nil {
		return fmt.Errorf("sqlite: %s: %w", s.path, err)
	}
	return s.checkKey(ctx)
}

// checkKey seals a known value into a new database, and opens it in an
// existing one, so that a wrong store key fails Open.
func (s *Store) checkKey(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var sealed []byte
		err := tx.QueryRowContext(ctx, `SELECT sealed FROM key_check WHERE id = 1`).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			sealed, err = s.sealer.Seal([]byte(keyCheckPlaintext), []byte(keyCheckAD))
			if err != nil {
				return fmt.Errorf("sqlite: sealing the key check value: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO key_check (id, sealed) VALUES (1, ?)`, sealed); err != nil {
				return fmt.Errorf("sqlite: storing the key check value: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlite: reading the key check value: %w", err)
		}
		plain, err := s.sealer.Open(sealed, []byte(keyCheckAD))
		if errors.Is(err, store.ErrSealedAuth) {
			return fmt.Errorf("sqlite: %s: %w (%w); use the key file or configured store key this database was created with", s.path, store.ErrWrongKey, err)
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: the key check value is damaged: %w", s.path, err)
		}
		if string(plain) != keyCheckPlaintext {
			return fmt.Errorf("sqlite: %s: the key check value opened to unexpected content", s.path)
		}
		return nil
	})
}

// createFile creates the database file with mode 0600, and missing parent
// directories with mode 0700, before SQLite opens it: SQLite would create
// it with 0644. SQLite gives the -wal and -shm files the database file's
// mode, so they are covered too. An existing file is left as it is.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite: creating the data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: creating %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: creating %s: %w", path, err)
	}
	return nil
}

// fileURI returns a "file:" URI for an absolute path, so that SQLite
// rather than the driver splits off the query and a path containing '?' or
// '#' still names the right file.
func fileURI(abs string, params url.Values) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(abs))
	if !strings.HasPrefix(escaped, "/") {
		escaped = "/" + escaped // a Windows drive path: file:/C:/...
	}
	return "file:" + escaped + "?" + params.Encode()
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Close closes the database. The writer closes last: the last connection
// to close checkpoints the WAL into the database file and removes it.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: closing %s: %w", s.path, err)
	}
	return nil
}

// Ping reads from the database file through both pools.
func (s *Store) Ping(ctx context.Context) error {
	for _, db := range []*sql.DB{s.r, s.w} {
		var v int
		if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
			return fmt.Errorf("sqlite: ping %s: %w", s.path, err)
		}
	}
	return nil
}

// inTx runs fn in a write transaction, committing if it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error says what went wrong
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// SigningKeys implements store.Store.
func (s *Store) SigningKeys(ctx context.Context, tenant string) ([]store.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT kid, algorithm, private_key_sealed, certificate_der, created_at, retired_at
		FROM signing_keys WHERE tenant = ? ORDER BY created_at, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: signing keys of tenant %q: %w", tenant, err)
	}
	defer rows.Close()
	var keys []store.SigningKey
	var sealed [][]byte
	for rows.Next() {
		k := store.SigningKey{Tenant: tenant}
		var blob []byte
		var created int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.KID, &k.Algorithm, &blob, &k.CertificateDER, &created, &retired); err != nil {
			return nil, fmt.Errorf("sqlite: signing keys of tenant %q: %w", tenant, err)
		}
		k.CreatedAt = fromNanos(created)
		if retired.Valid {
			k.RetiredAt = fromNanos(retired.Int64)
		}
		keys = append(keys, k)
		sealed = append(sealed, blob)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: signing keys of tenant %q: %w", tenant, err)
	}
	for i := range keys {
		k := &keys[i]
		pk, err := s.sealer.Open(sealed[i], store.SigningKeyAD(k.Tenant, k.KID))
		if err != nil {
			return nil, fmt.Errorf("sqlite: signing key %q of tenant %q: cannot open its sealed private key: %w", k.KID, tenant, err)
		}
		k.PrivateKeyPKCS8 = pk
	}
	return keys, nil
}

// AddSigningKey implements store.Store. A zero CreatedAt is taken to mean
// now.
func (s *Store) AddSigningKey(ctx context.Context, key store.SigningKey) error {
	if err := checkName("tenant", key.Tenant); err != nil {
		return err
	}
	if err := checkName("KID", key.KID); err != nil {
		return err
	}
	if len(key.PrivateKeyPKCS8) == 0 {
		return fmt.Errorf("sqlite: signing key %q has no private key", key.KID)
	}
	if key.CreatedAt.IsZero() {
		key.CreatedAt = s.now()
	}
	created, err := toNanos(key.CreatedAt)
	if err != nil {
		return fmt.Errorf("sqlite: signing key %q: created at: %w", key.KID, err)
	}
	var retired sql.NullInt64
	if !key.RetiredAt.IsZero() {
		if retired.Int64, err = toNanos(key.RetiredAt); err != nil {
			return fmt.Errorf("sqlite: signing key %q: retired at: %w", key.KID, err)
		}
		retired.Valid = true
	}
	sealed, err := s.sealer.Seal(key.PrivateKeyPKCS8, store.SigningKeyAD(key.Tenant, key.KID))
	if err != nil {
		return fmt.Errorf("sqlite: signing key %q: sealing the private key: %w", key.KID, err)
	}
	_, err = s.w.ExecContext(ctx, `
		INSERT INTO signing_keys (tenant, kid, algorithm, private_key_sealed, certificate_der, created_at, retired_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		key.Tenant, key.KID, key.Algorithm, sealed, nullBytes(key.CertificateDER), created, retired)
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: signing key %q of tenant %q already exists: %w", key.KID, key.Tenant, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: adding signing key %q: %w", key.KID, err)
	}
	return nil
}

// RetireSigningKey implements store.Store.
func (s *Store) RetireSigningKey(ctx context.Context, tenant, kid string, at time.Time) error {
	if at.IsZero() {
		// A zero time would read back as "active": retiring must not be
		// able to un-retire a key by accident.
		return fmt.Errorf("sqlite: retiring signing key %q: zero retirement time", kid)
	}
	n, err := toNanos(at)
	if err != nil {
		return fmt.Errorf("sqlite: retiring signing key %q: %w", kid, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE tenant = ? AND kid = ?`, n, tenant, kid)
	return s.oneRow(res, err, "retiring", tenant, kid)
}

// DeleteSigningKey implements store.Store.
func (s *Store) DeleteSigningKey(ctx context.Context, tenant, kid string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM signing_keys WHERE tenant = ? AND kid = ?`, tenant, kid)
	return s.oneRow(res, err, "deleting", tenant, kid)
}

// oneRow turns the result of a statement on one signing key into an error,
// ErrNotFound if it touched no row.
func (s *Store) oneRow(res sql.Result, err error, doing, tenant, kid string) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s signing key %q of tenant %q: %w", doing, kid, tenant, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s signing key %q of tenant %q: %w", doing, kid, tenant, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s signing key %q of tenant %q: %w", doing, kid, tenant, store.ErrNotFound)
	}
	return nil
}

const policyColumns = `version, text, jws, signer_certificate_der, changed_by, created_at`

// scanPolicy scans policyColumns.
func scanPolicy(sc interface{ Scan(...any) error }, p *store.Policy) error {
	var created int64
	if err := sc.Scan(&p.Version, &p.Text, &p.JWS, &p.SignerCertificateDER, &p.ChangedBy, &created); err != nil {
		return err
	}
	p.CreatedAt = fromNanos(created)
	return nil
}

// Policy implements store.Store.
func (s *Store) Policy(ctx context.Context, tenant, attestationType string) (store.Policy, error) {
	p := store.Policy{Tenant: tenant, AttestationType: attestationType}
	row := s.r.QueryRowContext(ctx, `SELECT `+policyColumns+` FROM policies
		WHERE tenant = ? AND attestation_type = ? ORDER BY version DESC LIMIT 1`, tenant, attestationType)
	err := scanPolicy(row, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Policy{}, fmt.Errorf("sqlite: policy %q of tenant %q: %w", attestationType, tenant, store.ErrNotFound)
	}
	if err != nil {
		return store.Policy{}, fmt.Errorf("sqlite: policy %q of tenant %q: %w", attestationType, tenant, err)
	}
	return p, nil
}

// PutPolicy implements store.Store. The caller's Version is ignored; a
// zero CreatedAt is taken to mean now.
func (s *Store) PutPolicy(ctx context.Context, p store.Policy) (store.Policy, error) {
	if err := checkName("tenant", p.Tenant); err != nil {
		return store.Policy{}, err
	}
	if err := checkName("attestation type", p.AttestationType); err != nil {
		return store.Policy{}, err
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.now()
	}
	created, err := toNanos(p.CreatedAt)
	if err != nil {
		return store.Policy{}, fmt.Errorf("sqlite: policy %q: created at: %w", p.AttestationType, err)
	}
	p.CreatedAt = fromNanos(created)
	// The single writer connection and BEGIN IMMEDIATE make reading the
	// newest version and inserting the next one atomic, also against
	// another process on the same file; the unique index is the backstop.
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var last int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM policies
			WHERE tenant = ? AND attestation_type = ?`, p.Tenant, p.AttestationType).Scan(&last); err != nil {
			return err
		}
		p.Version = last + 1
		_, err := tx.ExecContext(ctx, `
			INSERT INTO policies (tenant, attestation_type, version, text, jws, signer_certificate_der, changed_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			p.Tenant, p.AttestationType, p.Version, p.Text, p.JWS, nullBytes(p.SignerCertificateDER), p.ChangedBy, created)
		if isUniqueViolation(err) {
			return fmt.Errorf("version %d was taken concurrently: %w", p.Version, store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return store.Policy{}, fmt.Errorf("sqlite: storing policy %q of tenant %q: %w", p.AttestationType, p.Tenant, err)
	}
	return p, nil
}

// PolicyHistory implements store.Store. It returns no versions, and no
// error, for a (tenant, type) that never had a policy.
func (s *Store) PolicyHistory(ctx context.Context, tenant, attestationType string) ([]store.Policy, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+policyColumns+` FROM policies
		WHERE tenant = ? AND attestation_type = ? ORDER BY version`, tenant, attestationType)
	if err != nil {
		return nil, fmt.Errorf("sqlite: policy history %q of tenant %q: %w", attestationType, tenant, err)
	}
	defer rows.Close()
	var out []store.Policy
	for rows.Next() {
		p := store.Policy{Tenant: tenant, AttestationType: attestationType}
		if err := scanPolicy(rows, &p); err != nil {
			return nil, fmt.Errorf("sqlite: policy history %q of tenant %q: %w", attestationType, tenant, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: policy history %q of tenant %q: %w", attestationType, tenant, err)
	}
	return out, nil
}

// PolicyCertificates implements store.Store.
func (s *Store) PolicyCertificates(ctx context.Context, tenant string) ([]store.PolicyCertificate, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT certificate_id, certificate_der, added_at, added_by
		FROM policy_certificates WHERE tenant = ? ORDER BY added_at, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: policy certificates of tenant %q: %w", tenant, err)
	}
	defer rows.Close()
	var out []store.PolicyCertificate
	for rows.Next() {
		c := store.PolicyCertificate{Tenant: tenant}
		var added int64
		if err := rows.Scan(&c.ID, &c.CertificateDER, &added, &c.AddedBy); err != nil {
			return nil, fmt.Errorf("sqlite: policy certificates of tenant %q: %w", tenant, err)
		}
		c.AddedAt = fromNanos(added)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: policy certificates of tenant %q: %w", tenant, err)
	}
	return out, nil
}

// AddPolicyCertificate implements store.Store.
func (s *Store) AddPolicyCertificate(ctx context.Context, c store.PolicyCertificate) (bool, error) {
	if err := checkName("tenant", c.Tenant); err != nil {
		return false, err
	}
	if err := checkName("certificate id", c.ID); err != nil {
		return false, err
	}
	if len(c.CertificateDER) == 0 {
		return false, fmt.Errorf("sqlite: policy certificate %q has no DER", c.ID)
	}
	if c.AddedAt.IsZero() {
		c.AddedAt = s.now()
	}
	added, err := toNanos(c.AddedAt)
	if err != nil {
		return false, fmt.Errorf("sqlite: policy certificate %q: added at: %w", c.ID, err)
	}
	res, err := s.w.ExecContext(ctx, `
		INSERT INTO policy_certificates (tenant, certificate_id, certificate_der, added_at, added_by)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, certificate_id) DO NOTHING`,
		c.Tenant, c.ID, c.CertificateDER, added, c.AddedBy)
	if err != nil {
		return false, fmt.Errorf("sqlite: adding policy certificate %q to tenant %q: %w", c.ID, c.Tenant, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: adding policy certificate %q to tenant %q: %w", c.ID, c.Tenant, err)
	}
	return n == 1, nil
}

// RemovePolicyCertificate implements store.Store.
func (s *Store) RemovePolicyCertificate(ctx context.Context, tenant, id string) (bool, error) {
	removed := false
	// Counting and deleting in one immediate transaction keeps two
	// concurrent removals from leaving the tenant with none.
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var have, total int
		if err := tx.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(certificate_id = ?), 0), COUNT(*)
			FROM policy_certificates WHERE tenant = ?`, id, tenant).Scan(&have, &total); err != nil {
			return err
		}
		if have == 0 {
			return nil
		}
		if total <= 1 {
			return store.ErrLastCertificate
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM policy_certificates WHERE tenant = ? AND certificate_id = ?`, tenant, id); err != nil {
			return err
		}
		removed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: removing policy certificate %q from tenant %q: %w", id, tenant, err)
	}
	return removed, nil
}

// UseDocument implements store.Store.
func (s *Store) UseDocument(ctx context.Context, tenant, hash string, at time.Time) (bool, error) {
	if err := checkName("tenant", tenant); err != nil {
		return false, err
	}
	if err := checkName("document hash", hash); err != nil {
		return false, err
	}
	used, err := toNanos(at)
	if err != nil {
		return false, fmt.Errorf("sqlite: document %q: %w", hash, err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO used_documents (tenant, hash, used_at) VALUES (?, ?, ?)
		ON CONFLICT (tenant, hash) DO NOTHING`, tenant, hash, used)
	if err != nil {
		return false, fmt.Errorf("sqlite: recording document %q: %w", hash, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: recording document %q: %w", hash, err)
	}
	return n == 1, nil
}

// Setting implements store.Store.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sqlite: setting %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: setting %q: %w", key, err)
	}
	return v, nil
}

// PutSetting implements store.Store.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	if err := checkName("setting key", key); err != nil {
		return err
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("sqlite: setting %q: value is not valid UTF-8", key)
	}
	_, err := s.w.ExecContext(ctx, `
		INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		key, value, s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: storing setting %q: %w", key, err)
	}
	return nil
}

// checkName rejects identifiers a store cannot keep faithfully. NUL is
// refused because store.SigningKeyAD separates tenant and KID with it.
func checkName(what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("sqlite: empty %s", what)
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("sqlite: %s %q contains a NUL byte", what, v)
	case !utf8.ValidString(v):
		return fmt.Errorf("sqlite: %s %q is not valid UTF-8", what, v)
	}
	return nil
}

// nullBytes stores an absent blob as NULL, which reads back as nil.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func isUniqueViolation(err error) bool {
	var se *sqlitedriver.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// toNanos converts t to unix nanoseconds, the stored form of every time.
func toNanos(t time.Time) (int64, error) {
	if t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, fmt.Errorf("time %s is outside the range the store keeps (years 1678 to 2262)", t.Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

// fromNanos is the inverse of toNanos; times read back are in UTC.
func fromNanos(n int64) time.Time {
	return time.Unix(0, n).UTC()
}
