package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/attestd/attestd/internal/jose"
)

// MaxBodySize bounds the OpenID metadata and key set documents the
// verifier reads. MAA's key set is about 27 KiB.
const MaxBodySize = 1 << 20

// SimulatedClaim is the claim attestd adds, with value true, to tokens for
// evidence from its simulated TEE platform.
const SimulatedClaim = "x-attestd-simulated"

// Verifier verifies tokens of one issuer. It is safe for concurrent use;
// share one per issuer so that the fetched keys are shared too.
type Verifier struct {
	issuer     string
	issuerHTTP bool // the issuer is http://, so an http:// jwks_uri is acceptable
	cfg        config
	algs       map[string]bool
	static     *keySet // from WithKeySet; nil means discovery
	expected   []string

	mu    sync.Mutex
	snap  *snapshot // nil until the first successful fetch
	fl    *flight   // the fetch in progress, if any
	kidAt time.Time // when an unknown kid last triggered a refetch
}

// snapshot is what one discovery produced. It is never modified once
// published, so readers may use it without the lock.
type snapshot struct {
	jwksURI string
	metaAt  time.Time // when the metadata was fetched
	keys    *keySet
	keysAt  time.Time // when the key set was fetched
}

// flight is a fetch in progress. Concurrent callers that need a fetch wait
// for the one in progress instead of starting their own.
type flight struct {
	done     chan struct{}
	err      error
	canceled bool // err came from the leader's own context
}

