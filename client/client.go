// Package client is a Go client of the attestation REST API shared by
// attestd and Microsoft Azure Attestation (MAA): attest evidence, read the
// service's OpenID metadata and token signing keys, and manage policies and
// policy signers (see GetPolicy, SetPolicy and AddPolicyCertificate).
//
// The client does not verify the attestation tokens it receives; hand them
// to package verify (or to the relying party that needs them). Management
// responses, which the client reads itself, are verified only when the
// client is built WithResponseVerifier.
//
//	c, err := client.New("https://attestd.example.com")
//	...
//	jwt, err := c.Attest(ctx, client.SGX, client.AttestRequest{
//		Evidence:    quote,
//		RuntimeData: &client.Data{Bytes: pubKeyJSON, JSON: true},
//	})
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attestd/attestd/verify"
)

// DefaultAPIVersion is the api-version sent when WithAPIVersion is not
// used. 2022-08-01 is the newest GA version with the nonce field; MAA and
// attestd also accept 2020-10-01.
const DefaultAPIVersion = "2022-08-01"

// MaxResponseSize bounds every response body the client reads.
const MaxResponseSize = 4 << 20

// AttestationType names an attestation endpoint: POST /attest/{type}.
type AttestationType string

// The attestation types. Other values are sent as given.
const (
	SGX         AttestationType = "SgxEnclave"
	OpenEnclave AttestationType = "OpenEnclave"
	TDX         AttestationType = "TdxVm"
)

// Client calls one attestation service. It is safe for concurrent use.
type Client struct {
	base       string // scheme://host[/path], no trailing slash
	hc         *http.Client
	apiVersion string
	bearer     string
	verifier   *verify.Verifier // checks management response tokens; nil: decode only
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the HTTP client. Without it a client with a 60 s
// timeout and the system's trusted CAs is used; see NewHTTPClientWithCA for
// a private CA.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		c.hc = hc
		return nil
	}
}

// WithAPIVersion sets the api-version query parameter sent on attest,
// policy and certificate calls (default DefaultAPIVersion).
func WithAPIVersion(v string) Option {
	return func(c *Client) error {
		if v == "" {
			return errors.New("WithAPIVersion: empty version")
		}
		c.apiVersion = v
		return nil
	}
}

// WithBearerToken sends "Authorization: Bearer <token>" on every request.
// It is refused on plain http, except to a loopback address, because the
// token would cross the network in clear (the Azure SDKs refuse it too).
func WithBearerToken(token string) Option {
	return func(c *Client) error {
		if token == "" || strings.ContainsAny(token, "\r\n") {
			return errors.New("WithBearerToken: empty or multi-line token")
		}
		c.bearer = token
		return nil
	}
}

