package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// OIDCConfig configures verification of JWTs from an OpenID Connect
// provider. The zero values of the optional fields select the defaults.
type OIDCConfig struct {
	Issuer    string          // exact issuer; discovery at Issuer + "/.well-known/openid-configuration"
	Audience  string          // required; `aud` (string or array) must contain it
	RoleClaim string          // default "roles"; the claim may be a string or an array of strings
	RoleMap   map[string]Role // claim value -> role; highest mapped role wins; unmapped values ignored; none mapped -> 403 no_role
	// Algorithms is the JWS alg allow-list; default RS256, ES256, PS256.
	// Only the names SupportedAlgorithms returns are accepted: never
	// "none", never HS*.
	Algorithms []string
	HTTPClient *http.Client  // default: a client with a 10 s timeout that refuses redirects off https
	Leeway     time.Duration // clock skew allowed on exp, nbf and iat; default 60 s; negative is an error
	// MinRefreshInterval is the minimum time between JWKS refetches on an
	// unknown kid; default 30 s. Concurrent callers share one fetch.
	MinRefreshInterval time.Duration

	// DiscoveryURL overrides where the provider's metadata is fetched
	// (default Issuer + "/.well-known/openid-configuration"). The
	// metadata's issuer must still equal Issuer. Entra ID's v1.0 tokens
	// need it: their issuer is https://sts.windows.net/<tenant>/ while the
	// metadata is served at
	// https://login.microsoftonline.com/<tenant>/.well-known/openid-configuration.
	DiscoveryURL string
	// MaxKeyAge is how long a fetched key set is used before it is
	// fetched again, so that keys the provider withdraws stop verifying;
	// default 1 h. The new fetch runs in the background while the old keys
	// stay in use, and is retried at most once per MinRefreshInterval
	// until it succeeds (each failure is logged).
	MaxKeyAge time.Duration
}

// Defaults of OIDCConfig.
const (
	DefaultRoleClaim          = "roles"
	DefaultLeeway             = 60 * time.Second
	DefaultMinRefreshInterval = 30 * time.Second
	DefaultMaxKeyAge          = time.Hour
	DefaultHTTPTimeout        = 10 * time.Second

	// maxMetadataSize bounds the discovery document and the key set.
	maxMetadataSize = 1 << 20
	// fetchTimeout bounds one discovery + key set fetch, whatever the
	// HTTP client's own timeout.
	fetchTimeout = 30 * time.Second
	// maxSubjectLen bounds the sub claim that becomes Principal.Name.
	maxSubjectLen = 1024
)

// oidcVerifier verifies provider-issued JWTs. Its key set is fetched
// lazily, cached, and refetched on an unknown kid (at most once per
// minRefresh) or when older than maxKeyAge.
type oidcVerifier struct {
	issuer       string
	audience     string
	roleClaim    string
	roleMap      map[string]Role
	algs         map[string]jwsAlg
	client       *http.Client
	leeway       time.Duration
	minRefresh   time.Duration
	maxKeyAge    time.Duration
	discoveryURL string
	allowHTTP    bool // the issuer is http on a loopback host (tests)
	now          func() time.Time
	log          *slog.Logger

	mu          sync.Mutex
	jwksURI     string    // "" until discovery succeeds
	keys        *keySet   // nil until a fetch succeeds
	lastAttempt time.Time // start of the last fetch, to pace refetches
	flight      *flight   // the fetch in progress, if any
}

// flight is one fetch that concurrent callers share.
type flight struct {
	done chan struct{}
	keys *keySet
	err  error
}

