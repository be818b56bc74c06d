// Package service is attestd's attestation pipeline: decoded request ->
// evidence verification -> runtime-data binding -> policy -> signed token.
// It knows nothing of HTTP beyond the status its errors carry.
package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/openenclave"
	"github.com/attestd/attestd/token"
)

// DefaultTokenLifetime is MAA's attestation token lifetime.
const DefaultTokenLifetime = 8 * time.Hour

// KeyProvider yields the key that signs new tokens.
type KeyProvider interface {
	ActiveKey() (*token.Key, error)
}

// Observer is told about decisions and signatures, for metrics. A nil
// Observer in Config is replaced by one that ignores everything.
type Observer interface {
	PolicyDecision(t AttestationType, permit bool)
	TokenSigned(kind string)
}

// DevMode makes the service accept simulator evidence. Never on by default.
type DevMode struct {
	// Root is the simulator root CA to trust, besides Intel's.
	Root *x509.Certificate
	// Collateral serves the simulator's collateral.
	Collateral CollateralSource
	// Keys signs tokens for simulated evidence. It must not be the
	// production key: the simulator's seed is public, so a token it vouches
	// for proves nothing, and clients that ignore x-attestd-simulated (every
	// MAA client does) must not be able to mistake it for a real one once
	// dev mode is off.
	Keys KeyProvider
}

// Config configures a Service.
type Config struct {
	// Issuer is the public base URL: the tokens' iss, and jku's base.
	Issuer        string
	TokenLifetime time.Duration
	Clock         func() time.Time
	Keys          KeyProvider
	// Collateral serves collateral for real (Intel-rooted) quotes.
	Collateral CollateralSource
	// TrustRoot replaces Intel's SGX Root CA; only tests set it.
	TrustRoot *x509.Certificate
	// Dev, when not nil, enables dev mode.
	Dev      *DevMode
	Policies PolicyEvaluator
	Observer Observer
	// Random feeds token ids; nil means crypto/rand.
	Random io.Reader
	// VerifierCacheSize bounds each DCAP verifier's caches (0: default).
	VerifierCacheSize int
	// MaxConcurrent bounds the attestations in progress (verification and
	// signing are CPU-bound; more at once only lengthens the latency tail).
	// Zero means twice GOMAXPROCS. Callers beyond it wait their turn, in
	// arrival order, for at most MaxQueueWait (default 10 s), and at most
	// MaxQueue of them (default 64 per slot); beyond either the answer is
	// 503 overloaded, so an overloaded server sheds load instead of doing
	// work whose response can no longer be written.
	MaxConcurrent int
	MaxQueueWait  time.Duration
	MaxQueue      int
}

// Service runs attestations. It is safe for concurrent use.
type Service struct {
	cfg     Config
	quotes  *quoteVerifier
	slots   chan struct{}
	waiting atomic.Int64
}

type nopObserver struct{}

func (nopObserver) PolicyDecision(AttestationType, bool) {}
func (nopObserver) TokenSigned(string)                   {}

