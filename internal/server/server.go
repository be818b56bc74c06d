// Package server is attestd's HTTP API: MAA's routes and wire format, plus
// health, readiness and metrics. It decodes requests, hands them to the
// service, and maps every refusal to MAA's error shape; nothing a client
// sends can produce a 5xx or a panic.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/auth"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/token"
)

// MaxAttestBody is the largest attestation request body accepted. A DCAP
// quote is about 5 KB (7 KB as base64); the rest is room for runtime data.
const MaxAttestBody = 1 << 20

// APIVersions are the api-version values accepted on data-plane calls.
func APIVersions() []string { return []string{"2020-10-01", "2022-08-01", "2025-06-01"} }

// KeySet yields the keys to publish at /certs.
type KeySet interface {
	Published() []*token.Key
}

// Checker reports whether a dependency is ready (the store).
type Checker interface {
	Ping(ctx context.Context) error
}

// Attester runs attestations: the service, as the server sees it.
type Attester interface {
	Attest(ctx context.Context, req *service.Request) (*service.Result, error)
	Issuer() string
}

// Config configures a Server.
type Config struct {
	Service Attester
	Keys    KeySet
	// Ready is checked by /readyz; nil means always ready.
	Ready   Checker
	Metrics *Metrics
	Logger  *slog.Logger
	// Version is reported in x-ms-maa-service-version.
	Version string
	// Policies serves the policy and certificate management routes; nil
	// leaves them disabled (404).
	Policies PolicyManager
	// Signer signs management responses; required with Policies.
	Signer ResponseSigner
	// Auth authenticates management calls (and attest calls when
	// AttestRequiresAuth); nil refuses every management call.
	Auth Authorizer
	// AttestRequiresAuth makes attest calls need a bearer token with the
	// attester role; MAA's attest calls are anonymous, so it is off by
	// default.
	AttestRequiresAuth bool
}

// Server serves the API.
type Server struct {
	cfg     Config
	handler http.Handler
}

// New builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil || cfg.Keys == nil {
		return nil, errors.New("server: service and keys are required")
	}
	if cfg.Policies != nil && cfg.Signer == nil {
		return nil, errors.New("server: policy management needs a response signer")
	}
	if cfg.AttestRequiresAuth && cfg.Auth == nil {
		return nil, errors.New("server: attest calls cannot require a token without an authenticator")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = "attestd"
	}
	s := &Server{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /attest/{type}", s.handleAttest)
	mux.HandleFunc("GET /certs", s.handleCerts)
	mux.HandleFunc("GET /certs/", s.handleCerts)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleMetadata)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", cfg.Metrics.handler())
	s.routeManagement(mux)
	// The same paths with other methods get MAA's error shape and a 405,
	// not the mux's plain-text answer.
	for path, allowed := range map[string]string{
		"/attest/{type}": "POST", "/certs": "GET", "/certs/": "GET", "/.well-known/openid-configuration": "GET",
		"/healthz": "GET", "/readyz": "GET", "/metrics": "GET",
		"/policies/{type}": "GET, PUT", "/certificates": "GET", "/certificates:add": "POST", "/certificates:remove": "POST",
	} {
		mux.HandleFunc(path, methodNotAllowed(allowed))
	}
	mux.HandleFunc("/", s.handleNotFound)
	s.handler = s.middleware(mux)
	return s, nil
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.handler }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// middleware adds MAA's response headers and a request id, logs, counts,
// and turns a panic into a 500 rather than a dropped connection.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID()
		w.Header().Set("x-ms-request-id", id)
		w.Header().Set("x-ms-maa-service-version", s.cfg.Version)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Logger.Error("panic serving request", "request_id", id, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if rec.status == 0 {
					writeError(rec, &service.Error{Status: http.StatusInternalServerError, Code: service.CodeInternalError,
						Reason: "internal", Message: "the service failed to process the request"})
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			s.cfg.Metrics.requests.WithLabelValues(route, fmt.Sprint(rec.status)).Inc()
			s.cfg.Logger.Debug("request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration", time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// requestID makes a W3C-traceparent-style id, the shape MAA returns.
func requestID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-00"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"InternalError","message":"the service failed to encode its response"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorBody is MAA's CloudError shape; innererror.code carries attestd's
// stable reason.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code       string       `json:"code"`
	Message    string       `json:"message"`
	InnerError *innerDetail `json:"innererror,omitempty"`
}

type innerDetail struct {
	Code string `json:"code"`
}

func writeError(w http.ResponseWriter, e *service.Error) {
	w.Header().Set("x-ms-error-code", e.Code)
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	body := errorBody{Error: errorDetail{Code: e.Code, Message: e.Message}}
	if e.Reason != "" {
		body.Error.InnerError = &innerDetail{Code: e.Reason}
	}
	writeJSON(w, e.Status, body)
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, &service.Error{Status: http.StatusNotFound, Code: "NotFound", Reason: "not_found",
		Message: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
}

func methodNotAllowed(allowed string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		writeError(w, &service.Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Reason: "method_not_allowed",
			Message: fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, r.URL.Path, allowed)})
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready.Ping(ctx); err != nil {
			s.cfg.Logger.Warn("not ready", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
			return
		}
	}
	if len(s.cfg.Keys.Published()) == 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "no signing key"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleCerts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, token.KeySet(s.cfg.Keys.Published()))
}

