package simulator

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/attestd/attestd/evidence/dcap"
)

// Fault is a named injection: a way the simulator breaks evidence or its
// collateral on purpose, so that every rejection can be shown.
//
// Every fault is selected by the quote alone. Faults of the collateral
// (expired or wrongly signed documents) give the quote's PCK certificate an
// FMSPC of its own, and the simulator serves the broken collateral for that
// FMSPC (CollateralForFMSPC), as a collateral cache would serve a bad
// document for one platform. So a service that looks collateral up by
// FMSPC reaches every fault with one simulator.
type Fault struct {
	// Name is the stable identifier (attestctl sim quote --fault NAME).
	Name        string
	Description string
	// Code is the DCAP verifier's error code for evidence with this fault.
	// Empty when the verifier accepts the evidence: then the fault is a
	// TCB status (see Simulator.Expect) or is caught later, by CaughtBy.
	Code dcap.Code
	// CaughtBy names the later check that rejects evidence the verifier
	// accepts: "policy" (debug enclave: a policy that requires
	// x-ms-sgx-is-debuggable == false refuses it; MAA's default policies
	// permit it and only report the flag)
	// or "runtime-data-binding" (the service compares the report data
	// with the hash of the runtime data it was sent).
	CaughtBy string
	// TDXOnly faults concern only TD quotes (the TDX module).
	TDXOnly bool

	// pck names the PCK certificate variant the quote carries ("" = the
	// platform's own); fmspcIndex > 0 gives that variant an FMSPC of its
	// own, the fault's.
	pck        bool
	fmspcIndex byte
	// collateral breaks the collateral served for the fault's FMSPC.
	collateral func(*collateralSpec)
	// mutate adjusts the quote before it is built; post rewrites the bytes.
	mutate func(*mint)
	post   func([]byte, *mint) []byte
}

// AppliesTo reports whether the fault can be injected into quotes of tee.
func (f *Fault) AppliesTo(tee dcap.TEEType) bool {
	return !f.TDXOnly || tee == dcap.TEETDX
}

// fmspcFaultMarker in byte 4 of an FMSPC marks the FMSPC of a fault.
const fmspcFaultMarker = 0xfe

// The names of the faults, for code that refers to one.
const (
	FaultBadQuoteSignature            = "bad-quote-signature"
	FaultBadQEReportSignature         = "bad-qe-report-signature"
	FaultWrongQEReportBinding         = "wrong-qe-report-binding"
	FaultUnknownRoot                  = "unknown-root"
	FaultExpiredPCKCertificate        = "expired-pck-certificate"
	FaultRevokedPCKCertificate        = "revoked-pck-certificate"
	FaultRevokedIntermediateCA        = "revoked-intermediate-ca"
	FaultExpiredTCBInfo               = "expired-tcb-info"
	FaultExpiredQEIdentity            = "expired-qe-identity"
	FaultTCBInfoWrongKey              = "tcb-info-wrong-key"
	FaultFMSPCMismatch                = "fmspc-mismatch"
	FaultOutOfDateTCB                 = "out-of-date-tcb"
	FaultConfigurationNeededTCB       = "configuration-needed-tcb"
	FaultRevokedTCB                   = "revoked-tcb"
	FaultTCBLevelNotSupported         = "tcb-level-not-supported"
	FaultQEIdentityMismatch           = "qe-identity-mismatch"
	FaultTDXModuleMismatch            = "tdx-module-mismatch"
	FaultDebugEnclave                 = "debug-enclave"
	FaultTruncatedQuote               = "truncated-quote"
	FaultUnsupportedCertificationData = "unsupported-certification-data"
	FaultRuntimeDataMismatch          = "runtime-data-mismatch"
)