// New checks cfg and builds a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("service: no issuer")
	}
	if cfg.Keys == nil {
		return nil, errors.New("service: no signing keys")
	}
	if cfg.Collateral == nil {
		return nil, errors.New("service: no collateral source")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Policies == nil {
		b, err := NewBuiltinPolicies()
		if err != nil {
			return nil, err
		}
		cfg.Policies = b
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	opts := []dcap.Option{dcap.WithClock(cfg.Clock)}
	if cfg.VerifierCacheSize > 0 {
		opts = append(opts, dcap.WithCacheSize(cfg.VerifierCacheSize))
	}
	intelOpts := opts
	if cfg.TrustRoot != nil {
		intelOpts = append(append([]dcap.Option{}, opts...), dcap.WithTrustRoot(cfg.TrustRoot))
	}
	qv := &quoteVerifier{intel: dcap.NewVerifier(intelOpts...), intelCollateral: cfg.Collateral}
	if cfg.Dev != nil {
		if cfg.Dev.Root == nil || cfg.Dev.Collateral == nil || cfg.Dev.Keys == nil {
			return nil, errors.New("service: dev mode needs the simulator root, its collateral and a signing key of its own")
		}
		qv.sim = dcap.NewVerifier(append(append([]dcap.Option{}, opts...), dcap.WithTrustRoot(cfg.Dev.Root))...)
		qv.simRoot = cfg.Dev.Root
		qv.simCollateral = cfg.Dev.Collateral
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 2 * runtime.GOMAXPROCS(0)
	}
	if cfg.MaxQueueWait <= 0 {
		cfg.MaxQueueWait = 10 * time.Second
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 64 * cfg.MaxConcurrent
	}
	return &Service{cfg: cfg, quotes: qv, slots: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// Issuer returns the configured issuer.
func (s *Service) Issuer() string { return s.cfg.Issuer }

// Result is a successful attestation.
type Result struct {
	Token     string
	Claims    map[string]any
	Simulated bool
	Evidence  *Evidence
}

// Attest verifies the request's evidence, checks the runtime and init-time
// data bindings, applies the policy and returns the signed token.
func (s *Service) Attest(ctx context.Context, req *Request) (*Result, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-s.slots }()
	quote := req.Evidence
	if req.Type == TypeOpenEnclave {
		var err error
		if quote, err = openenclave.Unwrap(req.Evidence); err != nil {
			return nil, BadRequest("malformed_report", "%v", err)
		}
	}
	ev, err := s.quotes.verify(ctx, quote)
	if err != nil {
		return nil, err
	}
	if err := checkEvidenceType(req.Type, ev.Result.Quote); err != nil {
		return nil, err
	}
	claims := evidenceClaims(ev, req.Evidence)
	bound, err := bindData(req, ev.Result.Quote)
	if err != nil {
		return nil, err
	}
	claims = append(claims, bound...)
	if ev.Simulated {
		claims = append(claims, Claim{ClaimSimulated, true})
	}

	decision, err := s.cfg.Policies.Evaluate(ctx, req.Type, req.DraftPolicy, withLegacyClaims(claims))
	if err != nil {
		return nil, err
	}
	s.cfg.Observer.PolicyDecision(req.Type, decision.Permit)
	if !decision.Permit {
		why := decision.Reason
		if why == "" {
			why = "a Deny claim was issued, or no rule permitted it"
		}
		return nil, &Error{Status: http.StatusBadRequest, Code: CodePolicyEvaluationError, Reason: "policy_denied",
			Message: "the attestation policy did not permit this evidence: " + why}
	}

	now := s.cfg.Clock().UTC().Truncate(time.Second)
	body := make(map[string]any, len(claims)+2*len(decision.Issued)+8)
	for _, c := range claims {
		body[c.Type] = c.Value
	}
	if q := ev.Result.Quote; q.Enclave != nil {
		// Legacy copies MAA still emits.
		body["maa-attestationcollateral"] = body["x-ms-sgx-collateral"]
		if ehd, ok := body["x-ms-sgx-ehd"]; ok {
			body["maa-ehd"] = ehd
			body["aas-ehd"] = ehd
		}
	}
	body["x-ms-policy-hash"] = decision.Hash
	if decision.Signer != nil {
		body["x-ms-policy-signer"] = signerJWK(decision.Signer)
	}
	if len(decision.Issued) > 0 {
		issued := issuedClaims(decision.Issued)
		for k, v := range issued {
			// A policy adds claims; it never rewrites what the evidence or
			// the service says. An issued claim whose name is taken, or
			// reserved, stays under x-ms-policy only.
			if _, taken := body[k]; taken || reservedClaim(k) {
				continue
			}
			body[k] = v
		}
		body["x-ms-policy"] = issued
	}
	jti := make([]byte, 32)
	if _, err := io.ReadFull(s.cfg.Random, jti); err != nil {
		return nil, fmt.Errorf("service: token id: %w", err)
	}
	body["jti"] = hex.EncodeToString(jti)
	body["iss"] = s.cfg.Issuer
	body["iat"] = now.Unix()
	body["nbf"] = now.Unix()
	lifetime := s.cfg.TokenLifetime
	if decision.TokenLifetime > 0 {
		lifetime = decision.TokenLifetime
	}
	body["exp"] = now.Add(lifetime).Unix()
	if req.Nonce != "" {
		body["nonce"] = req.Nonce
	}

	var tok string
	if decision.Draft {
		// MAA: a token shaped by a draft policy is unsecured and must not
		// pass as a production token.
		body[ClaimDraftPolicy] = true
		tok, err = token.UnsecuredJWS(body)
		s.cfg.Observer.TokenSigned("unsecured")
	} else {
		keys := s.cfg.Keys
		if ev.Simulated {
			keys = s.cfg.Dev.Keys
		}
		var key *token.Key
		if key, err = keys.ActiveKey(); err != nil {
			return nil, fmt.Errorf("service: signing key: %w", err)
		}
		tok, err = token.SignWithHeader(key, token.JWKSURL(s.cfg.Issuer), body, token.HeaderCertificate(decision.HeaderCertificate))
		s.cfg.Observer.TokenSigned("attestation")
	}
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return &Result{Token: tok, Claims: body, Simulated: ev.Simulated, Evidence: ev}, nil
}

// overloaded is the refusal of a request that found the queue full or
// waited too long for a slot.
func overloaded() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Reason: "overloaded",
		Message: "the service is overloaded; retry shortly"}
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	if s.waiting.Add(1) > int64(s.cfg.MaxQueue) {
		s.waiting.Add(-1)
		return overloaded()
	}
	defer s.waiting.Add(-1)
	timer := time.NewTimer(s.cfg.MaxQueueWait)
	defer timer.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return overloaded()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func checkEvidenceType(t AttestationType, q *dcap.Quote) error {
	switch {
	case t == TypeTDX && q.TD == nil:
		return BadRequest("evidence_type_mismatch", "the evidence is an SGX enclave quote; send it to /attest/SgxEnclave")
	case t != TypeTDX && q.Enclave == nil:
		return BadRequest("evidence_type_mismatch", "the evidence is a TDX quote; send it to /attest/TdxVm")
	}
	return nil
}

// bindData checks that runtime data is bound into the report data and
// init-time data into the enclave's CONFIGID (SGX) or the TD's MRCONFIGID,
// as SHA-256 of the data in the first 32 bytes (MAA's binding), and returns
// the claims that carry the data.
func bindData(req *Request, q *dcap.Quote) ([]Claim, error) {
	var out []Claim
	if d := req.RuntimeData; d != nil {
		rd := q.ReportData()
		sum := sha256.Sum256(d.Bytes)
		if subtle.ConstantTimeCompare(sum[:], rd[:32]) != 1 {
			return nil, BadRequest("runtime_data_mismatch",
				"SuppliedRuntimeDataDigest does not match RuntimeData Digest in quote: SHA-256 of runtimeData is %x, the report data begins %x", sum, rd[:32])
		}
		c, err := dataClaims(d, "runtimeData", "x-ms-runtime", q)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	if d := req.InitTimeData; d != nil {
		var target []byte
		if q.Enclave != nil {
			target = q.Enclave.ConfigID[:32]
		} else {
			target = q.TD.MRCONFIGID[:32]
		}
		sum := sha256.Sum256(d.Bytes)
		if subtle.ConstantTimeCompare(sum[:], target) != 1 {
			field := "CONFIGID"
			if q.TD != nil {
				field = "MRCONFIGID"
			}
			return nil, BadRequest("init_time_data_mismatch",
				"SHA-256 of initTimeData is %x, but the quote's %s begins %x", sum, field, target)
		}
		if d.Type == DataJSON {
			v, err := jsonObject(d.Bytes, "initTimeData")
			if err != nil {
				return nil, err
			}
			out = append(out, Claim{"x-ms-inittime", v})
		}
	}
	return out, nil
}

func dataClaims(d *Data, field, jsonClaim string, q *dcap.Quote) ([]Claim, error) {
	if d.Type == DataJSON {
		v, err := jsonObject(d.Bytes, field)
		if err != nil {
			return nil, err
		}
		return []Claim{{jsonClaim, v}}, nil
	}
	if q.Enclave != nil {
		return []Claim{{"x-ms-sgx-ehd", b64url(d.Bytes)}}, nil
	}
	return []Claim{{ClaimRuntimeData, b64url(d.Bytes)}}, nil
}

// jsonObject parses JSON runtime or init-time data for its claim. The hash
// binds the bytes, so the claim must say exactly what they say: numbers
// keep their digits (json.Number) and duplicate member names, which
// parsers resolve differently, are refused.
func jsonObject(b []byte, field string) (map[string]any, error) {
	if err := checkNoDuplicateKeys(b); err != nil {
		return nil, BadRequest("invalid_json_data", "%s: %v", field, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil || v == nil || dec.More() {
		return nil, BadRequest("invalid_json_data", "%s has dataType JSON but is not a JSON object", field)
	}
	return v, nil
}

// checkNoDuplicateKeys walks a JSON text and fails on an object with a
// member name twice.
func checkNoDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next string token in this object is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // syntax errors are reported by the real decode
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if name, ok := tok.(string); ok {
				if top.seen[name] {
					return fmt.Errorf("member %q appears twice", name)
				}
				top.seen[name] = true
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		// A scalar value: in an object, a member name comes next.
		if top != nil && top.object {
			top.key = true
		}
	}
}

// ManagementTokenLifetime is the lifetime of the tokens that answer policy
// and certificate management calls: MAA's, an hour.
const ManagementTokenLifetime = time.Hour

// SignManagementResponse wraps the result of a management call in a token
// signed by the production key, as MAA answers those calls: claims plus
// iss, iat, nbf and exp.
func (s *Service) SignManagementResponse(claims map[string]any) (string, error) {
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	body := make(map[string]any, len(claims)+4)
	for k, v := range claims {
		body[k] = v
	}
	body["iss"] = s.cfg.Issuer
	body["iat"] = now.Unix()
	body["nbf"] = now.Unix()
	body["exp"] = now.Add(ManagementTokenLifetime).Unix()
	key, err := s.cfg.Keys.ActiveKey()
	if err != nil {
		return "", fmt.Errorf("service: signing key: %w", err)
	}
	tok, err := token.Sign(key, token.JWKSURL(s.cfg.Issuer), body)
	if err != nil {
		return "", fmt.Errorf("service: %w", err)
	}
	s.cfg.Observer.TokenSigned("management")
	return tok, nil
}