// New returns a verifier for tokens issued by issuer, the service's base
// URL without a trailing slash (for MAA, e.g.
// "https://sharedwus.wus.attest.azure.net"). The token's iss must equal it
// exactly. Unless WithKeySet is given, keys are found through the issuer's
// OpenID metadata the first time they are needed.
func New(issuer string, opts ...Option) (*Verifier, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("verify: issuer: %w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("verify: issuer %q is not an http(s) URL", issuer)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("verify: issuer %q must be a plain base URL", issuer)
	case strings.HasSuffix(issuer, "/"):
		// Tokens carry the issuer without the slash; accepting it here
		// would only make every iss comparison fail later.
		return nil, fmt.Errorf("verify: issuer %q must not end with a slash", issuer)
	}

	cfg := config{
		now:             time.Now,
		algs:            []string{"RS256"},
		leeway:          DefaultLeeway,
		refreshInterval: DefaultRefreshInterval,
		cacheTTL:        DefaultCacheTTL,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	if cfg.httpClient == nil {
		cfg.httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	v := &Verifier{
		issuer:     issuer,
		issuerHTTP: u.Scheme == "http",
		cfg:        cfg,
		algs:       make(map[string]bool),
	}
	for _, a := range cfg.algs {
		v.algs[a] = true
	}
	if cfg.keySetJSON != nil {
		ks, err := parseJWKS(cfg.keySetJSON)
		if err != nil {
			return nil, fmt.Errorf("verify: WithKeySet: %w", err)
		}
		v.static = ks
	}
	for name := range cfg.expected {
		v.expected = append(v.expected, name)
	}
	slices.Sort(v.expected) // a stable order gives a stable error for several mismatches
	return v, nil
}

// Issuer returns the issuer the verifier was built for.
func (v *Verifier) Issuer() string { return v.issuer }

// Verify checks token and returns it decoded. It checks, in order: syntax
// and size; alg against the allow-list; kid against the issuer's key set
// (refetching it once, rate-limited, when kid is unknown); jku against the
// discovered jwks_uri; the signature; iss; exp, nbf and iat; the simulated
// marker; the expected claims. Every error is an *Error; CodeOf gives its
// code.
//
// Keys carried in the token itself (jwk, x5c, x5u headers) are ignored and
// jku is never fetched: a token cannot vouch for its own signer.
func (v *Verifier) Verify(ctx context.Context, token string) (*Token, error) {
	if ctx == nil {
		ctx = context.Background() // a nil context must not panic below
	}
	p, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	alg := p.header.Alg
	switch {
	case alg == "":
		return nil, newError(CodeMalformedToken, nil, "header has no alg")
	case strings.EqualFold(alg, "none"):
		return nil, newError(CodeUnsupportedAlgorithm, nil, "unsigned tokens (alg %q) are never accepted", alg)
	case !v.algs[alg]:
		return nil, newError(CodeUnsupportedAlgorithm, nil, "alg %q is not allowed (allowed: %s)", alg, strings.Join(v.cfg.algs, ", "))
	}
	kid := p.header.Kid
	if kid == "" {
		// Trying every key would let any key in the set vouch for any
		// token; MAA and attestd always send kid.
		return nil, newError(CodeUnknownKey, nil, "header has no kid")
	}

	var cands []*jwk
	if v.static != nil {
		cands = v.static.lookup(kid)
	} else {
		s, err := v.load(ctx, kid)
		if err != nil {
			return nil, err
		}
		if p.hasJKU && p.header.JKU != s.jwksURI {
			return nil, newError(CodeUntrustedJKU, nil, "jku %q is not the issuer's jwks_uri %q", p.header.JKU, s.jwksURI)
		}
		cands = s.keys.lookup(kid)
	}
	if len(cands) == 0 {
		return nil, newError(CodeUnknownKey, nil, "no key with kid %q in the issuer's key set", kid)
	}

	now := v.cfg.now()
	if err := v.checkSignature(p, cands, now); err != nil {
		return nil, err
	}
	if err := v.checkClaims(p.claims, now); err != nil {
		return nil, err
	}
	return &Token{Raw: token, Header: p.header, Claims: p.claims}, nil
}

// checkSignature verifies p's signature under one of the keys its kid
// selects. Several keys may share a kid (a publisher rolling an RSA key and
// an EC key under one id); any one of them that fits alg may verify.
func (v *Verifier) checkSignature(p *parsed, cands []*jwk, now time.Time) error {
	alg := p.header.Alg
	a, _ := jose.Lookup(alg) // alg is on the allow-list, which holds only known names
	var errs []*Error
	for _, k := range cands {
		switch {
		case k.err != nil:
			errs = append(errs, newError(CodeInvalidKey, k.err, "key %q is unusable", k.kid))
			continue
		case !k.notBefore.IsZero() && now.Before(k.notBefore):
			errs = append(errs, newError(CodeInvalidKey, nil, "certificate of key %q is not valid before %s", k.kid, k.notBefore.UTC().Format(time.RFC3339)))
			continue
		case !k.notAfter.IsZero() && now.After(k.notAfter):
			errs = append(errs, newError(CodeInvalidKey, nil, "certificate of key %q expired at %s", k.kid, k.notAfter.UTC().Format(time.RFC3339)))
			continue
		case k.alg != "" && k.alg != alg:
			errs = append(errs, newError(CodeBadSignature, nil, "key %q is for alg %q, token uses %q", k.kid, k.alg, alg))
			continue
		}
		valid, fits := a.Verify(k.key, p.signingInput, p.sig)
		if !fits {
			errs = append(errs, newError(CodeBadSignature, nil, "key %q (%s) does not fit alg %q", k.kid, keyType(k.key), alg))
			continue
		}
		if valid {
			return nil
		}
		errs = append(errs, newError(CodeBadSignature, nil, "signature does not verify under key %q", k.kid))
	}
	// A signature failure says more than an unusable sibling key.
	for _, e := range errs {
		if e.Code == CodeBadSignature {
			return e
		}
	}
	return errs[0]
}

func (v *Verifier) checkClaims(claims map[string]any, now time.Time) error {
	if iss, _ := claims["iss"].(string); iss != v.issuer {
		return newError(CodeWrongIssuer, nil, "iss %s is not %q", describe(claims["iss"]), v.issuer)
	}

	// Compare in float seconds: NumericDate may have a fraction (RFC 7519
	// §2), and float64 holds every plausible date exactly enough.
	nowSec := float64(now.Unix()) + float64(now.Nanosecond())/1e9
	leeway := v.cfg.leeway.Seconds()
	exp, ok, err := numericDate(claims, "exp")
	if err != nil {
		return err
	}
	if !ok {
		return newError(CodeMalformedToken, nil, "claim exp is missing")
	}
	if !(nowSec < exp+leeway) {
		return newError(CodeExpired, nil, "token expired at %s", formatDate(exp))
	}
	nbf, ok, err := numericDate(claims, "nbf")
	if err != nil {
		return err
	}
	if ok && nbf > nowSec+leeway {
		return newError(CodeNotYetValid, nil, "token is not valid before %s", formatDate(nbf))
	}
	iat, ok, err := numericDate(claims, "iat")
	if err != nil {
		return err
	}
	if ok && iat > nowSec+leeway {
		return newError(CodeNotYetValid, nil, "token is issued in the future, at %s", formatDate(iat))
	}

	// Anything but an explicit false counts as simulated: a malformed
	// marker must not let simulated evidence pass as real.
	if sim, ok := claims[SimulatedClaim]; ok && sim != false && !v.cfg.allowSimulated {
		return newError(CodeSimulatedEvidence, nil, "token attests simulated evidence (%s), and simulated evidence is not allowed", SimulatedClaim)
	}

	for _, name := range v.expected {
		want := v.cfg.expected[name]
		got, ok := claims[name]
		if !ok {
			return newError(CodeClaimMismatch, nil, "claim %q is missing", name)
		}
		if !reflect.DeepEqual(got, want) {
			return newError(CodeClaimMismatch, nil, "claim %q is %s, want %s", name, describe(got), describe(want))
		}
	}
	return nil
}

func numericDate(claims map[string]any, name string) (float64, bool, error) {
	raw, ok := claims[name]
	if !ok {
		return 0, false, nil
	}
	f, ok := raw.(float64)
	if !ok {
		return 0, false, newError(CodeMalformedToken, nil, "claim %s is not a number", name)
	}
	return f, true, nil
}

func formatDate(sec float64) string {
	if sec > -1e11 && sec < 1e11 {
		return time.Unix(int64(sec), 0).UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%g", sec)
}

// describe renders a claim value for an error message, bounded so that a
// hostile claim cannot flood logs.
func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%T", v)
	}
	if len(b) > 100 {
		return string(b[:100]) + "…"
	}
	return string(b)
}

func keyType(k any) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", k), "*")
}

