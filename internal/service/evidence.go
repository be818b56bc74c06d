package service

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

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
	chain, err := dcap.ParsePEMChain(q.PCKChainPEM)
	if err != nil || len(chain.Certs) == 0 {
		return nil, evidenceError(&dcap.Error{Code: dcap.CodePCKChainInvalid, Message: "the quote's PCK certificate chain cannot be parsed", Err: err})
	}
	ext, err := dcap.ParsePCKExtension(chain.Certs[0])
	if err != nil {
		return nil, evidenceError(err)
	}
	verifier, source, simulated := qv.intel, qv.intelCollateral, false
	if qv.sim != nil && namesRoot(chain.Certs, qv.simRoot) {
		verifier, source, simulated = qv.sim, qv.simCollateral, true
	}
	col, err := source.Collateral(ctx, q.TEE(), ext.FMSPC)
	if err != nil {
		if errors.Is(err, ErrNoCollateral) {
			// A chain that does not even lead to a trusted root is the
			// more useful answer than missing collateral.
			if !namesRoot(chain.Certs, verifier.TrustRoot()) {
				return nil, evidenceError(&dcap.Error{Code: dcap.CodePCKChainInvalid,
					Message: "the quote's PCK certificate chain does not lead to a trusted root"})
			}
			return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Reason: "collateral_unavailable",
				Message: fmt.Sprintf("no collateral is configured for %s platforms with FMSPC %x", teeName(q.TEE()), ext.FMSPC), Err: err}
		}
		return nil, err
	}
	res, err := verifier.Verify(ctx, q, col)
	if err != nil {
		return nil, evidenceError(err)
	}
	return &Evidence{Result: res, Simulated: simulated}, nil
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
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Reason: string(dcap.CodeOf(err)),
		Message: "evidence rejected", Err: err}
}