// faults is the catalogue. Faults returns copies; nothing mutates it.
func faults() []Fault {
	return []Fault{
		{
			Name: FaultBadQuoteSignature, Code: dcap.CodeQuoteSignatureInvalid,
			Description: "the attestation key's signature over header and body is corrupted",
			post: func(q []byte, m *mint) []byte {
				q[m.sigOffset+5] ^= 0x01
				return q
			},
		},
		{
			Name: FaultBadQEReportSignature, Code: dcap.CodeQEReportInvalid,
			Description: "the PCK key's signature over the QE report is corrupted",
			post: func(q []byte, m *mint) []byte {
				q[m.qeSigOffset+5] ^= 0x01
				return q
			},
		},
		{
			Name: FaultWrongQEReportBinding, Code: dcap.CodeQEReportInvalid,
			Description: "the QE report (validly signed) binds other authentication data, not the quote's attestation key and QE authentication data",
			mutate:      func(m *mint) { m.qeAuthDataForBinding = []byte("not the QE authentication data") },
		},
		{
			Name: FaultUnknownRoot, Code: dcap.CodePCKChainInvalid, pck: true,
			Description: "the PCK chain ends at a root CA the verifier does not trust (same names, other keys)",
		},
		{
			Name: FaultExpiredPCKCertificate, Code: dcap.CodeCertificateExpired, pck: true,
			Description: "the PCK certificate expired on 2021-01-01",
		},
		{
			Name: FaultRevokedPCKCertificate, Code: dcap.CodePCKRevoked, pck: true,
			Description: "the PCK certificate's serial is listed in the PCK CA's CRL",
		},
		{
			Name: FaultRevokedIntermediateCA, Code: dcap.CodePCKRevoked, pck: true,
			Description: "the PCK certificate is issued by a PCK CA whose serial is listed in the Root CA CRL",
		},
		{
			Name: FaultExpiredTCBInfo, Code: dcap.CodeCollateralExpired, pck: true, fmspcIndex: 1,
			Description: "the TCB Info served for the quote's FMSPC passed its nextUpdate 30 days ago",
			collateral:  func(c *collateralSpec) { c.tcbInfoAge = 2 * collateralLifetime },
		},
		{
			Name: FaultExpiredQEIdentity, Code: dcap.CodeCollateralExpired, pck: true, fmspcIndex: 2,
			Description: "the QE Identity served with the quote's collateral passed its nextUpdate 30 days ago",
			collateral:  func(c *collateralSpec) { c.qeIdentityAge = 2 * collateralLifetime },
		},
		{
			Name: FaultTCBInfoWrongKey, Code: dcap.CodeCollateralSignatureInvalid, pck: true, fmspcIndex: 3,
			Description: "the TCB Info served for the quote's FMSPC is signed by a key other than the TCB Signing certificate's",
			collateral:  func(c *collateralSpec) { c.tcbInfoWrongKey = true },
		},
		{
			Name: FaultFMSPCMismatch, Code: dcap.CodeCollateralMismatch, pck: true, fmspcIndex: 4,
			Description: "the PCK certificate names an FMSPC other than the TCB Info's (the collateral served is the platform's)",
			collateral:  func(c *collateralSpec) { c.fmspc = c.platformFMSPC },
		},
		{
			Name: FaultOutOfDateTCB, pck: true,
			Description: "the PCK certificate's TCB (SGX component 0 one lower, PCESVN one lower) matches an OutOfDate TCB level with advisories",
		},
		{
			Name: FaultConfigurationNeededTCB, pck: true,
			Description: "the PCK certificate's TCB (PCESVN one lower) matches a ConfigurationNeeded TCB level with an advisory",
		},
		{
			Name: FaultRevokedTCB, Code: dcap.CodeTCBRevoked, pck: true,
			Description: "the PCK certificate's TCB (SGX component 0 two lower, PCESVN one lower) matches a Revoked TCB level",
		},
		{
			Name: FaultTCBLevelNotSupported, Code: dcap.CodeTCBLevelNotSupported, pck: true,
			Description: "the PCK certificate's TCB is below every TCB level of the TCB Info",
		},
		{
			Name: FaultQEIdentityMismatch, Code: dcap.CodeQEIdentityMismatch,
			Description: "the quoting enclave's MRSIGNER is not the QE Identity's",
			mutate: func(m *mint) {
				for i := range m.qe.mrsigner {
					m.qe.mrsigner[i] ^= 0xa5
				}
			},
		},
		{
			Name: FaultTDXModuleMismatch, Code: dcap.CodeTDXModuleMismatch, TDXOnly: true,
			Description: "the TD's MRSIGNERSEAM is not the TDX module identity's mrsigner",
			mutate: func(m *mint) {
				other := m.s.mrsignerseam
				other[0] ^= 0xff
				m.mrsignerseam = &other
			},
		},
		{
			Name: FaultDebugEnclave, CaughtBy: "policy",
			Description: "the enclave (SGX ATTRIBUTES.DEBUG) or TD (TD_ATTRIBUTES.DEBUG) is debuggable: the evidence verifies, policy must refuse it",
			mutate:      func(m *mint) { m.o.Debug = true },
		},
		{
			Name: FaultTruncatedQuote, Code: dcap.CodeMalformedQuote,
			Description: "the quote is cut off inside its certification data",
			post: func(q []byte, _ *mint) []byte {
				return q[:len(q)-100]
			},
		},
		{
			Name: FaultUnsupportedCertificationData, Code: dcap.CodeUnsupportedCertificationData,
			Description: "the QE report is certified with certification data type 3 (encrypted PPID) instead of the PCK chain",
			mutate:      func(m *mint) { m.certDataType = dcap.CertDataPPIDRSA3072 },
		},
		{
			Name: FaultRuntimeDataMismatch, CaughtBy: "runtime-data-binding",
			Description: "the report data is not SHA-256 of the runtime data sent with the quote: the evidence verifies, the binding check must refuse it",
			mutate: func(m *mint) {
				rd := BindRuntimeData(append([]byte("not the runtime data:"), m.o.RuntimeData...))
				m.reportDataOverride = &rd
			},
		},
	}
}

// Faults returns the fault catalogue in a stable order.
func Faults() []Fault { return faults() }

