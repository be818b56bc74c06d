package dcap_test

import (
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/internal/testvectors"
)

// intelSemantics lists the sets where expected.json's simplified checker
// (no TD-relaunch handling) and Intel's QVL disagree; Intel's documented
// semantics win (see the caveat in expected.json).
var intelSemantics = map[string]struct {
	status     string
	advisories []string
}{
	// TD 1.5 quote launched on TDX module SVN 7 (OutOfDate), now running
	// module SVN 13 (TEE_TCB_SVN2), the latest level: Intel's QVL merges the
	// out-of-date module into the platform status and then, because the
	// updated module is current, reports TD_RELAUNCH_ADVISED. Intel's newest
	// QVL also reports the matched module level's advisories.
	"T4": {string(dcap.StatusTDRelaunchAdvised), []string{"INTEL-SA-01036", "INTEL-SA-01099"}},
}

func loadSet(t *testing.T, dir string, s testvectors.Set) ([]byte, *dcap.Collateral) {
	t.Helper()
	quote, _, err := dcap.DecodeQuote(testvectors.Read(t, dir, s.Evidence.Path))
	if err != nil {
		t.Fatalf("decode quote: %v", err)
	}
	var parts []*dcap.Collateral
	for _, c := range s.Collateral {
		col, format, err := dcap.LoadCollateral(testvectors.Read(t, dir, c.Path))
		if err != nil {
			t.Fatalf("load %s: %v", c.Path, err)
		}
		t.Logf("collateral %s: detected %s", c.Path, format)
		parts = append(parts, col)
	}
	return quote, dcap.MergeCollateral(parts...)
}

func atTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func TestRealVectors(t *testing.T) {
	dir, sets := testvectors.Sets(t)
	n := 0
	for _, s := range sets {
		if !s.Complete() || (s.Kind != "sgx" && s.Kind != "tdx") {
			continue
		}
		n++
		t.Run(s.ID, func(t *testing.T) {
			quote, col := loadSet(t, dir, s)
			at := atTime(t, s.VerificationTime)
			v := dcap.NewVerifier(dcap.WithClock(func() time.Time { return at }))
			res, err := v.VerifyQuote(context.Background(), quote, col)
			if s.Expected.Error != "" {
				if err == nil {
					t.Fatalf("verified with status %s; want error %q", res.TCBStatus, s.Expected.Error)
				}
				if want := expectedCode(s.Expected.Error); dcap.CodeOf(err) != want {
					t.Fatalf("error %v; want code %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			want := s.Expected.TCBStatus
			wantAdv := s.Expected.AdvisoryIDs
			if o, ok := intelSemantics[s.ID]; ok {
				want, wantAdv = o.status, o.advisories
				if !res.TDRelaunchAdvised {
					t.Error("TDRelaunchAdvised is false")
				}
				if string(res.PlatformTCBStatus) != s.Expected.TCBStatus {
					t.Errorf("platform status %s; want %s", res.PlatformTCBStatus, s.Expected.TCBStatus)
				}
			}
			if string(res.TCBStatus) != want {
				t.Errorf("status %s; want %s", res.TCBStatus, want)
			}
			if wantAdv == nil {
				wantAdv = []string{}
			}
			if !slices.Equal(res.AdvisoryIDs, wantAdv) {
				t.Errorf("advisories %v; want %v", res.AdvisoryIDs, wantAdv)
			}
			if string(res.QETCBStatus) != s.Expected.QETCBStatus {
				t.Errorf("QE status %s; want %s", res.QETCBStatus, s.Expected.QETCBStatus)
			}
			if m := s.Expected.TDXModule; m != nil {
				if res.TDXModule == nil {
					t.Fatalf("no TDX module result; want %s %s", m.ID, m.TCBStatus)
				}
				if res.TDXModule.ID != m.ID || string(res.TDXModule.TCBStatus) != m.TCBStatus {
					t.Errorf("TDX module %s %s; want %s %s", res.TDXModule.ID, res.TDXModule.TCBStatus, m.ID, m.TCBStatus)
				}
			}
			if got := strings.ToLower(s.Evidence.Quote.FMSPC); got != "" && got != hexOf(res.PCK.FMSPC[:]) {
				t.Errorf("FMSPC %x; want %s", res.PCK.FMSPC, got)
			}
			if res.QuoteVersion != s.Evidence.Quote.Version {
				t.Errorf("quote version %d; want %d", res.QuoteVersion, s.Evidence.Quote.Version)
			}
			if len(res.Quote.Raw) != s.Evidence.Quote.Bytes {
				t.Errorf("quote length %d; want %d", len(res.Quote.Raw), s.Evidence.Quote.Bytes)
			}
			if d := res.Quote.TD; d != nil && d.Debug() != s.Evidence.Debug {
				t.Errorf("TD debug %v; want %v", d.Debug(), s.Evidence.Debug)
			}
			if e := res.Quote.Enclave; e != nil && e.Debug() != s.Evidence.Debug {
				t.Errorf("enclave debug %v; want %v", e.Debug(), s.Evidence.Debug)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d complete DCAP sets found in expected.json", n)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// expectedCode maps expected.json's error wording to a code.
func expectedCode(msg string) dcap.Code {
	switch msg {
	case "TCB level not supported":
		return dcap.CodeTCBLevelNotSupported
	}
	return dcap.Code("unmapped: " + msg)
}

// TestCollateralFormatDetection checks that every collateral file of the
// vectors is detected as the format expected.json names.
func TestCollateralFormatDetection(t *testing.T) {
	dir, sets := testvectors.Sets(t)
	want := map[string]dcap.Format{
		"dcap-qvl-bundle":     dcap.FormatDCAPQVLBundle,
		"pcs-tcbinfo":         dcap.FormatPCSTCBInfo,
		"pcs-qeidentity":      dcap.FormatPCSQEIdentity,
		"der-crl":             dcap.FormatDERCRL,
		"pem-chain":           dcap.FormatPEM,
		"qve-collateral-dump": dcap.FormatQVECollateral,
	}
	seen := map[string]bool{}
	for _, s := range sets {
		if s.Kind != "sgx" && s.Kind != "tdx" {
			continue
		}
		for _, c := range s.Collateral {
			if seen[c.Path] {
				continue
			}
			seen[c.Path] = true
			w, ok := want[c.Format]
			if !ok {
				continue
			}
			col, got, err := dcap.LoadCollateral(testvectors.Read(t, dir, c.Path))
			if err != nil {
				t.Errorf("%s: %v", c.Path, err)
				continue
			}
			if got != w {
				t.Errorf("%s: detected %s; want %s", c.Path, got, w)
			}
			switch c.Format {
			case "dcap-qvl-bundle", "qve-collateral-dump":
				if col.TCBInfo == nil || col.QEIdentity == nil || col.TCBInfoIssuerChain == nil || len(col.CRLs) != 2 {
					t.Errorf("%s: incomplete: %+v", c.Path, col)
				}
			case "pcs-tcbinfo":
				if col.TCBInfo == nil {
					t.Errorf("%s: no TCB Info", c.Path)
				}
			case "pcs-qeidentity":
				if col.QEIdentity == nil {
					t.Errorf("%s: no QE Identity", c.Path)
				}
			case "der-crl":
				if len(col.CRLs) != 1 {
					t.Errorf("%s: no CRL", c.Path)
				}
			}
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d collateral files checked", len(seen))
	}
}

// TestPinnedRootIsIntels checks the compiled-in anchor by fingerprint, and
// that a Verifier without options uses it.
func TestPinnedRootIsIntels(t *testing.T) {
	root := dcap.IntelSGXRootCA()
	sum := sha256.Sum256(root.Raw)
	if got := hexOf(sum[:]); got != "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3" {
		t.Fatalf("pinned root fingerprint %s", got)
	}
	if dcap.NewVerifier().TrustRoot().Subject.CommonName != "Intel SGX Root CA" {
		t.Fatal("default verifier is not anchored on Intel's root")
	}
}
