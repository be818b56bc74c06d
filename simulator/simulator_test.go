package simulator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/simulator"
)

// issueTime is the collateral issue time of the tests: fixed, so that
// failures reproduce.
var issueTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// layout is one quote shape the simulator mints.
type layout struct {
	tee     dcap.TEEType
	version int
	body    dcap.BodyType
}

func (l layout) String() string {
	if l.body != 0 {
		return fmt.Sprintf("%s-v%d-%s", l.tee, l.version, l.body)
	}
	return fmt.Sprintf("%s-v%d", l.tee, l.version)
}

// layouts is every quote version and body the simulator mints.
var layouts = []layout{
	{dcap.TEESGX, 3, 0}, {dcap.TEESGX, 4, 0}, {dcap.TEESGX, 5, 0},
	{dcap.TEETDX, 4, 0}, {dcap.TEETDX, 5, dcap.BodyTD10}, {dcap.TEETDX, 5, dcap.BodyTD15},
}

func newSim(t testing.TB, opts simulator.Options) *simulator.Simulator {
	t.Helper()
	if opts.Now.IsZero() {
		opts.Now = issueTime
	}
	s, err := simulator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifierFor(s *simulator.Simulator, at time.Time) *dcap.Verifier {
	return dcap.NewVerifier(dcap.WithTrustRoot(s.Root()), dcap.WithClock(func() time.Time { return at }))
}

// TestFaultsAgainstVerifier is the simulator's contract: every fault, on
// every TEE and quote version it applies to, gets the verdict the fault
// documents from the DCAP verifier, with the collateral the simulator
// serves for it. Faults the verifier accepts are checked for what makes
// them faults (debug flag, runtime data binding).
func TestFaultsAgainstVerifier(t *testing.T) {
	s := newSim(t, simulator.Options{})
	at := issueTime.Add(time.Hour)
	runtimeData := []byte(`{"jwk":{"kty":"EC"}}`)
	for _, f := range append([]simulator.Fault{{Name: ""}}, simulator.Faults()...) {
		for _, l := range layouts {
			name := f.Name
			if name == "" {
				name = "clean"
			}
			t.Run(name+"/"+l.String(), func(t *testing.T) {
				if f.Name != "" && !f.AppliesTo(l.tee) {
					if _, err := s.Quote(simulator.QuoteOptions{TEE: l.tee, Version: l.version, Body: l.body, Fault: f.Name}); err == nil {
						t.Fatalf("fault %s minted a %s quote though it does not apply", f.Name, l.tee)
					}
					return
				}
				quote, err := s.Quote(simulator.QuoteOptions{TEE: l.tee, Version: l.version, Body: l.body, Fault: f.Name, RuntimeData: runtimeData})
				if err != nil {
					t.Fatal(err)
				}
				set, err := s.Collateral(l.tee, f.Name)
				if err != nil {
					t.Fatal(err)
				}
				col, err := set.Collateral()
				if err != nil {
					t.Fatal(err)
				}
				want, err := s.Expect(l.tee, f.Name)
				if err != nil {
					t.Fatal(err)
				}
				res, err := verifierFor(s, at).VerifyQuote(context.Background(), quote, col)
				if want.Code != "" {
					if err == nil {
						t.Fatalf("verified with status %s; want rejection %s", res.TCBStatus, want.Code)
					}
					if got := dcap.CodeOf(err); got != want.Code {
						t.Fatalf("rejected with %s (%v); want %s", got, err, want.Code)
					}
					return
				}
				if err != nil {
					t.Fatalf("rejected: %v (code %s); want status %s", err, dcap.CodeOf(err), want.TCBStatus)
				}
				if res.TCBStatus != want.TCBStatus || !slices.Equal(res.AdvisoryIDs, want.AdvisoryIDs) {
					t.Fatalf("verdict %s %v; want %s %v", res.TCBStatus, res.AdvisoryIDs, want.TCBStatus, want.AdvisoryIDs)
				}
				if res.TEE != l.tee || res.QuoteVersion != l.version {
					t.Fatalf("verified as %s v%d", res.TEE, res.QuoteVersion)
				}
				checkCaughtLater(t, f, res, runtimeData)
			})
		}
	}
}

// checkCaughtLater asserts what makes an accepted fault a fault, and that
// clean and status faults carry neither mark.
func checkCaughtLater(t *testing.T, f simulator.Fault, res *dcap.Result, runtimeData []byte) {
	t.Helper()
	q := res.Quote
	debug := q.TD != nil && q.TD.Debug() || q.Enclave != nil && q.Enclave.Debug()
	var reportData [64]byte
	if q.TD != nil {
		reportData = q.TD.ReportData
	} else {
		reportData = q.Enclave.ReportData
	}
	bound := reportData == simulator.BindRuntimeData(runtimeData)
	switch f.CaughtBy {
	case "policy":
		if !debug {
			t.Fatal("debug fault produced a non-debug quote")
		}
	case "runtime-data-binding":
		if bound {
			t.Fatal("runtime data mismatch fault bound the runtime data")
		}
	case "":
	default:
		t.Fatalf("fault %s: unknown CaughtBy %q", f.Name, f.CaughtBy)
	}
	if f.CaughtBy != "policy" && debug {
		t.Fatal("quote is debug without the debug fault")
	}
	if f.CaughtBy != "runtime-data-binding" && !bound {
		t.Fatal("report data does not bind the runtime data")
	}
}

func TestFaultCatalogue(t *testing.T) {
	names := simulator.FaultNames()
	// The faults the simulator promises, at least.
	for _, want := range []string{
		"bad-quote-signature", "bad-qe-report-signature", "wrong-qe-report-binding", "unknown-root",
		"expired-pck-certificate", "revoked-pck-certificate", "revoked-intermediate-ca", "expired-tcb-info",
		"expired-qe-identity", "tcb-info-wrong-key", "fmspc-mismatch", "out-of-date-tcb",
		"configuration-needed-tcb", "tcb-level-not-supported", "qe-identity-mismatch", "debug-enclave",
		"truncated-quote", "unsupported-certification-data", "runtime-data-mismatch",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("fault %s is missing", want)
		}
	}
	seen := map[string]bool{}
	for _, f := range simulator.Faults() {
		if seen[f.Name] {
			t.Errorf("fault %s listed twice", f.Name)
		}
		seen[f.Name] = true
		if f.Description == "" {
			t.Errorf("fault %s has no description", f.Name)
		}
		if f.Code != "" && !slices.Contains(dcap.Codes(), f.Code) {
			t.Errorf("fault %s names code %s, not one of the verifier's", f.Name, f.Code)
		}
	}
	if _, err := simulator.LookupFault("no-such-fault"); err == nil {
		t.Error("unknown fault was accepted")
	}
	s := newSim(t, simulator.Options{})
	if _, err := s.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX, Fault: "no-such-fault"}); err == nil {
		t.Error("Quote accepted an unknown fault")
	}
}