// FaultNames returns the names of every fault, in catalogue order.
func FaultNames() []string {
	var names []string
	for _, f := range faults() {
		names = append(names, f.Name)
	}
	return names
}

// LookupFault returns the fault called name.
func LookupFault(name string) (Fault, error) {
	f, err := lookupFault(name)
	if err != nil {
		return Fault{}, err
	}
	if f == nil {
		return Fault{}, errors.New("simulator: empty fault name")
	}
	return *f, nil
}

func lookupFault(name string) (*Fault, error) {
	if name == "" {
		return nil, nil
	}
	all := faults()
	i := slices.IndexFunc(all, func(f Fault) bool { return f.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("simulator: unknown fault %q (known: %s)", name, strings.Join(FaultNames(), ", "))
	}
	return &all[i], nil
}

// Expectation is what the DCAP verifier concludes about evidence from this
// simulator: an error code, or a TCB status with advisory IDs.
type Expectation struct {
	Code        dcap.Code
	TCBStatus   dcap.TCBStatus
	AdvisoryIDs []string
}

// Expect predicts the verifier's verdict for a quote of tee with fault
// (empty for a clean quote), verified with the collateral this simulator
// serves for it, inside the collateral's validity window.
func (s *Simulator) Expect(tee dcap.TEEType, fault string) (Expectation, error) {
	f, err := lookupFault(fault)
	if err != nil {
		return Expectation{}, err
	}
	clean := Expectation{TCBStatus: s.tcb.Status, AdvisoryIDs: sortedIDs(s.tcb.AdvisoryIDs)}
	if f == nil {
		return clean, nil
	}
	if !f.AppliesTo(tee) {
		return Expectation{}, fmt.Errorf("simulator: fault %s does not apply to %s quotes", f.Name, tee)
	}
	switch {
	case f.Code != "":
		return Expectation{Code: f.Code}, nil
	case f.Name == FaultOutOfDateTCB:
		return Expectation{TCBStatus: dcap.StatusOutOfDate, AdvisoryIDs: sortedIDs(outOfDateAdvisories())}, nil
	case f.Name == FaultConfigurationNeededTCB:
		return Expectation{TCBStatus: dcap.StatusConfigurationNeeded, AdvisoryIDs: sortedIDs(configurationNeededAdvisories())}, nil
	}
	return clean, nil
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// faultFMSPC is the FMSPC of the fault with index i: the platform's with
// byte 4 set to the marker and byte 5 to the index.
func (s *Simulator) faultFMSPC(i byte) [6]byte {
	f := s.platform.FMSPC
	f[4], f[5] = fmspcFaultMarker, i
	return f
}

// issuePCKVariants issues the platform's PCK certificate and every
// variant a fault carries, each with its chain.
func (s *Simulator) issuePCKVariants() error {
	p := s.platform
	below := func(dComp0 uint8, dPCESVN uint16) ([16]uint8, uint16) {
		c := p.TCBComponents
		c[0] -= dComp0
		return c, p.PCESVN - dPCESVN
	}
	ca := s.pckCA()
	base := pckSpec{label: "platform", issuer: ca, fmspc: p.FMSPC, components: p.TCBComponents, pcesvn: p.PCESVN}
	specs := map[string]pckSpec{"": base}
	for _, f := range faults() {
		if !f.pck {
			continue
		}
		spec := base
		spec.label = f.Name
		if f.fmspcIndex > 0 {
			spec.fmspc = s.faultFMSPC(f.fmspcIndex)
		}
		switch f.Name {
		case FaultUnknownRoot:
			spec.issuer = &s.pki.strangerCA
		case FaultExpiredPCKCertificate:
			spec.notAfter = expiredNotAfter
		case FaultRevokedPCKCertificate:
			spec.serial = s.pki.revokedPCKSerial
		case FaultRevokedIntermediateCA:
			spec.issuer = &s.pki.revokedCA
		case FaultConfigurationNeededTCB:
			spec.components, spec.pcesvn = below(0, 1)
		case FaultOutOfDateTCB:
			spec.components, spec.pcesvn = below(1, 1)
		case FaultRevokedTCB:
			spec.components, spec.pcesvn = below(2, 1)
		case FaultTCBLevelNotSupported:
			spec.components, spec.pcesvn = below(2, 2)
		}
		specs[f.Name] = spec
	}
	s.pcks = make(map[string]pckChain, len(specs))
	for name, spec := range specs {
		leaf, err := s.issuePCK(spec)
		if err != nil {
			return err
		}
		chain := pemCerts(leaf, spec.issuer.cert, s.pki.root.cert)
		if spec.issuer == &s.pki.strangerCA {
			// Leaf and CA only: the stranger CA bears the trusted root's
			// name, so what rejects the chain is the CA's signature not
			// verifying under the trusted root's key, the check this
			// fault is about (a chain carrying its own foreign root would
			// be refused earlier, for its length).
			chain = pemCerts(leaf, spec.issuer.cert)
		}
		s.pcks[name] = pckChain{leaf: leaf, pem: chain}
	}
	return nil
}