func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, token.Metadata(s.cfg.Service.Issuer(), service.ClaimsSupported()))
}

// checkAPIVersion applies ASP.NET API versioning's rules and error codes,
// which MAA (an ASP.NET service) answers with.
func checkAPIVersion(r *http.Request) *service.Error {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return &service.Error{Status: http.StatusBadRequest, Code: "ApiVersionUnspecified", Reason: "api_version_missing",
			Message: "An API version is required, but was not specified. Supported: " + strings.Join(APIVersions(), ", ")}
	}
	for _, ok := range APIVersions() {
		if v == ok {
			return nil
		}
	}
	return &service.Error{Status: http.StatusBadRequest, Code: "UnsupportedApiVersion", Reason: "api_version_unsupported",
		Message: fmt.Sprintf("The HTTP resource that matches the request URI does not support the API version '%s'. Supported: %s",
			v, strings.Join(APIVersions(), ", "))}
}

// attestBody is MAA's attestation request (SgxEnclave, OpenEnclave, TdxVm).
type attestBody struct {
	Quote        *string   `json:"quote"`
	Report       *string   `json:"report"`
	RuntimeData  *dataBody `json:"runtimeData"`
	InitTimeData *dataBody `json:"initTimeData"`
	DraftPolicy  *string   `json:"draftPolicyForAttestation"`
	Nonce        *string   `json:"nonce"`
}

type dataBody struct {
	Data     *string `json:"data"`
	DataType *string `json:"dataType"`
}

