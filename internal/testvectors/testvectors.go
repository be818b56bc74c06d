// Package testvectors locates and describes the real attestation vectors in
// shared/testdata/vectors (see its MANIFEST.md) for tests.
package testvectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Set is one entry of expected.json.
type Set struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	Evidence struct {
		Path     string `json:"path"`
		Encoding string `json:"encoding"`
		Debug    bool   `json:"debug"`
		Quote    struct {
			Version int    `json:"version"`
			TEE     string `json:"tee"`
			FMSPC   string `json:"fmspc"`
			Bytes   int    `json:"quote_bytes"`
		} `json:"quote"`
	} `json:"evidence"`
	Collateral []struct {
		Path   string `json:"path"`
		Format string `json:"format"`
		Role   string `json:"role"`
	} `json:"collateral"`
	VerificationTime string `json:"verification_time"`
	Window           struct {
		NotBefore string `json:"notBefore"`
		NotAfter  string `json:"notAfter"`
	} `json:"window"`
	Expected struct {
		TCBStatus   string   `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs"`
		TDXModule   *struct {
			ID        string `json:"id"`
			TCBStatus string `json:"tcbStatus"`
		} `json:"tdxModule"`
		QETCBStatus string `json:"qeTcbStatus"`
		Error       string `json:"error"`
	} `json:"expected"`
}

// Complete reports whether the set is COMPLETE or COMPLETE×.
func (s Set) Complete() bool { return s.Status == "COMPLETE" || s.Status == "COMPLETE×" }

// Dir returns the vectors directory: $ATTESTD_VECTORS, or
// shared/testdata/vectors found beside an ancestor of the working
// directory. Without it the test is skipped, unless
// $ATTESTD_REQUIRE_VECTORS is set (.ci/run sets it once it has found the
// vectors), in which case their absence is a failure.
func Dir(t testing.TB) string {
	t.Helper()
	if d, ok := Lookup(); ok {
		return d
	}
	if os.Getenv("ATTESTD_REQUIRE_VECTORS") != "" {
		t.Fatal("shared/testdata/vectors not found beside the repository (set ATTESTD_VECTORS)")
	}
	t.Skip("shared/testdata/vectors not found; set ATTESTD_VECTORS to run vector tests")
	return ""
}

// Sets returns the sets of expected.json.
func Sets(t testing.TB) (string, []Set) {
	t.Helper()
	dir := Dir(t)
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sets []Set `json:"sets"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return dir, doc.Sets
}

// Read reads a file relative to the vectors directory.
func Read(t testing.TB, dir, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Lookup finds the vectors directory like Dir but never skips or fails:
// for callers that use the vectors when present (fuzz seed corpora).
func Lookup() (string, bool) {
	if d := os.Getenv("ATTESTD_VECTORS"); d != "" {
		return d, true
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "shared", "testdata", "vectors")
		if st, err := os.Stat(filepath.Join(cand, "expected.json")); err == nil && !st.IsDir() {
			return cand, true
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// LookupRecordings finds shared/testdata/maa-recordings (real MAA exchanges
// recorded by the Azure SDK for JavaScript), beside the vectors directory,
// without skipping or failing.
func LookupRecordings() (string, bool) {
	vec, ok := Lookup()
	if !ok {
		return "", false
	}
	d := filepath.Join(vec, "..", "maa-recordings")
	if st, err := os.Stat(filepath.Join(d, "node")); err != nil || !st.IsDir() {
		return "", false
	}
	return d, true
}

// RecordingsDir is LookupRecordings for tests: it skips without the
// recordings, or fails when $ATTESTD_REQUIRE_VECTORS is set.
func RecordingsDir(t testing.TB) string {
	t.Helper()
	if d, ok := LookupRecordings(); ok {
		return d
	}
	if os.Getenv("ATTESTD_REQUIRE_VECTORS") != "" {
		t.Fatal("shared/testdata/maa-recordings not found beside the vectors (set ATTESTD_VECTORS)")
	}
	t.Skip("shared/testdata/maa-recordings not found; set ATTESTD_VECTORS to run the recorded-MAA tests")
	return ""
}