// normalizeJSON turns v into the form encoding/json decodes claims into
// (map[string]any, []any, float64, string, bool, nil), so that expected
// values compare with reflect.DeepEqual as JSON values.
func normalizeJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// load returns the issuer's metadata and key set, fetching them when there
// are none yet or they are older than the cache TTL. When kid is not in the
// set it refetches the key set once, unless an unknown kid already did so
// within the refresh interval. Concurrent callers share one fetch.
func (v *Verifier) load(ctx context.Context, kid string) (*snapshot, error) {
	fetched := false // a fetch finished (by this call or another) since this call began
	for {
		v.mu.Lock()
		now := v.cfg.now()
		s := v.snap
		fresh := s != nil && !v.stale(s.metaAt, now) && !v.stale(s.keysAt, now)
		// A fresh set holding kid is used even while another caller
		// refetches: a flood of unknown kids must not delay, or fail,
		// tokens that are fine. After a fetch the set is used however
		// stale it already is (a tiny TTL, a jumping clock): one fetch per
		// call is enough.
		if s != nil && (fetched || fresh && len(s.keys.lookup(kid)) > 0) {
			v.mu.Unlock()
			return s, nil
		}
		if f := v.fl; f != nil {
			v.mu.Unlock()
			retry, err := v.wait(ctx, f)
			if err != nil {
				return nil, err
			}
			fetched = !retry
			continue
		}
		var full bool
		switch {
		case s == nil || v.stale(s.metaAt, now):
			full = true
		case v.stale(s.keysAt, now):
		case !v.kidAt.IsZero() && now.Sub(v.kidAt) < v.cfg.refreshInterval:
			// Rate-limited: the caller reports unknown_key.
			v.mu.Unlock()
			return s, nil
		default:
			v.kidAt = now
		}
		if err := v.lead(ctx, s, full); err != nil {
			return nil, err
		}
		fetched = true
	}
}

// stale reports whether something fetched at t is past the cache TTL. A
// clock that went backwards leaves the cache fresh.
func (v *Verifier) stale(t, now time.Time) bool {
	return now.Sub(t) >= v.cfg.cacheTTL
}

