package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/attestd/attestd/internal/auth"
	"github.com/attestd/attestd/internal/policies"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/token"
)

// MaxManagementBody bounds a policy or certificate document. A policy is
// at most policy.DefaultLimits().MaxTextBytes of text, which base64 twice
// and a certificate chain keep well under this.
const MaxManagementBody = token.MaxJWSBytes

// PolicyManager carries out the management operations (internal/policies).
type PolicyManager interface {
	Get(ctx context.Context, t service.AttestationType) (*policies.Current, error)
	Set(ctx context.Context, t service.AttestationType, document, who string) (*policies.ChangeResult, error)
	Reset(ctx context.Context, t service.AttestationType, document, who string) (*policies.ChangeResult, error)
	Certificates(ctx context.Context) ([]*x509.Certificate, error)
	AddCertificate(ctx context.Context, document, who string) (*policies.CertificateResult, error)
	RemoveCertificate(ctx context.Context, document, who string) (*policies.CertificateResult, error)
}

// Authorizer authenticates a bearer token and checks its role
// (internal/auth).
type Authorizer interface {
	Authorize(ctx context.Context, authorization string, need auth.Role) (*auth.Principal, error)
}

// ResponseSigner signs the tokens that answer management calls.
type ResponseSigner interface {
	SignManagementResponse(claims map[string]any) (string, error)
}

func (s *Server) routeManagement(mux *http.ServeMux) {
	mux.HandleFunc("GET /policies/{type}", s.handleGetPolicy)
	mux.HandleFunc("PUT /policies/{type}", s.handleSetPolicy)
	// POST /policies/SgxEnclave:reset: the ":reset" is part of the path
	// segment, so the type is split from it here.
	mux.HandleFunc("POST /policies/{type}", s.handleResetPolicy)
	mux.HandleFunc("GET /certificates", s.handleGetCertificates)
	mux.HandleFunc("POST /certificates:add", s.handleCertificateChange(true))
	mux.HandleFunc("POST /certificates:remove", s.handleCertificateChange(false))
}

// managementCall runs the checks every management call shares: the
// caller's role, then api-version. It returns the principal, or writes the
// error and returns nil.
func (s *Server) managementCall(w http.ResponseWriter, r *http.Request, need auth.Role) *auth.Principal {
	if s.cfg.Policies == nil {
		writeError(w, &service.Error{Status: http.StatusNotFound, Code: "NotFound", Reason: "management_disabled",
			Message: "policy management is not enabled on this attestd"})
		return nil
	}
	p, err := s.authorize(r, need)
	if err != nil {
		s.writeAuthError(w, r, err)
		return nil
	}
	if e := checkAPIVersion(r); e != nil {
		writeError(w, e)
		return nil
	}
	return p
}

// authorize checks the request's bearer token for need. Without an
// authenticator every management call is refused: the API is closed until
// an operator configures who may use it.
func (s *Server) authorize(r *http.Request, need auth.Role) (*auth.Principal, error) {
	if s.cfg.Auth == nil {
		return nil, &auth.Error{Status: http.StatusUnauthorized, Reason: "auth_not_configured",
			Msg: "no credentials are configured on this attestd (start it with --admin-token-file or --oidc-issuer)"}
	}
	return s.cfg.Auth.Authorize(r.Context(), r.Header.Get("Authorization"), need)
}

func (s *Server) writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		s.cfg.Logger.Error("authorization failed", "path", r.URL.Path, "error", err)
		writeError(w, &service.Error{Status: http.StatusInternalServerError, Code: service.CodeInternalError, Reason: "internal",
			Message: "the service failed to check the caller's credentials"})
		return
	}
	s.cfg.Metrics.authFailures.WithLabelValues(ae.Reason).Inc()
	s.cfg.Logger.Info("call refused: credentials", "path", r.URL.Path, "method", r.Method, "reason", ae.Reason,
		"error", err, "request_id", w.Header().Get("x-ms-request-id"))
	code := service.CodeUnauthorized
	if v := ae.WWWAuthenticate(); v != "" {
		w.Header().Set("WWW-Authenticate", v)
	}
	switch ae.Status {
	case http.StatusForbidden:
		code = "Forbidden"
	case http.StatusServiceUnavailable:
		code = "ServiceUnavailable"
	}
	writeError(w, &service.Error{Status: ae.Status, Code: code, Reason: ae.Reason, Message: ae.Msg})
}

