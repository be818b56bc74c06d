package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/testvectors"
	"github.com/attestd/attestd/verify"
)

type recording struct {
	Entries []struct {
		RequestURI    string          `json:"RequestUri"`
		RequestMethod string          `json:"RequestMethod"`
		RequestBody   json.RawMessage `json:"RequestBody"`
		StatusCode    int             `json:"StatusCode"`
		ResponseBody  json.RawMessage `json:"ResponseBody"`
	} `json:"Entries"`
}

// recordedToken is one MAA-issued token with the key set recorded beside
// it and, for attest calls, the request that produced it.
type recordedToken struct {
	file     string
	token    string
	jwks     []byte
	iss      string
	iat, exp time.Time
	evidence []byte // the quote or report sent, for attest calls
	uri      string
}

func loadRecordedTokens(t testing.TB, dir string) []recordedToken {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "node", "*", "recording_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no recordings under %s", dir)
	}
	var out []recordedToken
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec recording
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var jwks []byte
		for _, e := range rec.Entries {
			if e.RequestMethod == "GET" && strings.HasSuffix(e.RequestURI, "/certs") {
				jwks = e.ResponseBody
			}
		}
		for _, e := range rec.Entries {
			var resp struct {
				Token string `json:"token"`
			}
			if json.Unmarshal(e.ResponseBody, &resp) != nil || resp.Token == "" {
				continue
			}
			if jwks == nil {
				t.Fatalf("%s: token without a recorded /certs", f)
			}
			claims := unverifiedClaims(t, resp.Token)
			rt := recordedToken{
				file:  filepath.Base(f),
				token: resp.Token,
				jwks:  jwks,
				iss:   claims["iss"].(string),
				iat:   time.Unix(int64(claims["iat"].(float64)), 0),
				exp:   time.Unix(int64(claims["exp"].(float64)), 0),
				uri:   e.RequestURI,
			}
			if strings.Contains(e.RequestURI, "/attest/") {
				var req struct {
					Quote  string `json:"quote"`
					Report string `json:"report"`
				}
				if err := json.Unmarshal(e.RequestBody, &req); err != nil {
					t.Fatalf("%s: attest request body: %v", f, err)
				}
				ev := req.Quote + req.Report
				rt.evidence, err = base64.RawURLEncoding.DecodeString(ev)
				if err != nil {
					t.Fatalf("%s: evidence: %v", f, err)
				}
			}
			out = append(out, rt)
		}
	}
	return out
}

// unverifiedClaims reads a token's claims without any check, for setting
// up a test (the issuer and times to verify against).
func unverifiedClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func at(tm time.Time) verify.Option { return verify.WithClock(func() time.Time { return tm }) }

// Every MAA-issued token in the recordings verifies against the key set
// recorded in the same file, at its own issue time and for its real issuer.
func TestRecordedMAATokens(t *testing.T) {
	toks := loadRecordedTokens(t, testvectors.RecordingsDir(t))
	// The recordings README counts 28: 2 per attest recording (6 files),
	// 2 in the TPM recording, 1 to 3 per policy recording.
	if len(toks) != 28 {
		t.Fatalf("found %d recorded tokens, want 28", len(toks))
	}
	issuers := map[string]int{}
	attest := 0
	for _, rt := range toks {
		v, err := verify.New(rt.iss, verify.WithKeySet(rt.jwks), at(rt.iat))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := v.Verify(context.Background(), rt.token)
		if err != nil {
			t.Errorf("%s %s: %v", rt.file, rt.uri, err)
			continue
		}
		issuers[rt.iss]++
		if tok.Header.Alg != "RS256" || tok.Header.Kid != "rPtBGRWTlPmzs5u35L0QRD9WdymeKPRxteTeTlwN0Ec=" || tok.Header.JKU != rt.iss+"/certs" {
			t.Errorf("%s: header %+v", rt.file, tok.Header)
		}
		if tok.Raw != rt.token || tok.Claims["iss"] != rt.iss {
			t.Errorf("%s: token not returned as given", rt.file)
		}
		if rt.iat.Before(time.Date(2022, 1, 28, 23, 44, 35, 0, time.UTC)) || rt.iat.After(time.Date(2022, 1, 28, 23, 44, 56, 0, time.UTC)) {
			t.Errorf("%s: iat %s outside the recording session", rt.file, rt.iat.UTC())
		}
		if rt.evidence == nil {
			continue
		}
		// The service hashed exactly the evidence the client sent.
		attest++
		coll, _ := tok.Claims["x-ms-sgx-collateral"].(map[string]any)
		sum := sha256.Sum256(rt.evidence)
		if got := coll["quotehash"]; got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: quotehash %v, want %x", rt.file, got, sum)
		}
		if rt.exp.Sub(rt.iat) != 8*time.Hour {
			t.Errorf("%s: lifetime %s, want 8h", rt.file, rt.exp.Sub(rt.iat))
		}
	}
	if attest != 12 {
		t.Errorf("%d attest tokens, want 12", attest)
	}
	for _, iss := range []string{"https://sharedwus.wus.attest.azure.net", "https://jsharshanaad.wus.attest.azure.net", "https://jsharshaniso.wus.attest.azure.net"} {
		if issuers[iss] == 0 {
			t.Errorf("no verified token from %s", iss)
		}
	}
	t.Logf("verified %d MAA tokens (%d attest) from %v", len(toks), attest, issuers)
}