// New returns a client for the service at baseURL, e.g.
// "https://sharedwus.wus.attest.azure.net". A trailing slash is ignored.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: base URL %q must be http(s)://host[/path]", baseURL)
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), apiVersion: DefaultAPIVersion}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(c); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	if c.bearer != "" && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, errors.New("client: a bearer token needs an https base URL")
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 60 * time.Second}
	}
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Data is runtime or init-time data bound to the evidence (the TEE puts its
// SHA-256 in the report data). With JSON set the service parses it and
// returns it as an object claim (x-ms-runtime, x-ms-inittime); otherwise it
// is echoed as bytes (x-ms-sgx-ehd).
type Data struct {
	Bytes []byte
	JSON  bool
}

// AttestRequest is the body of an attest call. Evidence is the raw quote
// (SGX, TDX) or Open Enclave report; the client encodes it.
type AttestRequest struct {
	Evidence     []byte
	RuntimeData  *Data
	InitTimeData *Data
	Nonce        string // echoed as the nonce claim (api-version 2022-08-01 and later)
	DraftPolicy  string // policy text to evaluate instead of the stored policy
}

type wireData struct {
	Data     string `json:"data"`
	DataType string `json:"dataType"`
}

type wireAttest struct {
	Quote        string    `json:"quote,omitempty"`
	Report       string    `json:"report,omitempty"`
	RuntimeData  *wireData `json:"runtimeData,omitempty"`
	InitTimeData *wireData `json:"initTimeData,omitempty"`
	DraftPolicy  string    `json:"draftPolicyForAttestation,omitempty"`
	Nonce        string    `json:"nonce,omitempty"`
}

// b64 is MAA's binary encoding: base64url without padding.
var b64 = base64.RawURLEncoding

func encodeData(name string, d *Data) (*wireData, error) {
	if d == nil {
		return nil, nil
	}
	if d.JSON {
		if !json.Valid(d.Bytes) {
			return nil, fmt.Errorf("%s is marked JSON but is not valid JSON", name)
		}
		return &wireData{Data: b64.EncodeToString(d.Bytes), DataType: "JSON"}, nil
	}
	return &wireData{Data: b64.EncodeToString(d.Bytes), DataType: "Binary"}, nil
}

// Attest submits evidence to POST /attest/{t} and returns the attestation
// token (a compact JWS) from the {"token": ...} response. A service
// rejection is an *APIError.
func (c *Client) Attest(ctx context.Context, t AttestationType, req AttestRequest) (string, error) {
	if t == "" {
		return "", errors.New("client: Attest: empty attestation type")
	}
	if len(req.Evidence) == 0 {
		return "", errors.New("client: Attest: empty evidence")
	}
	body := wireAttest{Nonce: req.Nonce, DraftPolicy: req.DraftPolicy}
	// Open Enclave (and SEV-SNP) evidence goes in "report"; quotes in
	// "quote". MAA rejects the wrong field name.
	switch t {
	case OpenEnclave, "SevSnpVm":
		body.Report = b64.EncodeToString(req.Evidence)
	default:
		body.Quote = b64.EncodeToString(req.Evidence)
	}
	var err error
	if body.RuntimeData, err = encodeData("runtime data", req.RuntimeData); err != nil {
		return "", fmt.Errorf("client: Attest: %w", err)
	}
	if body.InitTimeData, err = encodeData("init-time data", req.InitTimeData); err != nil {
		return "", fmt.Errorf("client: Attest: %w", err)
	}
	buf, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("client: Attest: %w", err)
	}
	q := url.Values{"api-version": {c.apiVersion}}
	var resp struct {
		Token string `json:"token"`
	}
	path := "/attest/" + url.PathEscape(string(t))
	if err := c.do(ctx, http.MethodPost, path, q, buf, &resp); err != nil {
		return "", fmt.Errorf("client: Attest %s: %w", t, err)
	}
	if resp.Token == "" {
		return "", fmt.Errorf("client: Attest %s: response has no token", t)
	}
	return resp.Token, nil
}