func newOIDCVerifier(c OIDCConfig, now func() time.Time, log *slog.Logger) (*oidcVerifier, error) {
	v := &oidcVerifier{
		issuer:     c.Issuer,
		audience:   c.Audience,
		roleClaim:  c.RoleClaim,
		client:     c.HTTPClient,
		leeway:     c.Leeway,
		minRefresh: c.MinRefreshInterval,
		maxKeyAge:  c.MaxKeyAge,
		now:        now,
		log:        log,
	}
	iu, err := url.Parse(c.Issuer)
	if err != nil || c.Issuer == "" {
		return nil, fmt.Errorf("auth: OIDC issuer %q is not a URL", c.Issuer)
	}
	switch {
	case iu.Scheme == "https" && iu.Host != "":
	case iu.Scheme == "http" && isLoopback(iu.Hostname()):
		v.allowHTTP = true
	default:
		return nil, fmt.Errorf("auth: OIDC issuer %q must be an https URL (http only on a loopback host)", c.Issuer)
	}
	if iu.RawQuery != "" || iu.Fragment != "" || iu.User != nil {
		return nil, fmt.Errorf("auth: OIDC issuer %q must have no query, fragment or user info", c.Issuer)
	}
	v.discoveryURL = strings.TrimSuffix(c.Issuer, "/") + "/.well-known/openid-configuration"
	if c.DiscoveryURL != "" {
		if err := v.checkFetchURL(c.DiscoveryURL); err != nil {
			return nil, fmt.Errorf("auth: OIDC discovery URL: %w", err)
		}
		v.discoveryURL = c.DiscoveryURL
	}
	if c.Audience == "" {
		return nil, errors.New("auth: OIDC audience is required")
	}
	if v.roleClaim == "" {
		v.roleClaim = DefaultRoleClaim
	}
	if len(c.RoleMap) == 0 {
		return nil, errors.New("auth: OIDC role map is empty: no token could get a role")
	}
	v.roleMap = make(map[string]Role, len(c.RoleMap))
	for val, r := range c.RoleMap {
		if r < RoleAttester || r > RoleContributor {
			return nil, fmt.Errorf("auth: OIDC role map: %q maps to %s, want attester, reader or contributor", val, r)
		}
		v.roleMap[val] = r
	}
	names := c.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms()
	}
	v.algs = make(map[string]jwsAlg, len(names))
	for _, n := range names {
		alg, ok := lookupAlg(n)
		if !ok {
			return nil, fmt.Errorf("auth: OIDC algorithm %q is not allowed (want some of %s)", n, strings.Join(SupportedAlgorithms(), ", "))
		}
		v.algs[n] = alg
	}
	if v.leeway < 0 {
		return nil, fmt.Errorf("auth: OIDC leeway %s is negative", v.leeway)
	}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	if v.minRefresh < 0 || v.maxKeyAge < 0 {
		return nil, errors.New("auth: OIDC refresh intervals must not be negative")
	}
	if v.minRefresh == 0 {
		v.minRefresh = DefaultMinRefreshInterval
	}
	if v.maxKeyAge == 0 {
		v.maxKeyAge = DefaultMaxKeyAge
	}
	if v.client == nil {
		v.client = &http.Client{
			Timeout: DefaultHTTPTimeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				return v.checkFetchURL(req.URL.String())
			},
		}
	}
	return v, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkFetchURL accepts an absolute https URL, or an http one on a
// loopback host when the issuer itself is one.
func (v *oidcVerifier) checkFetchURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%.200q is not a URL: %w", s, err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && v.allowHTTP && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%.200q is not an https URL", s)
}

// verify checks a JWT and returns its principal.
func (v *oidcVerifier) verify(ctx context.Context, tok string) (*Principal, *Error) {
	t, e := parseJWT(tok)
	if e != nil {
		return nil, e
	}
	alg, ok := v.algs[t.alg]
	if !ok {
		return nil, unauthorized(ReasonUnsupportedAlgorithm, "the token's algorithm is not accepted",
			fmt.Errorf("alg %.32q is not in the allow-list", t.alg))
	}
	if len(t.sig) == 0 {
		return nil, unauthorized(ReasonInvalidToken, "the token has no signature", nil)
	}

	ks, e := v.keySet(ctx)
	if e != nil {
		return nil, e
	}
	cands, e := ks.candidates(t, alg)
	if e != nil && e.Reason == ReasonUnknownKey && t.hasKid {
		// The provider may have rotated its keys since the last fetch.
		fresh, fe := v.refresh(ctx, ks)
		if fe != nil {
			return nil, fe
		}
		if fresh != nil {
			cands, e = fresh.candidates(t, alg)
		}
	}
	if e != nil {
		return nil, e
	}
	verified := false
	for _, k := range cands {
		if verifySignature(alg, k, t.signingInput, t.sig) {
			verified = true
			break
		}
	}
	if !verified {
		return nil, unauthorized(ReasonInvalidToken, "the token's signature does not verify", nil)
	}
	return v.checkClaims(t.claims)
}

// candidates returns the keys that may have signed t.
func (ks *keySet) candidates(t *jwt, alg jwsAlg) ([]*jwk, *Error) {
	var named []*jwk
	if t.hasKid {
		for i := range ks.keys {
			if k := &ks.keys[i]; k.hasKid && k.kid == t.kid {
				named = append(named, k)
			}
		}
		if len(named) == 0 {
			return nil, unauthorized(ReasonUnknownKey, "the token's key id is not in the provider's key set",
				fmt.Errorf("kid %.128q", t.kid))
		}
	} else {
		switch len(ks.keys) {
		case 0:
			return nil, unauthorized(ReasonUnknownKey, "the provider's key set has no usable key", nil)
		case 1:
			named = []*jwk{&ks.keys[0]}
		default:
			return nil, unauthorized(ReasonUnknownKey, "the token has no kid and the provider has several keys", nil)
		}
	}
	var fit []*jwk
	for _, k := range named {
		if k.fits(t.alg, alg) {
			fit = append(fit, k)
		}
	}
	if len(fit) == 0 {
		return nil, unauthorized(ReasonInvalidToken, "the token's algorithm does not fit its key",
			fmt.Errorf("alg %s, kid %.128q", t.alg, t.kid))
	}
	return fit, nil
}