// TestConfiguredTCB: a clean quote verifies with the status and advisories
// the simulator was configured with.
func TestConfiguredTCB(t *testing.T) {
	for _, status := range []dcap.TCBStatus{dcap.StatusUpToDate, dcap.StatusSWHardeningNeeded, dcap.StatusConfigurationAndSWHardeningNeeded, dcap.StatusOutOfDate} {
		s := newSim(t, simulator.Options{TCB: simulator.TCBConfig{Status: status, AdvisoryIDs: []string{"INTEL-SA-00615", "INTEL-SA-00334"}}})
		for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
			quote, err := s.Quote(simulator.QuoteOptions{TEE: tee})
			if err != nil {
				t.Fatal(err)
			}
			res, err := verifierFor(s, issueTime).VerifyQuote(context.Background(), quote, mustCollateral(t, s, tee))
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"INTEL-SA-00334", "INTEL-SA-00615"}
			if res.TCBStatus != status || !slices.Equal(res.AdvisoryIDs, want) {
				t.Errorf("%s configured %s: got %s %v", tee, status, res.TCBStatus, res.AdvisoryIDs)
			}
		}
	}
	if _, err := simulator.New(simulator.Options{TCB: simulator.TCBConfig{Status: dcap.StatusRevoked}}); err == nil {
		t.Error("a Revoked platform level was accepted")
	}
	if _, err := simulator.New(simulator.Options{TCB: simulator.TCBConfig{Status: "Shiny"}}); err == nil {
		t.Error("an unknown status was accepted")
	}
}

