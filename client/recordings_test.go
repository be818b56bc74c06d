package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/internal/testvectors"
)

// The client's attest bodies are byte-for-byte the ones the Azure JS SDK
// sent to the real MAA in shared/testdata/maa-recordings (same field order,
// same encoding), for SGX and Open Enclave, Binary and JSON runtime data.
func TestRecordedRequestBodies(t *testing.T) {
	dir := testvectors.RecordingsDir(t)
	var sample struct {
		Report      string `json:"openEnclaveReport"`
		RuntimeData string `json:"runtimeData"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "sgx-sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sample); err != nil {
		t.Fatal(err)
	}
	report, err := base64.RawURLEncoding.DecodeString(sample.Report)
	if err != nil {
		t.Fatal(err)
	}
	runtime, err := base64.RawURLEncoding.DecodeString(sample.RuntimeData)
	if err != nil {
		t.Fatal(err)
	}

	s := newServer(t, true)
	// The recordings used api-version 2020-10-01, as every 1.0.x SDK does.
	c := newClient(t, s, client.WithAPIVersion("2020-10-01"))
	files, _ := filepath.Glob(filepath.Join(dir, "node", "aad_attestation_client", "recording_attest*enclave*.json"))
	if len(files) != 6 {
		t.Fatalf("%d attest recordings, want 6", len(files))
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Entries []struct {
				RequestURI     string            `json:"RequestUri"`
				RequestHeaders map[string]string `json:"RequestHeaders"`
				RequestBody    json.RawMessage   `json:"RequestBody"`
			} `json:"Entries"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		for _, e := range rec.Entries {
			if !strings.Contains(e.RequestURI, "/attest/") {
				continue
			}
			var want bytes.Buffer
			if err := json.Compact(&want, e.RequestBody); err != nil {
				t.Fatal(err)
			}
			typ, ev := client.SGX, report[16:] // the quote is the report minus the OE header
			if strings.Contains(e.RequestURI, "/attest/OpenEnclave") {
				typ, ev = client.OpenEnclave, report
			}
			isJSON := strings.Contains(want.String(), `"dataType":"JSON"`)
			if _, err := c.Attest(context.Background(), typ, client.AttestRequest{
				Evidence:    ev,
				RuntimeData: &client.Data{Bytes: runtime, JSON: isJSON},
			}); err != nil {
				t.Fatal(err)
			}
			got := s.last(t)
			if !bytes.Equal(got.body, want.Bytes()) {
				t.Errorf("%s: body differs from the recorded one (%d vs %d bytes)", filepath.Base(f), len(got.body), want.Len())
			}
			if cl, _ := strconv.Atoi(e.RequestHeaders["Content-Length"]); cl != len(got.body) {
				t.Errorf("%s: %d bytes, recorded Content-Length %d", filepath.Base(f), len(got.body), cl)
			}
			wantURI := e.RequestURI[strings.Index(e.RequestURI, "/attest/"):]
			if gotURI := got.path + "?" + got.rawQuery; gotURI != wantURI {
				t.Errorf("%s: %s, recorded %s", filepath.Base(f), gotURI, wantURI)
			}
			n++
		}
	}
	if n != 12 {
		t.Errorf("compared %d bodies, want 12", n)
	}
}