// lead runs a fetch as the leader of a flight. It is called with v.mu held
// and returns with it released. With full it runs discovery and fetches the
// key set; otherwise it fetches only the key set, from prev's jwks_uri.
func (v *Verifier) lead(ctx context.Context, prev *snapshot, full bool) (err error) {
	f := &flight{done: make(chan struct{})}
	v.fl = f
	v.mu.Unlock()

	var s *snapshot
	// Deferred so that the flight ends even if the fetch panics (in a
	// caller-supplied RoundTripper, say); otherwise every later caller
	// would wait on it forever.
	defer func() {
		v.mu.Lock()
		if s != nil && err == nil {
			v.snap = s
		} else {
			if err == nil {
				err = newError(CodeKeyUnavailable, nil, "fetching the issuer's keys was interrupted")
			}
			f.err = err
			f.canceled = ctx.Err() != nil
		}
		v.fl = nil
		close(f.done)
		v.mu.Unlock()
	}()
	s, err = v.fetch(ctx, prev, full)
	return err
}

// wait waits for another caller's flight. retry is true when that flight
// failed only because its leader's context ended, which says nothing about
// the issuer: the caller should look again (and may lead a new fetch).
func (v *Verifier) wait(ctx context.Context, f *flight) (retry bool, err error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return false, newError(CodeKeyUnavailable, ctx.Err(), "waiting for the issuer's key set")
	}
	if f.err != nil {
		if f.canceled && ctx.Err() == nil {
			return true, nil
		}
		return false, f.err
	}
	return false, nil
}

func (v *Verifier) fetch(ctx context.Context, prev *snapshot, full bool) (*snapshot, error) {
	s := &snapshot{}
	if full || prev == nil {
		uri, err := v.discover(ctx)
		if err != nil {
			return nil, err
		}
		s.jwksURI, s.metaAt = uri, v.cfg.now()
	} else {
		s.jwksURI, s.metaAt = prev.jwksURI, prev.metaAt
	}
	body, err := v.get(ctx, s.jwksURI, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, newError(CodeKeyUnavailable, err, "fetching the key set")
	}
	ks, err := parseJWKS(body)
	if err != nil {
		return nil, newError(CodeKeyUnavailable, err, "parsing the key set from %s", s.jwksURI)
	}
	s.keys, s.keysAt = ks, v.cfg.now()
	return s, nil
}

// discover reads the issuer's OpenID metadata and returns its jwks_uri.
func (v *Verifier) discover(ctx context.Context) (string, error) {
	metaURL := v.issuer + "/.well-known/openid-configuration"
	body, err := v.get(ctx, metaURL, "application/json")
	if err != nil {
		return "", newError(CodeKeyUnavailable, err, "fetching the OpenID metadata")
	}
	var meta struct {
		Issuer  *string `json:"issuer"`
		JWKSURI string  `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return "", newError(CodeKeyUnavailable, err, "parsing the OpenID metadata from %s", metaURL)
	}
	// OpenID Connect Discovery §4.3: the metadata's issuer must be the one
	// it was fetched for, or an impostor's keys could be trusted for it.
	if meta.Issuer != nil && *meta.Issuer != v.issuer {
		return "", newError(CodeWrongIssuer, nil, "OpenID metadata names issuer %q, not %q", *meta.Issuer, v.issuer)
	}
	u, err := url.Parse(meta.JWKSURI)
	if err != nil || meta.JWKSURI == "" {
		return "", newError(CodeKeyUnavailable, err, "OpenID metadata has no valid jwks_uri")
	}
	// Keys fetched over plain http are only as good as the network; allow
	// that only when the issuer itself is plain http (a development setup).
	if !(u.Scheme == "https" || u.Scheme == "http" && v.issuerHTTP) || u.Host == "" {
		return "", newError(CodeKeyUnavailable, nil, "jwks_uri %q is not an https URL", meta.JWKSURI)
	}
	return meta.JWKSURI, nil
}

// get fetches url and returns its body, refusing non-200 answers and bodies
// over MaxBodySize.
func (v *Verifier) get(ctx context.Context, url, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := v.cfg.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > MaxBodySize {
		return nil, errors.New("GET " + url + ": body larger than 1 MiB")
	}
	return body, nil
}
