package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/store"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_description.sql. A released migration is never edited: a change to
// the schema is a new file with the next number.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in order. Their numbers
// must run 1, 2, 3, ... without gaps, which a test also checks, so that a
// mistake fails the build's tests rather than a user's upgrade.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations") // sorted by name
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("sqlite: embedded migration %q is not named NNNN_description.sql", e.Name())
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("sqlite: embedded migration %q has version %d, want %d", e.Name(), v, len(ms)+1)
		}
		text, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqlite: reading embedded migration %q: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(text)})
	}
	return ms, nil
}

// migrate brings the schema up to the newest of ms. Each migration runs in
// its own transaction together with the schema_migrations row that records
// it, so it is applied entirely and exactly once, even if two processes
// open the same new file at once (BEGIN IMMEDIATE serializes them, and the
// second finds the version already recorded).
func migrate(ctx context.Context, db *sql.DB, ms []migration, now func() time.Time) error {
	if _, err := db.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	for {
		applied, err := migrateNext(ctx, db, ms, now)
		if err != nil {
			return err
		}
		if !applied {
			return nil
		}
	}
}

// migrateNext applies the first migration the database lacks. It reports
// false when there is none.
func migrateNext(ctx context.Context, db *sql.DB, ms []migration, now func() time.Time) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrating: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return false, fmt.Errorf("reading the schema version: %w", err)
	}
	if current > len(ms) {
		// Writing with an older schema's assumptions could corrupt what
		// the newer attestd stored, so refuse rather than guess.
		return false, fmt.Errorf("%w: the database is at schema version %d and this attestd knows versions up to %d; run the newer attestd, or restore a backup taken before the upgrade", store.ErrSchemaTooNew, current, len(ms))
	}
	if current == len(ms) {
		return false, nil
	}
	m := ms[current]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("applying migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, now().UnixNano()); err != nil {
		return false, fmt.Errorf("recording migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("committing migration %s: %w", m.name, err)
	}
	return true, nil
}
