// Package keys manages the token signing keys: created on first start,
// kept in the store (sealed), rotated on demand, published in the JWKS until
// every token a retired key signed has expired, then pruned.
package keys

import (
	"context"
	"errors"
	"fmt"
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
}

// ErrNoActiveKey means the store holds no key that may sign.
var ErrNoActiveKey = errors.New("keys: no active signing key")

// New builds a Manager and loads the keys, creating the first key if the
// store has none.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Tenant == "" {
		cfg.Tenant = store.DefaultTenant
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	m := &Manager{store: cfg.Store, tenant: cfg.Tenant, issuer: cfg.Issuer, clock: cfg.Clock, retention: cfg.Retention}
	if err := m.Reload(ctx); err != nil && !errors.Is(err, ErrNoActiveKey) {
		return nil, err
	}
	// A key whose certificate names another issuer (the public URL
	// changed) is replaced: relying parties check that the signing
	// certificate's subject is CN=<iss>.
	if a := m.activeKey(); a == nil || a.Certificate.Subject.CommonName != cfg.Issuer {
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
func (m *Manager) Reload(ctx context.Context) error {
	stored, err := m.store.SigningKeys(ctx, m.tenant)
	if err != nil {
		return fmt.Errorf("keys: loading: %w", err)
	}
	now := m.clock()
	var active *token.Key
	var retired []*token.Key
	for _, sk := range stored {
		if !sk.RetiredAt.IsZero() && now.Sub(sk.RetiredAt) > m.retention {
			if err := m.store.DeleteSigningKey(ctx, m.tenant, sk.KID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("keys: pruning %s: %w", sk.KID, err)
			}
			continue
		}
		k, err := token.ParseKey(sk.KID, sk.Algorithm, sk.PrivateKeyPKCS8, sk.CertificateDER, sk.CreatedAt, sk.RetiredAt)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		if sk.RetiredAt.IsZero() {
			// The newest unretired key signs; keys are listed oldest first.
			if active != nil {
				retired = append(retired, active)
			}
			active = k
		} else {
			retired = append(retired, k)
		}
	}
	published := make([]*token.Key, 0, len(retired)+1)
	if active != nil {
		published = append(published, active)
	}
	for i := len(retired) - 1; i >= 0; i-- {
		published = append(published, retired[i])
	}
	m.mu.Lock()
	m.active, m.published = active, published
	m.mu.Unlock()
	if active == nil {
		return ErrNoActiveKey
	}
	return nil
}

// Rotate creates a new signing key, makes it active and retires the
// previous ones (which stay published for the retention period).
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
		if o.RetiredAt.IsZero() {
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
