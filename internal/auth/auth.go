// Package auth authenticates callers of attestd's management API (and of the
// attest routes, when the operator requires it) from an HTTP Authorization
// header, and maps them to a role.
//
// Two credential sources exist, each optional:
//
//   - admin tokens: random bearer secrets ("attestd_…") whose SHA-256 hashes
//     are listed in a file, each with a name and a role;
//   - OIDC: JWTs issued by an OpenID Connect provider (Microsoft Entra ID,
//     Keycloak, …), verified against the provider's published keys, with the
//     role taken from a claim.
//
// Everything is rejected unless it is positively accepted: a missing header,
// an unknown scheme, a token of neither shape, a source that is not
// configured. Failures are *Error values with a stable Reason and the HTTP
// status to answer with. Nothing in this package panics on any input.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Role is what a caller may do. Roles are hierarchical: a contributor may do
// everything a reader may, and a reader everything an attester may.
type Role int

// The roles, lowest first.
const (
	RoleNone        Role = iota // authenticated, but may do nothing
	RoleAttester                // may call attest routes when attest auth is required
	RoleReader                  // + GET policies / certificates
	RoleContributor             // + PUT/reset policies, add/remove certificates
)

var roleNames = [...]string{"none", "attester", "reader", "contributor"}

// String returns the role's name as ParseRole accepts it.
func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// valid reports whether r is one of the declared roles.
func (r Role) valid() bool { return r >= RoleNone && r <= RoleContributor }

// ParseRole parses a role name, ignoring case: "none", "attester", "reader"
// or "contributor".
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if strings.EqualFold(s, n) {
			return Role(i), nil
		}
	}
	return RoleNone, fmt.Errorf("auth: unknown role %q (want attester, reader or contributor)", s)
}

// Allows reports whether a caller holding r may do what needs need. Roles
// out of the declared range allow nothing and are allowed by nothing.
func (r Role) Allows(need Role) bool {
	return r.valid() && need.valid() && r >= need
}

// Principal is an authenticated caller.
type Principal struct {
	Name   string // "token:<name>" for admin tokens, "oidc:<sub>" for OIDC
	Role   Role
	Method string // MethodAdminToken or MethodOIDC
}

// Values of Principal.Method.
const (
	MethodAdminToken = "admin-token"
	MethodOIDC       = "oidc"
)

// Stable values of Error.Reason. They are never renamed; new ones may be
// added.
const (
	ReasonMissingToken         = "missing_token"         // 401: no Authorization header
	ReasonMalformedToken       = "malformed_token"       // 401: not a Bearer credential, or a token that does not parse
	ReasonInvalidToken         = "invalid_token"         // 401: parses but is not accepted (unknown admin token, bad signature, missing claim, …)
	ReasonTokenExpired         = "token_expired"         // 401: exp is past
	ReasonTokenNotYetValid     = "token_not_yet_valid"   // 401: nbf is in the future, or iat is
	ReasonWrongIssuer          = "wrong_issuer"          // 401: iss is not the configured issuer
	ReasonWrongAudience        = "wrong_audience"        // 401: aud does not contain the configured audience
	ReasonUnknownKey           = "unknown_key"           // 401: no key of the provider's key set matches the token's kid
	ReasonUnsupportedAlgorithm = "unsupported_algorithm" // 401: alg is not in the allow-list (none and HS* never are)
	ReasonNoRole               = "no_role"               // 403: a valid token whose role claim maps to no role
	ReasonInsufficientRole     = "insufficient_role"     // 403: a valid caller whose role is too low for the route
	ReasonOIDCUnavailable      = "oidc_unavailable"      // 503: the provider's metadata or keys cannot be had
)

// Error is an authentication or authorization failure.
//
// Msg is written for the caller and holds nothing secret: it may go into
// the response. Err carries the detail (which check, which values, the
// network error) for the log.
type Error struct {
	Status int    // 401 for missing/invalid credentials, 403 for a valid caller lacking the role, 503 when the OIDC provider can't be reached to verify
	Reason string // one of the Reason* constants
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	s := "auth: " + e.Reason
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// WWWAuthenticate returns the value of the WWW-Authenticate header that
// should accompany the response (RFC 6750 §3), or "" when none should.
func (e *Error) WWWAuthenticate() string {
	switch {
	case e.Status == 401 && e.Reason == ReasonMissingToken:
		return "Bearer"
	case e.Status == 401:
		return `Bearer error="invalid_token", error_description="` + headerSafe(e.Msg) + `"`
	case e.Status == 403:
		return `Bearer error="insufficient_scope", error_description="` + headerSafe(e.Msg) + `"`
	}
	return ""
}

// headerSafe keeps the bytes RFC 6750 allows in error_description.
func headerSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

// ReasonOf returns the Reason of the *Error in err's chain, or "" if there
// is none.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func newError(status int, reason, msg string, err error) *Error {
	return &Error{Status: status, Reason: reason, Msg: msg, Err: err}
}

func unauthorized(reason, msg string, err error) *Error { return newError(401, reason, msg, err) }