// TestBodyFields: caller-chosen fields come out of the verifier as claims.
func TestBodyFields(t *testing.T) {
	s := newSim(t, simulator.Options{})
	ctx := context.Background()
	v := verifierFor(s, issueTime)
	rd := [64]byte{1, 2, 3}
	enclave := simulator.EnclaveFields{
		MRENCLAVE: [32]byte{0xaa}, MRSIGNER: [32]byte{0xbb}, ISVProdID: 7, ISVSVN: 9,
		ConfigID: [64]byte{0xcc}, ConfigSVN: 3, ISVFamilyID: [16]byte{0xdd}, ISVExtProdID: [16]byte{0xee}, MiscSelect: 1,
	}
	quote, err := s.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX, Version: 4, Enclave: enclave, ReportData: &rd, Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyQuote(ctx, quote, mustCollateral(t, s, dcap.TEESGX))
	if err != nil {
		t.Fatal(err)
	}
	e := res.Quote.Enclave
	if e.MRENCLAVE != enclave.MRENCLAVE || e.MRSIGNER != enclave.MRSIGNER || e.ISVProdID != 7 || e.ISVSVN != 9 ||
		e.ConfigID != enclave.ConfigID || e.ConfigSVN != 3 || e.ISVFamilyID != enclave.ISVFamilyID ||
		e.ISVExtProdID != enclave.ISVExtProdID || e.MiscSelect != 1 || e.ReportData != rd || !e.Debug() {
		t.Errorf("SGX body fields did not round-trip: %+v", e)
	}
	if e.CPUSVN != s.Platform().TCBComponents {
		t.Errorf("CPUSVN %x is not the platform's", e.CPUSVN)
	}

	td := simulator.TDFields{
		MRTD: [48]byte{1}, RTMR: [4][48]byte{{2}, {3}, {4}, {5}}, MRCONFIGID: [48]byte{6}, MROWNER: [48]byte{7},
		MROWNERCONFIG: [48]byte{8}, MRSERVICETD: [48]byte{9}, XFAM: 0xe7,
	}
	quote, err = s.Quote(simulator.QuoteOptions{TEE: dcap.TEETDX, Version: 5, Body: dcap.BodyTD15, TD: td, RuntimeData: []byte("key")})
	if err != nil {
		t.Fatal(err)
	}
	res, err = v.VerifyQuote(ctx, quote, mustCollateral(t, s, dcap.TEETDX))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Quote.TD
	sum := sha256.Sum256([]byte("key"))
	if r.MRTD != td.MRTD || r.RTMR != td.RTMR || r.MRCONFIGID != td.MRCONFIGID || r.MROWNER != td.MROWNER ||
		r.MROWNERCONFIG != td.MROWNERCONFIG || r.MRSERVICETD != td.MRSERVICETD || !bytes.Equal(r.ReportData[:32], sum[:]) ||
		[32]byte(r.ReportData[32:]) != [32]byte{} || r.Debug() || r.TDAttributeBits() != dcap.TDAttrSEPTVEDisable || r.XFAM != [8]byte{0xe7} {
		t.Errorf("TD body fields did not round-trip: %+v", r)
	}
	if r.TEETCBSVN != s.Platform().TEETCBSVN || r.TEETCBSVN2 != r.TEETCBSVN {
		t.Errorf("TEE_TCB_SVN %x / %x is not the platform's", r.TEETCBSVN, r.TEETCBSVN2)
	}
	if res.TDXModule == nil || res.TDXModule.ID != "TDX_01" || res.TDXModule.TCBStatus != dcap.StatusUpToDate {
		t.Errorf("TDX module result %+v", res.TDXModule)
	}
}

func mustCollateral(t testing.TB, s *simulator.Simulator, tee dcap.TEEType) *dcap.Collateral {
	t.Helper()
	set, err := s.Collateral(tee, "")
	if err != nil {
		t.Fatal(err)
	}
	col, err := set.Collateral()
	if err != nil {
		t.Fatal(err)
	}
	return col
}