// respond signs claims into a management response token.
func (s *Server) respond(w http.ResponseWriter, claims map[string]any) {
	tok, err := s.cfg.Signer.SignManagementResponse(claims)
	if err != nil {
		s.fail(w, "signing a management response", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// fail writes err, logging it when it is the service's fault.
func (s *Server) fail(w http.ResponseWriter, doing string, err error) {
	e := service.AsError(err)
	if e.Status >= 500 {
		s.cfg.Logger.Error(doing+" failed", "error", err, "request_id", w.Header().Get("x-ms-request-id"))
	} else {
		s.cfg.Logger.Info(doing+" refused", "reason", e.Reason, "error", err, "request_id", w.Header().Get("x-ms-request-id"))
	}
	writeError(w, e)
}

func policyType(raw string) (service.AttestationType, *service.Error) {
	t, ok := service.ParseAttestationType(raw)
	if !ok {
		return "", &service.Error{Status: http.StatusNotFound, Code: "NotFound", Reason: "unknown_attestation_type",
			Message: fmt.Sprintf("unknown attestation type %q; supported: SgxEnclave, OpenEnclave, TdxVm", raw)}
	}
	return t, nil
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	if s.managementCall(w, r, auth.RoleReader) == nil {
		return
	}
	t, e := policyType(r.PathValue("type"))
	if e != nil {
		writeError(w, e)
		return
	}
	cur, err := s.cfg.Policies.Get(r.Context(), t)
	if err != nil {
		s.fail(w, "reading a policy", err)
		return
	}
	claims := map[string]any{"x-ms-policy": cur.JWS}
	if cur.Signer != nil {
		claims["x-ms-policy-signer"] = token.NewCertificateJWK(cur.Signer)
	}
	s.respond(w, claims)
}

func (s *Server) handleSetPolicy(w http.ResponseWriter, r *http.Request) {
	p := s.managementCall(w, r, auth.RoleContributor)
	if p == nil {
		return
	}
	t, e := policyType(r.PathValue("type"))
	if e != nil {
		writeError(w, e)
		return
	}
	doc, err := readDocument(w, r)
	if err != nil {
		writeError(w, service.AsError(err))
		return
	}
	res, err := s.cfg.Policies.Set(r.Context(), t, doc, p.Name)
	if err != nil {
		s.fail(w, "setting a policy", err)
		return
	}
	s.cfg.Metrics.policyChanges.WithLabelValues(string(t), "set").Inc()
	claims := map[string]any{"x-ms-policy-result": res.Resolution, "x-ms-policy-token-hash": res.TokenHash}
	if res.Signer != nil {
		claims["x-ms-policy-signer"] = token.NewCertificateJWK(res.Signer)
	}
	s.respond(w, claims)
}

func (s *Server) handleResetPolicy(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutSuffix(r.PathValue("type"), ":reset")
	if !ok {
		w.Header().Set("Allow", "GET, PUT")
		writeError(w, &service.Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Reason: "method_not_allowed",
			Message: fmt.Sprintf("POST is not allowed on %s; use GET or PUT, or POST %s:reset", r.URL.Path, r.URL.Path)})
		return
	}
	p := s.managementCall(w, r, auth.RoleContributor)
	if p == nil {
		return
	}
	t, e := policyType(raw)
	if e != nil {
		writeError(w, e)
		return
	}
	doc, err := readDocument(w, r)
	if err != nil {
		writeError(w, service.AsError(err))
		return
	}
	res, err := s.cfg.Policies.Reset(r.Context(), t, doc, p.Name)
	if err != nil {
		s.fail(w, "resetting a policy", err)
		return
	}
	s.cfg.Metrics.policyChanges.WithLabelValues(string(t), "reset").Inc()
	claims := map[string]any{"x-ms-policy-result": res.Resolution}
	if res.Signer != nil {
		claims["x-ms-policy-signer"] = token.NewCertificateJWK(res.Signer)
	}
	s.respond(w, claims)
}

func (s *Server) handleGetCertificates(w http.ResponseWriter, r *http.Request) {
	if s.managementCall(w, r, auth.RoleReader) == nil {
		return
	}
	certs, err := s.cfg.Policies.Certificates(r.Context())
	if err != nil {
		s.fail(w, "listing policy certificates", err)
		return
	}
	keys := make([]token.CertificateJWK, 0, len(certs))
	for _, c := range certs {
		keys = append(keys, token.NewCertificateJWK(c))
	}
	s.respond(w, map[string]any{"x-ms-policy-certificates": map[string]any{"keys": keys}})
}

func (s *Server) handleCertificateChange(add bool) http.HandlerFunc {
	op := "remove"
	if add {
		op = "add"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p := s.managementCall(w, r, auth.RoleContributor)
		if p == nil {
			return
		}
		change := s.cfg.Policies.RemoveCertificate
		if add {
			change = s.cfg.Policies.AddCertificate
		}
		doc, err := readDocument(w, r)
		if err != nil {
			writeError(w, service.AsError(err))
			return
		}
		res, err := change(r.Context(), doc, p.Name)
		if err != nil {
			s.fail(w, op+" policy certificate", err)
			return
		}
		s.cfg.Metrics.policyChanges.WithLabelValues("certificates", op).Inc()
		result := "IsAbsent"
		if res.Present {
			result = "IsPresent"
		}
		s.respond(w, map[string]any{"x-ms-certificate-thumbprint": res.Thumbprint, "x-ms-policycertificates-result": result})
	}
}

// readDocument reads a management request body: a compact JWS sent raw
// (text/plain, as the SDKs send policies) or as a JSON string literal (as
// the JS SDK sends certificate operations).
func readDocument(w http.ResponseWriter, r *http.Request) (string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxManagementBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", &service.Error{Status: http.StatusRequestEntityTooLarge, Code: service.CodeInvalidParameter,
				Reason: "body_too_large", Message: fmt.Sprintf("the request body exceeds %d bytes", MaxManagementBody)}
		}
		return "", service.BadRequest("unreadable_body", "reading the request body: %v", err)
	}
	if !utf8.Valid(body) {
		return "", invalidDocument("the request body is not UTF-8 text")
	}
	text := strings.TrimSpace(string(body))
	if strings.HasPrefix(text, `"`) {
		var s string
		if err := json.Unmarshal([]byte(text), &s); err != nil {
			return "", invalidDocument("the request body starts like a JSON string but is not one: " + jsonErrorText(err))
		}
		text = strings.TrimSpace(s)
	}
	if text == "" {
		return "", invalidDocument("the request body is empty; send the document as a compact JWS")
	}
	return text, nil
}

func invalidDocument(msg string) *service.Error {
	return &service.Error{Status: http.StatusBadRequest, Code: service.CodeInvalidOperation, Reason: "malformed_jws", Message: msg}
}
