package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/attestd/attestd/evidence/dcap"
)

// Evidence is verified evidence: the verifier's result and whether it came
// from the simulator (dev mode only).
type Evidence struct {
	Result    *dcap.Result
	Simulated bool
}

// quoteVerifier checks DCAP quotes. Real quotes go to the verifier pinned
// to Intel's root with the configured collateral. In dev mode, quotes whose
// PCK chain names the simulator's root go to a second verifier that trusts
// only that root, with the simulator's collateral; which verifier accepted a
// quote decides whether the token says it was simulated, so a simulated quote
// can never pass as real.
type quoteVerifier struct {
	// routes caches, per PCK chain, what routing needs from it (its FMSPC
	// and whether it names the simulator root), so the chain is not parsed
	// again on every request from a known platform. Only routing uses it;
	// the verifier checks the chain itself (and caches that work).
	routes routeCache

	intel           *dcap.Verifier
	intelCollateral CollateralSource
	sim             *dcap.Verifier // nil unless dev mode
	simRoot         *x509.Certificate
	simCollateral   CollateralSource
}

func (qv *quoteVerifier) verify(ctx context.Context, raw []byte) (*Evidence, error) {
	q, err := dcap.ParseQuote(raw)
	if err != nil {
		return nil, evidenceError(err)
	}
	rt, err := qv.route(q.PCKChainPEM)
	if err != nil {
		return nil, err
	}
	verifier, source, simulated := qv.intel, qv.intelCollateral, false
	if rt.simulated {
		verifier, source, simulated = qv.sim, qv.simCollateral, true
	}
	col, err := source.Collateral(ctx, q.TEE(), rt.fmspc)
	if err != nil {
		if errors.Is(err, ErrNoCollateral) {
			// A chain that does not even lead to a trusted root is the
			// more useful answer than missing collateral.
			if !rt.intelRooted && !rt.simulated {
				return nil, evidenceError(&dcap.Error{Code: dcap.CodePCKChainInvalid,
					Message: "the quote's PCK certificate chain does not lead to a trusted root"})
			}
			return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Reason: "collateral_unavailable",
				Message: fmt.Sprintf("no collateral is configured for %s platforms with FMSPC %x", teeName(q.TEE()), rt.fmspc), Err: err}
		}
		return nil, err
	}
	res, err := verifier.Verify(ctx, q, col)
	if err != nil {
		return nil, evidenceError(err)
	}
	return &Evidence{Result: res, Simulated: simulated}, nil
}

// route is what routing learns from a PCK chain.
type route struct {
	fmspc       [6]byte
	simulated   bool // names the simulator root (dev mode only)
	intelRooted bool // names the real trust root
}

// routeCacheSize bounds the routing cache: one entry per platform (PCK
// certificate) seen; when full it starts over.
const routeCacheSize = 4096

type routeCache struct {
	mu      sync.RWMutex
	entries map[[32]byte]route
}

func (qv *quoteVerifier) route(chainPEM []byte) (route, error) {
	key := sha256.Sum256(chainPEM)
	qv.routes.mu.RLock()
	rt, ok := qv.routes.entries[key]
	qv.routes.mu.RUnlock()
	if ok {
		return rt, nil
	}
	chain, err := dcap.ParsePEMChain(chainPEM)
	if err != nil || len(chain.Certs) == 0 {
		return route{}, evidenceError(&dcap.Error{Code: dcap.CodePCKChainInvalid, Message: "the quote's PCK certificate chain cannot be parsed", Err: err})
	}
	ext, err := dcap.ParsePCKExtension(chain.Certs[0])
	if err != nil {
		return route{}, evidenceError(&dcap.Error{Code: dcap.CodePCKChainInvalid,
			Message: "the first certificate of the quote's PCK chain is not a PCK certificate: " + err.Error(), Err: err})
	}
	rt = route{fmspc: ext.FMSPC, intelRooted: namesRoot(chain.Certs, qv.intel.TrustRoot())}
	if qv.sim != nil && namesRoot(chain.Certs, qv.simRoot) {
		rt.simulated = true
	}
	qv.routes.mu.Lock()
	if qv.routes.entries == nil || len(qv.routes.entries) >= routeCacheSize {
		qv.routes.entries = make(map[[32]byte]route)
	}
	qv.routes.entries[key] = rt
	qv.routes.mu.Unlock()
	return rt, nil
}

// namesRoot reports whether a chain ends in root or in a certificate
// issued by it. It only routes the quote; the verifier does the checking.
func namesRoot(certs []*x509.Certificate, root *x509.Certificate) bool {
	top := certs[len(certs)-1]
	if bytes.Equal(top.Raw, root.Raw) {
		return true
	}
	return bytes.Equal(top.RawIssuer, root.RawSubject) && len(top.AuthorityKeyId) > 0 &&
		bytes.Equal(top.AuthorityKeyId, root.SubjectKeyId)
}

func teeName(t dcap.TEEType) string {
	if t == dcap.TEETDX {
		return "TDX"
	}
	return "SGX"
}

// evidenceError turns a verifier rejection into a 400 whose reason is the
// verifier's stable code. Its message names the check that failed and
// holds nothing secret, so it is shown to the caller.
func evidenceError(err error) error {
	var de *dcap.Error
	if errors.As(err, &de) {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Reason: string(de.Code),
			Message: "evidence rejected: " + de.Message, Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	reason := string(dcap.CodeOf(err))
	if reason == "" {
		// Every rejection carries a stable reason, even one the verifier
		// did not classify.
		reason = "evidence_rejected"
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Reason: reason,
		Message: "evidence rejected", Err: err}
}