// TestDeterministic: one seed, one PKI and platform, byte for byte; another
// seed, another.
func TestDeterministic(t *testing.T) {
	a := newSim(t, simulator.Options{Seed: "one"})
	b := newSim(t, simulator.Options{Seed: "one"})
	c := newSim(t, simulator.Options{Seed: "two"})
	if !bytes.Equal(a.RootPEM(), b.RootPEM()) {
		t.Error("same seed gave different roots")
	}
	if bytes.Equal(a.RootPEM(), c.RootPEM()) {
		t.Error("different seeds gave the same root")
	}
	for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
		qa, err := a.Quote(simulator.QuoteOptions{TEE: tee})
		if err != nil {
			t.Fatal(err)
		}
		qb, err := b.Quote(simulator.QuoteOptions{TEE: tee})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(qa, qb) {
			t.Errorf("%s: same seed gave different quotes", tee)
		}
		sa, _ := a.Collateral(tee, "")
		sb, _ := b.Collateral(tee, "")
		for name, data := range sa.Files {
			if !bytes.Equal(data, sb.Files[name]) {
				t.Errorf("%s: same seed and time gave different %s", tee, name)
			}
		}
	}
	// A quote from one seed does not verify under another seed's root.
	q, err := a.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX})
	if err != nil {
		t.Fatal(err)
	}
	_, err = verifierFor(c, issueTime).VerifyQuote(context.Background(), q, mustCollateral(t, a, dcap.TEESGX))
	if dcap.CodeOf(err) != dcap.CodePCKChainInvalid {
		t.Errorf("quote of seed one under seed two's root: %v", err)
	}
}

// TestPinnedRootRejectsSimulator: without an explicit trust root, the
// verifier is anchored on Intel's root and refuses simulated evidence.
func TestPinnedRootRejectsSimulator(t *testing.T) {
	s := newSim(t, simulator.Options{})
	for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
		q, err := s.Quote(simulator.QuoteOptions{TEE: tee})
		if err != nil {
			t.Fatal(err)
		}
		v := dcap.NewVerifier(dcap.WithClock(func() time.Time { return issueTime }))
		_, err = v.VerifyQuote(context.Background(), q, mustCollateral(t, s, tee))
		if dcap.CodeOf(err) != dcap.CodePCKChainInvalid {
			t.Errorf("%s: simulated quote under Intel's root: %v", tee, err)
		}
	}
}

// TestCollateralFiles: the PCS-format files load through the verifier's
// loaders, each detected as its format, and together verify a quote like
// the bundle does.
func TestCollateralFiles(t *testing.T) {
	s := newSim(t, simulator.Options{})
	wantFormat := map[string]dcap.Format{
		"tcbinfo-sgx.json": dcap.FormatPCSTCBInfo, "qeidentity-sgx.json": dcap.FormatPCSQEIdentity,
		"tcbinfo-tdx.json": dcap.FormatPCSTCBInfo, "qeidentity-tdx.json": dcap.FormatPCSQEIdentity,
		"tcb-info-issuer-chain.pem": dcap.FormatPEM, "rootcrl.der": dcap.FormatDERCRL,
		"pckcrl-platform.der": dcap.FormatDERCRL, "pckcrl-processor.der": dcap.FormatDERCRL,
		"pckcrl-platform-issuer-chain.pem": dcap.FormatPEM, "pckcrl-processor-issuer-chain.pem": dcap.FormatPEM,
		"root.pem": dcap.FormatPEM, "bundle-sgx.json": dcap.FormatAttestdBundle, "bundle-tdx.json": dcap.FormatAttestdBundle,
	}
	for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
		set, err := s.Collateral(tee, "")
		if err != nil {
			t.Fatal(err)
		}
		var parts []*dcap.Collateral
		for _, name := range set.FileNames() {
			col, format, err := dcap.LoadCollateral(set.Files[name])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if format != wantFormat[name] {
				t.Errorf("%s detected as %s, want %s", name, format, wantFormat[name])
			}
			if slices.Contains(set.VerificationFiles(), name) {
				parts = append(parts, col)
			}
		}
		q, err := s.Quote(simulator.QuoteOptions{TEE: tee})
		if err != nil {
			t.Fatal(err)
		}
		res, err := verifierFor(s, issueTime).VerifyQuote(context.Background(), q, dcap.MergeCollateral(parts...))
		if err != nil {
			t.Fatalf("%s from PCS files: %v", tee, err)
		}
		if res.Collateral.TCBInfoHash == "" {
			t.Error("no collateral hashes")
		}
	}
	if _, err := s.CollateralForFMSPC(dcap.TEESGX, [6]byte{1, 2, 3, 4, 5, 6}); err == nil {
		t.Error("collateral served for an unknown FMSPC")
	}
}

