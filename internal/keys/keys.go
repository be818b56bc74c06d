// Package keys manages the token signing keys: created on first start,
// kept in the store (sealed), rotated on demand, published in the JWKS until
// every token a retired key signed has expired, then pruned.
package keys

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/token"
)

// Manager is the in-memory view of a tenant's signing keys. Reload picks up
// changes made by other processes (attestd keys rotate, other replicas).
type Manager struct {
	store  store.Store
	tenant string
	issuer string
	clock  func() time.Time
	// retention is how long a retired key stays published: the longest
	// token lifetime plus clock skew.
	retention time.Duration
	prune     bool

	mu        sync.RWMutex
	active    *token.Key
	published []*token.Key
}

// Config configures a Manager.
type Config struct {
	Store  store.Store
	Tenant string
	Issuer string
	Clock  func() time.Time
	// Retention: how long retired keys stay published.
	Retention time.Duration
	// NoPrune keeps every retired key. A tool that does not know the
	// service's token lifetime (attestd keys rotate) must not decide when
	// the service's keys may go.
	NoPrune bool
}

// ErrNoActiveKey means the store holds no key that may sign.
var ErrNoActiveKey = errors.New("keys: no active signing key")

// Open builds a Manager over the stored keys without creating any.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Tenant == "" {
		cfg.Tenant = store.DefaultTenant
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	m := &Manager{store: cfg.Store, tenant: cfg.Tenant, issuer: cfg.Issuer, clock: cfg.Clock, retention: cfg.Retention, prune: !cfg.NoPrune}
	if err := m.Reload(ctx); err != nil && !errors.Is(err, ErrNoActiveKey) {
		return nil, err
	}
	return m, nil
}

// New builds a Manager and loads the keys, creating a key if the store has
// none for this issuer.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	m, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// No key for this issuer (first start, or the public URL changed):
	// make one. Relying parties check that the signing certificate's
	// subject is CN=<iss>.
	if m.activeKey() == nil {
		if _, err := m.Rotate(ctx); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Manager) activeKey() *token.Key {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.active
}

// ActiveKey returns the key that signs new tokens.
func (m *Manager) ActiveKey() (*token.Key, error) {
	if k := m.activeKey(); k != nil {
		return k, nil
	}
	return nil, ErrNoActiveKey
}

// Published returns the keys to list in the JWKS, active key first.
func (m *Manager) Published() []*token.Key {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]*token.Key(nil), m.published...)
}

// Reload reads the keys from the store, deletes retired keys whose tokens
// have all expired, and swaps the in-memory view.
//
// The active key is the newest unretired key made for this manager's
// issuer: a key another process made for another public URL is published
// (it may have signed tokens) but never signs here, since relying parties
// check that the signing certificate names the token's issuer. Older
// unretired keys (left by concurrent rotations) count as retired when the
// next key was created.
func (m *Manager) Reload(ctx context.Context) error {
	stored, err := m.store.SigningKeys(ctx, m.tenant)
	if err != nil {
		return fmt.Errorf("keys: loading: %w", err)
	}
	now := m.clock()
	parsed := make([]*token.Key, len(stored))
	for i, sk := range stored {
		k, err := token.ParseKey(sk.KID, sk.Algorithm, sk.PrivateKeyPKCS8, sk.CertificateDER, sk.CreatedAt, sk.RetiredAt)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		parsed[i] = k
	}
	var active *token.Key
	var others []*token.Key
	for i, k := range parsed {
		cn := k.Certificate.Subject.CommonName
		retired := k.RetiredAt
		if retired.IsZero() {
			for _, later := range parsed[i+1:] {
				if later.RetiredAt.IsZero() && later.Certificate.Subject.CommonName == cn {
					retired = later.CreatedAt
					break
				}
			}
		}
		if m.prune && !retired.IsZero() && now.Sub(retired) > m.retention {
			if err := m.store.DeleteSigningKey(ctx, m.tenant, k.KID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("keys: pruning %s: %w", k.KID, err)
			}
			continue
		}
		if k.RetiredAt.IsZero() && cn == m.issuer {
			// Keys are listed oldest first: the last such key wins.
			if active != nil {
				others = append(others, active)
			}
			active = k
		} else {
			others = append(others, k)
		}
	}
	published := make([]*token.Key, 0, len(others)+1)
	if active != nil {
		published = append(published, active)
	}
	for i := len(others) - 1; i >= 0; i-- {
		published = append(published, others[i])
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if active == nil {
		// Keep signing with the key in hand rather than failing every
		// request; the caller logs the error.
		if m.active != nil {
			if !slices.ContainsFunc(published, func(k *token.Key) bool { return k.KID == m.active.KID }) {
				published = append([]*token.Key{m.active}, published...)
			}
			m.published = published
		}
		return ErrNoActiveKey
	}
	m.active, m.published = active, published
	return nil
}

// Rotate creates a new signing key, makes it active and retires the
// previous keys of the same issuer (which stay published for the retention
// period).
func (m *Manager) Rotate(ctx context.Context) (*token.Key, error) {
	now := m.clock()
	k, err := token.GenerateKey(nil, m.issuer, now)
	if err != nil {
		return nil, err
	}
	pkcs8, err := k.PKCS8()
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	old, err := m.store.SigningKeys(ctx, m.tenant)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if err := m.store.AddSigningKey(ctx, store.SigningKey{
		Tenant: m.tenant, KID: k.KID, Algorithm: k.Algorithm, PrivateKeyPKCS8: pkcs8,
		CertificateDER: k.Certificate.Raw, CreatedAt: k.CreatedAt,
	}); err != nil {
		return nil, fmt.Errorf("keys: storing new key: %w", err)
	}
	for _, o := range old {
		if o.RetiredAt.IsZero() && certCN(o.CertificateDER) == m.issuer {
			if err := m.store.RetireSigningKey(ctx, m.tenant, o.KID, now); err != nil {
				return nil, fmt.Errorf("keys: retiring %s: %w", o.KID, err)
			}
		}
	}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

func certCN(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	return c.Subject.CommonName
}