// The recorded tokens fail every check they should: a changed claim, a
// changed signature, a time after exp (beyond the leeway) or before nbf,
// another issuer, an allow-list without RS256, an expected claim.
func TestRecordedMAATokensNegative(t *testing.T) {
	toks := loadRecordedTokens(t, testvectors.RecordingsDir(t))
	ctx := context.Background()
	for _, rt := range toks {
		parts := strings.Split(rt.token, ".")
		claims := unverifiedClaims(t, rt.token)

		// A changed claim, re-encoded properly, keeps the old signature.
		claims["iss"] = rt.iss // unchanged, but re-serialised
		claims["x-ms-attestation-type"] = "tampered"
		payload, _ := json.Marshal(claims)
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]

		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[len(sig)-1] ^= 1
		badSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

		cases := []struct {
			name  string
			iss   string
			tok   string
			when  time.Time
			opts  []verify.Option
			want  verify.Code
			valid bool
		}{
			{name: "tampered claims", iss: rt.iss, tok: tampered, when: rt.iat, want: verify.CodeBadSignature},
			{name: "tampered signature", iss: rt.iss, tok: badSig, when: rt.iat, want: verify.CodeBadSignature},
			{name: "after exp", iss: rt.iss, tok: rt.token, when: rt.exp.Add(time.Hour), want: verify.CodeExpired},
			{name: "exp within leeway", iss: rt.iss, tok: rt.token, when: rt.exp.Add(30 * time.Second), valid: true},
			{name: "exp past leeway", iss: rt.iss, tok: rt.token, when: rt.exp.Add(61 * time.Second), want: verify.CodeExpired},
			{name: "before nbf", iss: rt.iss, tok: rt.token, when: rt.iat.Add(-2 * time.Minute), want: verify.CodeNotYetValid},
			{name: "other issuer", iss: "https://sharedeus2.eus2.attest.azure.net", tok: rt.token, when: rt.iat, want: verify.CodeWrongIssuer},
			{name: "issuer is a prefix of iss", iss: rt.iss[:len(rt.iss)-1], tok: rt.token, when: rt.iat, want: verify.CodeWrongIssuer},
			{name: "RS256 not allowed", iss: rt.iss, tok: rt.token, when: rt.iat, opts: []verify.Option{verify.WithAlgorithms("PS256")}, want: verify.CodeUnsupportedAlgorithm},
			{name: "expected claim", iss: rt.iss, tok: rt.token, when: rt.iat, opts: []verify.Option{verify.WithExpectedClaims(map[string]any{"x-ms-ver": "2.0"})}, want: verify.CodeClaimMismatch},
		}
		for _, c := range cases {
			opts := append([]verify.Option{verify.WithKeySet(rt.jwks), at(c.when)}, c.opts...)
			v, err := verify.New(c.iss, opts...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(ctx, c.tok)
			if c.valid {
				if err != nil {
					t.Errorf("%s %s: %v", rt.file, c.name, err)
				}
				continue
			}
			if got := verify.CodeOf(err); got != c.want {
				t.Errorf("%s %s: got %v, want %s", rt.file, c.name, err, c.want)
			}
		}
	}
}

// The recorded MAA token signing certificate is the one in x5c[0]; its
// window (2019-05-01..2050-12-31) bounds when the key may be used.
func TestRecordedMAAKeyWindow(t *testing.T) {
	toks := loadRecordedTokens(t, testvectors.RecordingsDir(t))
	rt := toks[0]
	v, err := verify.New(rt.iss, verify.WithKeySet(rt.jwks), at(time.Date(2051, 1, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), rt.token); verify.CodeOf(err) != verify.CodeInvalidKey {
		t.Fatalf("after the certificate's notAfter: got %v, want invalid_key", err)
	}
}

// recordedTransport answers the shared instance's metadata and key set
// requests from the recordings, so discovery runs against MAA's real
// documents without the network.
type recordedTransport struct {
	bodies map[string][]byte
	hits   map[string]int
}

func (rt *recordedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL.String()
	rt.hits[u]++
	b, ok := rt.bodies[u]
	if !ok {
		return &http.Response{StatusCode: 404, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(b)), Request: req,
		Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}}, nil
}

// Discovery against MAA's recorded shared-instance metadata: its issuer
// matches, its jwks_uri equals the tokens' jku, and the tokens verify.
func TestRecordedMAADiscovery(t *testing.T) {
	dir := testvectors.RecordingsDir(t)
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "node", rel))
		if err != nil {
			t.Fatal(err)
		}
		var rec recording
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		return rec.Entries[0].ResponseBody
	}
	const iss = "https://sharedwus.wus.attest.azure.net"
	tr := &recordedTransport{
		bodies: map[string][]byte{
			iss + "/.well-known/openid-configuration": read("tokencerttests/recording_getmetadataconfigshared.json"),
			iss + "/certs": read("tokencerttests/recording_getcertificatesshared.json"),
		},
		hits: map[string]int{},
	}
	n := 0
	for _, rt := range loadRecordedTokens(t, dir) {
		if rt.iss != iss {
			continue
		}
		v, err := verify.New(iss, verify.WithHTTPClient(&http.Client{Transport: tr}), at(rt.iat))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), rt.token); err != nil {
			t.Errorf("%s: %v", rt.file, err)
		}
		n++
	}
	// 2 SGX + 2 OpenEnclave attest, 1 get-policy, 1 get-certificates.
	if n != 6 {
		t.Fatalf("%d shared-instance tokens, want 6", n)
	}
	if tr.hits[iss+"/certs"] != n || tr.hits[iss+"/.well-known/openid-configuration"] != n {
		t.Errorf("hits %v, want %d each (one verifier per token)", tr.hits, n)
	}
}