// TestValidityWindow: the collateral is valid for 30 days from its issue
// time and not outside.
func TestValidityWindow(t *testing.T) {
	s := newSim(t, simulator.Options{})
	q, err := s.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX})
	if err != nil {
		t.Fatal(err)
	}
	col := mustCollateral(t, s, dcap.TEESGX)
	for _, c := range []struct {
		at   time.Time
		code dcap.Code
	}{
		{issueTime, ""},
		{issueTime.Add(30 * 24 * time.Hour), ""},
		{issueTime.Add(-time.Second), dcap.CodeCollateralExpired},
		{issueTime.Add(30*24*time.Hour + time.Second), dcap.CodeCollateralExpired},
	} {
		_, err := verifierFor(s, c.at).VerifyQuote(context.Background(), q, col)
		if dcap.CodeOf(err) != c.code {
			t.Errorf("at %s: %v, want %q", c.at, err, c.code)
		}
	}
}

// TestOptionErrors: impossible quote shapes and platforms are refused.
func TestOptionErrors(t *testing.T) {
	s := newSim(t, simulator.Options{})
	for _, o := range []simulator.QuoteOptions{
		{TEE: dcap.TEESGX, Version: 2},
		{TEE: dcap.TEESGX, Version: 4, Body: dcap.BodyTD15},
		{TEE: dcap.TEETDX, Version: 3},
		{TEE: dcap.TEETDX, Version: 4, Body: dcap.BodyTD15},
		{TEE: dcap.TEETDX, Version: 5, Body: dcap.BodySGX},
		{TEE: 7},
	} {
		if _, err := s.Quote(o); err == nil {
			t.Errorf("%+v was accepted", o)
		}
	}
	p := simulator.DefaultPlatform()
	p.PCESVN = 1
	if _, err := simulator.New(simulator.Options{Platform: &p}); err == nil {
		t.Error("a platform with PCESVN 1 was accepted")
	}
}

// TestProcessorCA: a platform certified by the Processor CA verifies too.
func TestProcessorCA(t *testing.T) {
	p := simulator.DefaultPlatform()
	p.CA = simulator.ProcessorCA
	s := newSim(t, simulator.Options{Platform: &p})
	for _, fault := range []string{"", simulator.FaultRevokedPCKCertificate} {
		q, err := s.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX, Fault: fault})
		if err != nil {
			t.Fatal(err)
		}
		res, err := verifierFor(s, issueTime).VerifyQuote(context.Background(), q, mustCollateral(t, s, dcap.TEESGX))
		want, _ := s.Expect(dcap.TEESGX, fault)
		if dcap.CodeOf(err) != want.Code {
			t.Fatalf("fault %q: %v, want %q", fault, err, want.Code)
		}
		if err == nil && (res.PCK.SGXType != dcap.SGXTypeStandard || res.PCK.PlatformInstanceID != nil) {
			t.Errorf("processor PCK extension: %+v", res.PCK)
		}
	}
}

// TestRevokedSerials: any serial can be revoked, the platform's own PCK
// certificate included.
func TestRevokedSerials(t *testing.T) {
	clean := newSim(t, simulator.Options{})
	s := newSim(t, simulator.Options{RevokedSerials: []*big.Int{clean.PCKCertificate().SerialNumber}})
	for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
		q, err := s.Quote(simulator.QuoteOptions{TEE: tee})
		if err != nil {
			t.Fatal(err)
		}
		_, err = verifierFor(s, issueTime).VerifyQuote(context.Background(), q, mustCollateral(t, s, tee))
		if dcap.CodeOf(err) != dcap.CodePCKRevoked {
			t.Errorf("%s: quote with a revoked PCK certificate: %v", tee, err)
		}
	}
	if _, err := simulator.New(simulator.Options{RevokedSerials: []*big.Int{big.NewInt(0)}}); err == nil {
		t.Error("serial 0 was accepted")
	}
}
