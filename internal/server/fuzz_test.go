package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/openenclave"
	"github.com/attestd/attestd/simulator"
	"github.com/attestd/attestd/token"
)

// FuzzAttestRequest sends arbitrary bodies to every attestation route: the
// answer is always a 200 with a token or a 4xx in MAA's error shape, never
// a 5xx or a panic.
func FuzzAttestRequest(f *testing.F) {
	e := newEnv(f, envOptions{})
	runtime := []byte(`{"a":1}`)
	sgx, _ := e.sim.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX, RuntimeData: runtime})
	tdx, _ := e.sim.Quote(simulator.QuoteOptions{TEE: dcap.TEETDX, RuntimeData: runtime})
	for _, body := range []map[string]any{
		{"quote": b64u(sgx)},
		{"quote": b64u(sgx), "runtimeData": map[string]string{"data": b64u(runtime), "dataType": "JSON"}},
		{"quote": b64u(tdx), "runtimeData": map[string]string{"data": b64u(runtime), "dataType": "Binary"}, "nonce": "x"},
		{"report": b64u(openenclave.Wrap(sgx)), "initTimeData": map[string]string{"data": "AA"}},
		{"quote": b64u(sgx), "draftPolicyForAttestation": "version=1.0;"},
	} {
		b, _ := json.Marshal(body)
		for route := range 3 {
			f.Add(uint8(route), b)
		}
	}
	f.Add(uint8(0), []byte(`{"quote":"AAAA","runtimeData":null}`))
	f.Add(uint8(1), []byte(`{"report":"AQAAAAIAAAAKAAAAAAAAAA"}`))
	routes := []string{"SgxEnclave", "OpenEnclave", "TdxVm"}
	handler := e.srv.Config.Handler
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		req := httptest.NewRequest("POST", "/attest/"+routes[int(route)%3]+"?api-version=2022-08-01", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
			var ok struct{ Token string }
			if json.Unmarshal(rec.Body.Bytes(), &ok) != nil || ok.Token == "" {
				t.Fatalf("200 without a token: %s", rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var e maaError
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code == "" || e.Error.InnerError == nil {
				t.Fatalf("%d without MAA's error shape: %s", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzDecodeBase64 checks the lenient decoder against the standard
// library: whatever it accepts decodes to what one of the four encodings
// would give.
func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"", "AA", "AA==", "_-8", "+/8=", "aGVsbG8", "a+b-", "===", "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := decodeBase64(s)
		if err != nil {
			return
		}
		round := b64u(b)
		std := stdNoPad(b)
		trimmed := bytes.TrimRight([]byte(s), "=")
		if string(trimmed) != round && string(trimmed) != std {
			t.Fatalf("%q decoded to %x, which encodes as %q / %q", s, b, round, std)
		}
	})
}

// FuzzManagementRequest sends arbitrary bodies to every management write
// route of an isolated tenant, as a contributor: each gets a token or a
// 4xx in MAA's shape, never a 5xx, and only a document signed by the
// registered signer changes anything.
func FuzzManagementRequest(f *testing.F) {
	me := newMgmtEnv(f, true, false)
	signed := me.doc(f, token.PolicyPayload(`version=1.0; authorizationrules{=> permit();}; issuancerules{};`))
	for _, seed := range []string{
		signed, `"` + signed + `"`, "eyJhbGciOiJub25lIn0..", me.doc(f, nil),
		token.UnsecuredDocument(token.PolicyPayload("version=1.2; authorizationrules{ => permit(); }; issuancerules{};")),
		me.doc(f, token.CertificatePayload(me.signer.Cert)), "", "x", `"x`, "a.b.c", "..", strings.Repeat(".", 100),
	} {
		for route := range 4 {
			f.Add(uint8(route), seed)
		}
	}
	routes := []struct{ method, path, ctype string }{
		{"PUT", "/policies/SgxEnclave" + apiV, "text/plain"},
		{"POST", "/policies/TdxVm:reset" + apiV, "text/plain"},
		{"POST", "/certificates:add" + apiV, "application/json"},
		{"POST", "/certificates:remove" + apiV, "application/json"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		rt := routes[int(route)%len(routes)]
		req, err := http.NewRequest(rt.method, me.srv.URL+rt.path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", rt.ctype)
		req.Header.Set("Authorization", me.contrib)
		resp, err := me.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		r := response{status: resp.StatusCode, header: resp.Header, body: rb}
		if r.status >= 500 {
			t.Fatalf("%s %s: status %d for %q: %s", rt.method, rt.path, r.status, body, r.body)
		}
		if r.status != 200 {
			var e maaError
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.InnerError == nil {
				t.Fatalf("refusal not in MAA's shape: %s", r.body)
			}
		}
	})
}