// keySet returns the cached key set, fetching it (after discovery, if that
// has not succeeded yet) when there is none. A key set older than
// maxKeyAge is still returned, while a fetch of a new one starts in the
// background (at most once per minRefresh), so that a slow or failing
// provider does not hold up callers whose keys are known.
func (v *oidcVerifier) keySet(ctx context.Context) (*keySet, *Error) {
	v.mu.Lock()
	if ks := v.keys; ks != nil {
		now := v.now()
		if now.Sub(ks.fetched) >= v.maxKeyAge && v.flight == nil && now.Sub(v.lastAttempt) >= v.minRefresh {
			v.startLocked(ctx)
		}
		v.mu.Unlock()
		return ks, nil
	}
	f := v.startLocked(ctx)
	v.mu.Unlock()

	ks, err := f.wait(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	return ks, nil
}

// refresh refetches the key set after a kid miss on old. It returns nil,
// nil when a fetch is not due yet.
func (v *oidcVerifier) refresh(ctx context.Context, old *keySet) (*keySet, *Error) {
	v.mu.Lock()
	if v.keys != nil && v.keys != old {
		// Someone else fetched meanwhile.
		ks := v.keys
		v.mu.Unlock()
		return ks, nil
	}
	if v.flight == nil && v.now().Sub(v.lastAttempt) < v.minRefresh {
		v.mu.Unlock()
		return nil, nil
	}
	f := v.startLocked(ctx)
	v.mu.Unlock()

	ks, err := f.wait(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	return ks, nil
}

func unavailable(err error) *Error {
	return newError(503, ReasonOIDCUnavailable, "the identity provider's keys cannot be fetched to verify the token", err)
}

// startLocked joins the fetch in progress or starts one. v.mu must be
// held. The fetch runs on its own goroutine, detached from ctx's
// cancellation, so that one caller giving up does not fail the others.
func (v *oidcVerifier) startLocked(ctx context.Context) *flight {
	if v.flight != nil {
		return v.flight
	}
	f := &flight{done: make(chan struct{})}
	v.flight = f
	v.lastAttempt = v.now()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	go func() {
		defer cancel()
		ks, err := v.fetch(fctx)
		if err != nil {
			v.log.Warn("OIDC key set fetch failed", "issuer", v.issuer, "error", err.Error())
		}
		v.mu.Lock()
		if err == nil {
			v.keys = ks
		}
		v.flight = nil
		v.mu.Unlock()
		f.keys, f.err = ks, err
		close(f.done)
	}()
	return f
}

func (f *flight) wait(ctx context.Context) (*keySet, error) {
	select {
	case <-f.done:
		return f.keys, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the key set: %w", ctx.Err())
	}
}

// fetch discovers the key set URL (once) and fetches the key set.
func (v *oidcVerifier) fetch(ctx context.Context) (*keySet, error) {
	v.mu.Lock()
	uri := v.jwksURI
	v.mu.Unlock()
	if uri == "" {
		var err error
		if uri, err = v.discover(ctx); err != nil {
			return nil, err
		}
		v.mu.Lock()
		v.jwksURI = uri
		v.mu.Unlock()
	}
	body, err := v.get(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	ks, err := parseJWKS(body, v.log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	if len(ks.keys) == 0 {
		v.log.Warn("OIDC key set has no usable key", "issuer", v.issuer, "jwks_uri", uri)
	}
	ks.fetched = v.now()
	return ks, nil
}

// discover fetches the provider metadata and returns its jwks_uri.
func (v *oidcVerifier) discover(ctx context.Context) (string, error) {
	body, err := v.get(ctx, v.discoveryURL)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: %s: %w", v.discoveryURL, err)
	}
	iss, _ := doc["issuer"].(string)
	if iss != v.issuer {
		v.log.Error("OIDC discovery names another issuer: check --oidc-issuer", "configured", v.issuer, "discovered", iss)
		return "", fmt.Errorf("discovery: %s names issuer %.200q, configured %q", v.discoveryURL, iss, v.issuer)
	}
	uri, _ := doc["jwks_uri"].(string)
	if uri == "" {
		return "", fmt.Errorf("discovery: %s has no jwks_uri", v.discoveryURL)
	}
	if err := v.checkFetchURL(uri); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	return uri, nil
}

// get fetches a JSON document of at most maxMetadataSize bytes.
func (v *oidcVerifier) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: status %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxMetadataSize {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", u, maxMetadataSize)
	}
	return body, nil
}

// checkClaims checks a verified token's claims and maps it to a principal.
func (v *oidcVerifier) checkClaims(c map[string]any) (*Principal, *Error) {
	if iss, _ := c["iss"].(string); iss != v.issuer {
		return nil, unauthorized(ReasonWrongIssuer, "the token's issuer is not accepted",
			fmt.Errorf("iss %.200q, want %q", iss, v.issuer))
	}
	if e := v.checkAudience(c["aud"]); e != nil {
		return nil, e
	}
	now := v.now()
	exp, present, e := numericDate(c, "exp")
	if e != nil {
		return nil, e
	}
	if !present {
		return nil, unauthorized(ReasonInvalidToken, "the token has no expiry (exp)", nil)
	}
	if !now.Before(exp.Add(v.leeway)) {
		return nil, unauthorized(ReasonTokenExpired, "the token has expired",
			fmt.Errorf("exp %s, now %s", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	nbf, present, e := numericDate(c, "nbf")
	if e != nil {
		return nil, e
	}
	if present && now.Add(v.leeway).Before(nbf) {
		return nil, unauthorized(ReasonTokenNotYetValid, "the token is not valid yet",
			fmt.Errorf("nbf %s, now %s", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	iat, present, e := numericDate(c, "iat")
	if e != nil {
		return nil, e
	}
	if present && now.Add(v.leeway).Before(iat) {
		return nil, unauthorized(ReasonTokenNotYetValid, "the token was issued in the future",
			fmt.Errorf("iat %s, now %s", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	sub, _ := c["sub"].(string)
	if sub == "" {
		return nil, unauthorized(ReasonInvalidToken, "the token has no subject (sub)", nil)
	}
	if len(sub) > maxSubjectLen {
		return nil, unauthorized(ReasonInvalidToken, "the token's subject is too long", nil)
	}
	role, e := v.role(c)
	if e != nil {
		return nil, e
	}
	return &Principal{Name: "oidc:" + sub, Role: role, Method: MethodOIDC}, nil
}

func (v *oidcVerifier) checkAudience(aud any) *Error {
	switch a := aud.(type) {
	case string:
		if a == v.audience {
			return nil
		}
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && s == v.audience {
				return nil
			}
		}
	case nil:
		return unauthorized(ReasonWrongAudience, "the token has no audience (aud)", nil)
	default:
		return unauthorized(ReasonMalformedToken, "the token's aud is not a string or an array", nil)
	}
	return unauthorized(ReasonWrongAudience, "the token is not for this service (aud)",
		fmt.Errorf("want aud %q", v.audience))
}

// numericDate reads a NumericDate claim (RFC 7519 §2): seconds since the
// epoch, possibly fractional.
func numericDate(c map[string]any, name string) (time.Time, bool, *Error) {
	v, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, true, unauthorized(ReasonMalformedToken, "the token's "+name+" is not a number", nil)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, true, unauthorized(ReasonMalformedToken, "the token's "+name+" is not a usable number", err)
	}
	// Clamp to ±10^11 s (about ±3000 years), inside time.Time's range and
	// far beyond any real token's.
	const limit = 1e11
	f = max(-limit, min(limit, f))
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// role maps the role claim to the highest mapped role.
func (v *oidcVerifier) role(c map[string]any) (Role, *Error) {
	claim, ok := lookupClaim(c, v.roleClaim)
	if !ok {
		return RoleNone, newError(403, ReasonNoRole, "the token carries no role for this service",
			fmt.Errorf("no %q claim", v.roleClaim))
	}
	var values []string
	switch x := claim.(type) {
	case string:
		values = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				values = append(values, s)
			}
		}
	default:
		return RoleNone, newError(403, ReasonNoRole, "the token carries no role for this service",
			fmt.Errorf("claim %q is not a string or an array of strings", v.roleClaim))
	}
	best := RoleNone
	for _, s := range values {
		if r, ok := v.roleMap[s]; ok && r > best {
			best = r
		}
	}
	if best == RoleNone {
		return RoleNone, newError(403, ReasonNoRole, "the token carries no role for this service",
			fmt.Errorf("none of the %d values of claim %q is mapped", len(values), v.roleClaim))
	}
	return best, nil
}

// lookupClaim finds a claim by its exact name or, when there is no such
// top-level claim and the name has dots, by a path through nested objects
// (Keycloak's "realm_access.roles").
func lookupClaim(c map[string]any, name string) (any, bool) {
	if v, ok := c[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	path := strings.Split(name, ".")
	if slices.Contains(path, "") {
		return nil, false
	}
	var cur any = c
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}