// MaxAuthorizationLength bounds the Authorization header value. Entra ID
// access tokens are a few KiB; the bound keeps a hostile caller from making
// the verifier decode megabytes of JSON.
const MaxAuthorizationLength = 64 << 10

// Config selects the credential sources. A nil source is disabled; with
// neither, every call is rejected.
type Config struct {
	AdminTokens *AdminTokens     // nil: admin tokens disabled
	OIDC        *OIDCConfig      // nil: OIDC disabled
	Clock       func() time.Time // nil: time.Now
	Logger      *slog.Logger     // nil: slog.Default()
}

// Authenticator checks bearer credentials. It is safe for concurrent use.
type Authenticator struct {
	admin *AdminTokens
	oidc  *oidcVerifier
	now   func() time.Time
	log   *slog.Logger
}

// New checks cfg and returns an Authenticator. It does no network I/O: the
// OIDC provider is contacted on first use.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{admin: cfg.AdminTokens, now: cfg.Clock, log: cfg.Logger}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.admin != nil {
		if a.admin.Len() == 0 {
			a.log.Warn("admin token file has no entries: no admin token will be accepted", "path", a.admin.path)
		}
		if a.admin.worldReadable {
			a.log.Warn("admin token file is world-readable; it holds only hashes, but consider chmod 0600", "path", a.admin.path)
		}
	}
	if cfg.OIDC != nil {
		v, err := newOIDCVerifier(*cfg.OIDC, a.now, a.log)
		if err != nil {
			return nil, err
		}
		a.oidc = v
	}
	return a, nil
}

// Enabled reports whether any credential source is configured.
func (a *Authenticator) Enabled() bool {
	return a != nil && (a.admin != nil || a.oidc != nil)
}

// Authenticate checks an Authorization header value (may be ""). It returns
// *Error on failure.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (*Principal, error) {
	p, err := a.authenticate(ctx, authorization)
	if err != nil {
		return nil, err // a typed nil *Error must not become a non-nil error
	}
	return p, nil
}

func (a *Authenticator) authenticate(ctx context.Context, authorization string) (*Principal, *Error) {
	if strings.TrimSpace(authorization) == "" {
		return nil, unauthorized(ReasonMissingToken, "an Authorization: Bearer header is required", nil)
	}
	if len(authorization) > MaxAuthorizationLength {
		return nil, unauthorized(ReasonMalformedToken, "the Authorization header is too long",
			fmt.Errorf("%d bytes, limit %d", len(authorization), MaxAuthorizationLength))
	}
	tok, err := bearerToken(authorization)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, unauthorized(ReasonInvalidToken, "no credential source is configured", nil)
	}
	switch {
	case strings.HasPrefix(tok, AdminTokenPrefix):
		if a.admin == nil {
			return nil, unauthorized(ReasonInvalidToken, "admin tokens are not enabled", nil)
		}
		return a.admin.verify(tok)
	case strings.Count(tok, ".") == 2:
		if a.oidc == nil {
			return nil, unauthorized(ReasonInvalidToken, "OIDC tokens are not enabled", nil)
		}
		return a.oidc.verify(ctx, tok)
	}
	return nil, unauthorized(ReasonMalformedToken, "the bearer token is neither an attestd admin token nor a JWT", nil)
}

// bearerToken extracts the token68 of a "Bearer <token>" credential
// (RFC 6750 §2.1; the scheme is case-insensitive, RFC 7235 §2.1).
func bearerToken(h string) (string, *Error) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthorized(ReasonMalformedToken, "the Authorization scheme must be Bearer", nil)
	}
	tok := strings.Trim(rest, " \t")
	if tok == "" {
		return "", unauthorized(ReasonMalformedToken, "the bearer token is empty", nil)
	}
	// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	i := 0
	for ; i < len(tok); i++ {
		c := tok[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 || strings.Trim(tok[i:], "=") != "" {
		return "", unauthorized(ReasonMalformedToken, "the bearer token has characters outside the token68 syntax", nil)
	}
	return tok, nil
}

// Authorize is Authenticate followed by a role check: a caller that
// authenticates but whose role does not allow need gets 403
// insufficient_role.
func (a *Authenticator) Authorize(ctx context.Context, authorization string, need Role) (*Principal, error) {
	p, err := a.authenticate(ctx, authorization)
	if err != nil {
		return nil, err
	}
	if !p.Role.Allows(need) {
		return nil, newError(403, ReasonInsufficientRole,
			fmt.Sprintf("this operation needs the %s role", need),
			fmt.Errorf("%s has role %s, needs %s", p.Name, p.Role, need))
	}
	return p, nil
}

// Prefetch runs OIDC discovery and fetches the provider's key set now,
// instead of on first use. attestd may call it at start to report a
// misconfiguration early; a failure is not fatal, since later calls retry.
// Without OIDC it does nothing.
func (a *Authenticator) Prefetch(ctx context.Context) error {
	if a == nil || a.oidc == nil {
		return nil
	}
	if _, err := a.oidc.keySet(ctx); err != nil {
		return err
	}
	return nil
}
