// Package store persists what attestd must remember across restarts: token
// signing keys (encrypted at rest), attestation policies with their history,
// and settings. The Store interface is the only thing the service sees, so
// that the embedded SQLite store and a shared PostgreSQL store (for replicas
// behind a load balancer) are interchangeable.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when a requested record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned (wrapped) when a record with the same identity
// already exists.
var ErrConflict = errors.New("store: conflict")

// DefaultTenant is the tenant every record belongs to until multi-tenancy
// lands.
const DefaultTenant = "default"

// SigningKey is a token signing key. The private key travels in plaintext
// only in memory: stores seal PrivateKeyPKCS8 before writing it.
type SigningKey struct {
	Tenant string
	// KID is the JWKS key id.
	KID string
	// Algorithm is the JWS algorithm the key signs with ("RS256").
	Algorithm string
	// PrivateKeyPKCS8 is the private key, PKCS #8 DER.
	PrivateKeyPKCS8 []byte
	// CertificateDER is the self-signed certificate published in x5c.
	CertificateDER []byte
	CreatedAt      time.Time
	// RetiredAt is when the key stopped signing; zero while it is the
	// active key. A retired key stays published until every token it
	// signed has expired.
	RetiredAt time.Time
}

// Policy is one stored version of an attestation policy.
type Policy struct {
	Tenant string
	// AttestationType is the MAA path value: "SgxEnclave", "OpenEnclave",
	// "TdxVm", ...
	AttestationType string
	// Version counts from 1 per (tenant, type); the store assigns it.
	Version int
	// Text is the policy text. Empty means the built-in default is in force
	// (a reset).
	Text string
	// JWS is the exact policy JWS the policy arrived in, if any.
	JWS string
	// SignerCertificateDER is the certificate that signed the JWS, if it
	// was signed.
	SignerCertificateDER []byte
	// ChangedBy names who stored this version (an authenticated principal,
	// or "attestd" for changes the service made itself).
	ChangedBy string
	CreatedAt time.Time
}

// PolicyCertificate is a policy-management certificate: in isolated mode,
// every policy change and certificate change must be signed by one of them
// or by a certificate one of them issued.
type PolicyCertificate struct {
	Tenant string
	// ID is hex SHA-256 of CertificateDER.
	ID             string
	CertificateDER []byte
	AddedAt        time.Time
	AddedBy        string
}

// ErrLastCertificate is returned (wrapped) by RemovePolicyCertificate when
// the certificate is the tenant's last one: an isolated tenant without a
// certificate could never change its policy again.
var ErrLastCertificate = errors.New("store: the last policy-management certificate cannot be removed")

// Store is the persistence interface. Implementations are safe for
// concurrent use and return errors wrapping ErrNotFound or ErrConflict
// where those apply.
type Store interface {
	// SigningKeys returns the tenant's keys, active and retired, oldest
	// first.
	SigningKeys(ctx context.Context, tenant string) ([]SigningKey, error)
	// AddSigningKey stores a new key; ErrConflict if the KID exists.
	AddSigningKey(ctx context.Context, key SigningKey) error
	// RetireSigningKey sets RetiredAt on a key; ErrNotFound if absent.
	RetireSigningKey(ctx context.Context, tenant, kid string, at time.Time) error
	// DeleteSigningKey removes a key; ErrNotFound if absent.
	DeleteSigningKey(ctx context.Context, tenant, kid string) error

	// Policy returns the newest version for (tenant, type); ErrNotFound if
	// none was ever stored.
	Policy(ctx context.Context, tenant, attestationType string) (Policy, error)
	// PutPolicy stores a new version and returns it with Version and
	// CreatedAt filled in.
	PutPolicy(ctx context.Context, p Policy) (Policy, error)
	// PolicyHistory returns every version for (tenant, type), oldest first.
	PolicyHistory(ctx context.Context, tenant, attestationType string) ([]Policy, error)

	// PolicyCertificates returns the tenant's policy-management
	// certificates, oldest first (empty, not ErrNotFound, when none).
	PolicyCertificates(ctx context.Context, tenant string) ([]PolicyCertificate, error)
	// AddPolicyCertificate stores a certificate. It reports false, and
	// changes nothing, when the tenant already has it.
	AddPolicyCertificate(ctx context.Context, c PolicyCertificate) (bool, error)
	// RemovePolicyCertificate removes the certificate with the given ID. It
	// reports false when the tenant does not have it, and fails with
	// ErrLastCertificate, removing nothing, when it is the last one.
	RemovePolicyCertificate(ctx context.Context, tenant, id string) (bool, error)

	// UseDocument records that the management document with the given
	// hash was acted on. It reports false, recording nothing, when the
	// tenant already used it.
	UseDocument(ctx context.Context, tenant, hash string, at time.Time) (bool, error)

	// Setting returns a setting's value; ErrNotFound if unset.
	Setting(ctx context.Context, key string) (string, error)
	// PutSetting creates or replaces a setting.
	PutSetting(ctx context.Context, key, value string) error

	// Ping reports whether the store is usable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