func (s *Server) handleAttest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t, known := service.ParseAttestationType(r.PathValue("type"))
	label := t
	if !known {
		label = "unknown"
	}
	result, outcome := "ok", "ok"
	defer func() { s.cfg.Metrics.observeAttestation(label, result, outcome, time.Since(start)) }()
	fail := func(err error) {
		e := service.AsError(err)
		result, outcome = e.Reason, "rejected"
		if e.Status >= 500 {
			outcome = "error"
			s.cfg.Logger.Error("attestation failed", "type", label, "error", err, "request_id", w.Header().Get("x-ms-request-id"))
		} else {
			s.cfg.Logger.Info("attestation refused", "type", label, "reason", e.Reason, "error", err, "request_id", w.Header().Get("x-ms-request-id"))
		}
		writeError(w, e)
	}
	if !known {
		fail(&service.Error{Status: http.StatusNotFound, Code: "NotFound", Reason: "unknown_attestation_type",
			Message: fmt.Sprintf("unknown attestation type %q; supported: SgxEnclave, OpenEnclave, TdxVm", r.PathValue("type"))})
		return
	}
	if s.cfg.AttestRequiresAuth {
		if _, err := s.authorize(r, auth.RoleAttester); err != nil {
			result, outcome = "unauthorized", "rejected"
			s.writeAuthError(w, r, err)
			return
		}
	}
	if e := checkAPIVersion(r); e != nil {
		fail(e)
		return
	}
	req, err := decodeAttest(w, r, t)
	if err != nil {
		fail(err)
		return
	}
	res, err := s.cfg.Service.Attest(r.Context(), req)
	if err != nil {
		fail(err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": res.Token})
}

func decodeAttest(w http.ResponseWriter, r *http.Request, t service.AttestationType) (*service.Request, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return nil, &service.Error{Status: http.StatusUnsupportedMediaType, Code: service.CodeInvalidParameter,
			Reason: "unsupported_media_type", Message: fmt.Sprintf("Content-Type %q is not application/json", ct)}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxAttestBody))
	var body attestBody
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &service.Error{Status: http.StatusRequestEntityTooLarge, Code: service.CodeInvalidParameter,
				Reason: "body_too_large", Message: fmt.Sprintf("the request body exceeds %d bytes", MaxAttestBody)}
		}
		return nil, service.BadRequest("malformed_json", "the request body is not a valid JSON object: %v", jsonErrorText(err))
	}
	if dec.More() {
		return nil, service.BadRequest("malformed_json", "the request body holds more than one JSON value")
	}
	field, evidence := "quote", body.Quote
	if t == service.TypeOpenEnclave {
		field, evidence = "report", body.Report
	}
	if evidence == nil || *evidence == "" {
		return nil, service.BadRequest("missing_evidence", "the request has no %q", field)
	}
	raw, err := decodeBase64(*evidence)
	if err != nil {
		return nil, service.BadRequest("invalid_base64", "%q is not base64 or base64url: %v", field, err)
	}
	req := &service.Request{Type: t, Evidence: raw, DraftPolicy: body.DraftPolicy}
	if body.Nonce != nil {
		req.Nonce = *body.Nonce
	}
	if req.RuntimeData, err = decodeData(body.RuntimeData, "runtimeData"); err != nil {
		return nil, err
	}
	if req.InitTimeData, err = decodeData(body.InitTimeData, "initTimeData"); err != nil {
		return nil, err
	}
	return req, nil
}

func decodeData(d *dataBody, field string) (*service.Data, error) {
	if d == nil {
		return nil, nil
	}
	if d.Data == nil {
		return nil, service.BadRequest("missing_data", "%s has no \"data\"", field)
	}
	b, err := decodeBase64(*d.Data)
	if err != nil {
		return nil, service.BadRequest("invalid_base64", "%s.data is not base64 or base64url: %v", field, err)
	}
	typ := service.DataBinary
	if d.DataType != nil {
		switch {
		case strings.EqualFold(*d.DataType, string(service.DataBinary)):
		case strings.EqualFold(*d.DataType, string(service.DataJSON)):
			typ = service.DataJSON
		default:
			return nil, service.BadRequest("invalid_data_type", "%s.dataType is %q; it must be \"Binary\" or \"JSON\"", field, *d.DataType)
		}
	}
	return &service.Data{Bytes: b, Type: typ}, nil
}

// decodeBase64 accepts both alphabets, padded or not (the SDKs send
// base64url without padding; the 2025-06-01 spec uses standard base64).
func decodeBase64(s string) ([]byte, error) {
	trimmed := strings.TrimRight(s, "=")
	if len(s)-len(trimmed) > 2 {
		return nil, errors.New("too much padding")
	}
	// Go's decoder skips CR and LF even in strict mode; a binary field
	// with line breaks (or any other stray byte) is refused instead.
	for i := 0; i < len(trimmed); i++ {
		c := trimmed[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_+/", c) >= 0) {
			return nil, fmt.Errorf("invalid character %q at offset %d", c, i)
		}
	}
	url := strings.ContainsAny(trimmed, "-_")
	std := strings.ContainsAny(trimmed, "+/")
	if url && std {
		return nil, errors.New("mixes the standard and URL alphabets")
	}
	enc := base64.RawURLEncoding
	if std {
		enc = base64.RawStdEncoding
	}
	b, err := enc.Strict().DecodeString(trimmed)
	if err != nil {
		return nil, fmt.Errorf("invalid character or length (%v)", err)
	}
	return b, nil
}

func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type (%s)", typ.Field, typ.Value)
	case errors.Is(err, errors.ErrUnsupported):
		return "unsupported"
	}
	if err.Error() == "EOF" {
		return "empty body"
	}
	return "invalid JSON"
}