// Metadata is the service's OpenID metadata.
type Metadata struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	RevocationEndpoint               string   `json:"revocation_endpoint,omitempty"`
	ResponseTypesSupported           []string `json:"response_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ClaimsSupported                  []string `json:"claims_supported,omitempty"`
}

// OpenIDMetadata fetches GET /.well-known/openid-configuration.
func (c *Client) OpenIDMetadata(ctx context.Context) (*Metadata, error) {
	var m Metadata
	// MAA's specs make api-version optional on this path and the JS SDK
	// sends none, so neither do we.
	if err := c.do(ctx, http.MethodGet, "/.well-known/openid-configuration", nil, nil, &m); err != nil {
		return nil, fmt.Errorf("client: OpenID metadata: %w", err)
	}
	return &m, nil
}

// JWK is one entry of the signing key set. MAA's entries carry only Kid,
// Kty and X5C (standard base64 DER certificates, key in the first).
type JWK struct {
	Kid string   `json:"kid"`
	Kty string   `json:"kty"`
	Use string   `json:"use,omitempty"`
	Alg string   `json:"alg,omitempty"`
	X5C []string `json:"x5c,omitempty"`
	N   string   `json:"n,omitempty"`
	E   string   `json:"e,omitempty"`
	Crv string   `json:"crv,omitempty"`
	X   string   `json:"x,omitempty"`
	Y   string   `json:"y,omitempty"`
}

// KeySet is the signing key set. Raw is the body as served, ready for
// verify.WithKeySet.
type KeySet struct {
	Keys []JWK           `json:"keys"`
	Raw  json.RawMessage `json:"-"`
}

// SigningCertificates fetches GET /certs, the keys that sign the service's
// tokens.
func (c *Client) SigningCertificates(ctx context.Context) (*KeySet, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/certs", nil, nil, &raw); err != nil {
		return nil, fmt.Errorf("client: signing certificates: %w", err)
	}
	var ks KeySet
	if err := json.Unmarshal(raw, &ks); err != nil {
		return nil, fmt.Errorf("client: signing certificates: %w", err)
	}
	if ks.Keys == nil {
		return nil, errors.New(`client: signing certificates: response has no "keys" array`)
	}
	ks.Raw = raw
	return &ks, nil
}

// APIError is a non-2xx answer from the service. MAA's error bodies are
// {"error":{"code":...,"message":...,"innererror":{"code":...}}}; for other
// bodies Code is empty and Message is a short excerpt of the body (or the
// HTTP status text).
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	// Reason is error.innererror.code: attestd's stable, finer-grained
	// reason (e.g. "unsigned_document"), which MAA sends only sometimes.
	Reason    string
	RequestID string // x-ms-request-id, when the service sent one
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Reason != "" && e.Reason != e.Code {
		s += " (" + e.Reason + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// do sends one request, with a JSON body if body is not nil, and decodes a
// 2xx JSON body into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	return c.doContent(ctx, method, path, q, "application/json", body, out)
}

// doContent is do with the body's Content-Type given.
func (c *Client) doContent(ctx context.Context, method, path string, q url.Values, contentType string, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "attestd-go-client")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if len(data) > MaxResponseSize {
		return fmt.Errorf("response body larger than %d bytes", MaxResponseSize)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	return nil
}

func apiError(resp *http.Response, data []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("x-ms-request-id")}
	var cloud struct {
		Error *struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &cloud) == nil && cloud.Error != nil {
		e.Code, e.Message = cloud.Error.Code, cloud.Error.Message
		// Newer MAA responses put the detail only in innererror; attestd
		// puts its stable reason there.
		if ie := cloud.Error.InnerError; ie != nil {
			e.Reason = ie.Code
			if e.Code == "" {
				e.Code = ie.Code
			}
			if e.Message == "" {
				e.Message = ie.Message
			}
		}
		return e
	}
	e.Message = excerpt(data)
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// excerpt returns the start of a non-JSON error body as one printable line:
// enough to recognise a proxy's error page, too little to flood a log.
func excerpt(b []byte) string {
	const limit = 200
	var sb strings.Builder
	for len(b) > 0 && sb.Len() < limit {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == utf8.RuneError && size == 1:
			sb.WriteRune('?')
		case r == '\n' || r == '\r' || r == '\t':
			sb.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
			sb.WriteRune('?')
		default:
			sb.WriteRune(r)
		}
	}
	s := strings.Join(strings.Fields(sb.String()), " ")
	if len(b) > 0 {
		s += "…"
	}
	return s
}

// NewHTTPClientWithCA returns an HTTP client that trusts only the CA
// certificates in pemBytes (not the system roots), for services with a
// private CA such as a development attestd. It requires TLS 1.2 or later
// and bounds connection, handshake and whole-request times.
func NewHTTPClientWithCA(pemBytes []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client: CA certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("client: no PEM CERTIFICATE block in the CA bundle")
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 50 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   8,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, nil
}
