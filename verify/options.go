package verify

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/attestd/attestd/internal/jose"
)

// Defaults for the options.
const (
	DefaultLeeway          = 60 * time.Second
	DefaultRefreshInterval = 30 * time.Second
	DefaultCacheTTL        = time.Hour
)

// Option configures a Verifier.
type Option func(*config) error

type config struct {
	httpClient      *http.Client
	now             func() time.Time
	algs            []string
	leeway          time.Duration
	allowSimulated  bool
	keySetJSON      []byte
	expected        map[string]any
	refreshInterval time.Duration
	cacheTTL        time.Duration
}

// WithHTTPClient sets the client used to fetch the OpenID metadata and the
// key set. Without it a client with a 30 s timeout is used. Pass a client
// that trusts the issuer's CA when it is not publicly trusted (see
// client.NewHTTPClientWithCA).
func WithHTTPClient(c *http.Client) Option {
	return func(cfg *config) error {
		if c == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		cfg.httpClient = c
		return nil
	}
}

// WithClock sets the source of the current time, used for exp, nbf, iat,
// the key certificates' validity windows, and cache and refresh timing.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(cfg *config) error {
		if now == nil {
			return errors.New("WithClock: nil clock")
		}
		cfg.now = now
		return nil
	}
}

// WithAlgorithms replaces the allow-list of signature algorithms, which by
// default holds only RS256 (the only one MAA and attestd use). Supported:
// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA
// (Ed25519). New fails on "none", on HMAC algorithms and on any other name:
// an allow-list that silently drops entries would hide a configuration
// mistake.
func WithAlgorithms(algs ...string) Option {
	return func(cfg *config) error {
		if len(algs) == 0 {
			return errors.New("WithAlgorithms: empty allow-list")
		}
		for _, a := range algs {
			if _, ok := jose.Lookup(a); !ok {
				return fmt.Errorf("WithAlgorithms: algorithm %q is not supported", a)
			}
		}
		cfg.algs = append([]string(nil), algs...)
		return nil
	}
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat. The
// default is 60 s.
func WithLeeway(d time.Duration) Option {
	return func(cfg *config) error {
		if d < 0 {
			return errors.New("WithLeeway: negative leeway")
		}
		cfg.leeway = d
		return nil
	}
}

// WithAllowSimulated accepts tokens whose evidence came from attestd's
// simulated TEE platform (claim "x-attestd-simulated": true). Such tokens
// prove nothing about real hardware; use this only in development and
// tests.
func WithAllowSimulated() Option {
	return func(cfg *config) error {
		cfg.allowSimulated = true
		return nil
	}
}

// WithKeySet makes the verifier use this JSON Web Key Set and never touch
// the network: no discovery, no refetch, and jku is not compared (there is
// no discovered jwks_uri to compare it with). Use it offline, with keys
// obtained out of band, or for recorded tokens.
func WithKeySet(jwksJSON []byte) Option {
	return func(cfg *config) error {
		if jwksJSON == nil {
			return errors.New("WithKeySet: nil key set")
		}
		cfg.keySetJSON = jwksJSON
		return nil
	}
}

// WithExpectedClaims requires each named claim to be present with a value
// equal, as JSON, to the given one: numbers compare by value (1 equals
// 1.0), objects member by member, arrays in order. Values must be
// JSON-encodable. Repeated use adds to the set.
func WithExpectedClaims(claims map[string]any) Option {
	return func(cfg *config) error {
		if cfg.expected == nil {
			cfg.expected = make(map[string]any)
		}
		for name, v := range claims {
			norm, err := normalizeJSON(v)
			if err != nil {
				return fmt.Errorf("WithExpectedClaims: claim %q: %w", name, err)
			}
			cfg.expected[name] = norm
		}
		return nil
	}
}

// WithRefreshInterval sets the minimum time between key set refetches
// triggered by a token whose kid is unknown (default 30 s). Without such a
// bound anyone able to submit tokens could make the verifier hammer the
// issuer with made-up kids.
func WithRefreshInterval(interval time.Duration) Option {
	return func(cfg *config) error {
		if interval < 0 {
			return errors.New("WithRefreshInterval: negative interval")
		}
		cfg.refreshInterval = interval
		return nil
	}
}

// WithCacheTTL sets how long fetched metadata and key sets are used before
// they are fetched again (default 1 h).
func WithCacheTTL(d time.Duration) Option {
	return func(cfg *config) error {
		if d <= 0 {
			return errors.New("WithCacheTTL: TTL must be positive")
		}
		cfg.cacheTTL = d
		return nil
	}
}
