// Package simulator is a simulated Intel TEE platform with its own PKI. It
// mints SGX and TDX DCAP quotes and the collateral to verify them
// (certificates, CRLs, TCB Info, QE Identity), both valid and deliberately
// broken in named ways (see Faults), so that every verdict of the verifier,
// the service and the clients can be produced on any machine, without
// Intel hardware.
//
// The PKI mirrors Intel's: a root CA, PCK Platform and Processor CAs below
// it issuing PCK leaf certificates with Intel's SGX extension, a TCB Signing
// certificate signing TCB Info and QE Identity, and CRLs for the root and
// each PCK CA. The names say "attestd Simulated" so that simulated
// artefacts are never mistaken for Intel's, and nothing chains to Intel's
// root: a verifier accepts simulated evidence only when it is explicitly
// told to trust the simulator's root (dcap.WithTrustRoot).
//
// Everything is derived from a seed: one seed gives one PKI and one
// platform, byte for byte, on every run. The seed is not a secret in any
// useful sense (DefaultSeed is published), so simulated evidence proves
// nothing about any machine; it exists for development and tests.
package simulator

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
)

// DefaultSeed is the seed used when none is given. It is public, so the
// keys it derives are known to everyone: never trust its root outside
// development and tests.
const DefaultSeed = "attestd-insecure-dev-seed"

// collateralLifetime is the span between issue date and nextUpdate of TCB
// Info, QE Identity and CRLs, as Intel's PCS serves them.
const collateralLifetime = 30 * 24 * time.Hour

// PCKCA selects which of Intel's two PCK CAs issues the platform's PCK
// certificates.
type PCKCA int

const (
	// PlatformCA issues PCK certificates of multi-package (server)
	// platforms; its leaves carry the platform instance ID and the
	// configuration. TDX platforms use it, so it is the default.
	PlatformCA PCKCA = iota
	// ProcessorCA issues PCK certificates of single-package platforms.
	ProcessorCA
)

func (c PCKCA) String() string {
	switch c {
	case PlatformCA:
		return "platform"
	case ProcessorCA:
		return "processor"
	}
	return fmt.Sprintf("PCKCA(%d)", int(c))
}

// Platform describes the simulated machine: what its PCK certificate says
// and what its TDX module and quoting enclaves report.
type Platform struct {
	FMSPC [6]byte
	PCEID [2]byte
	// TCBComponents are the 16 SGX TCB components (CPUSVN components) the
	// PCK certificate is issued for; the quotes' CPUSVN is the same bytes.
	// Component 0 must be at least 2 and PCESVN at least 2: the simulator
	// publishes out-of-date and revoked TCB levels below the platform's,
	// and needs a TCB below every level for tcb-level-not-supported.
	TCBComponents [16]uint8
	PCESVN        uint16
	// PPID is the platform's provisioning ID; zero derives one from the seed.
	PPID [16]byte
	// CA is the PCK CA that certifies the platform.
	CA PCKCA
	// TEETCBSVN is the TDX TEE_TCB_SVN: [0] the TDX module SVN, [1] the
	// module's major version (0 for TDX 1.0, judged by the TCB levels'
	// TDX components instead of a module identity), [2] the TDX microcode
	// SVN, and so on.
	TEETCBSVN [16]byte
	// QESVN and TDQESVN are the ISVSVNs of the SGX and TD quoting enclaves.
	QESVN   uint16
	TDQESVN uint16
}

// DefaultPlatform returns the platform used when Options.Platform is nil:
// shaped like a current Xeon with TDX 1.5, with an FMSPC Intel does not use.
func DefaultPlatform() Platform {
	return Platform{
		FMSPC:         [6]byte{0x5a, 0x5a, 0x00, 0x51, 0x00, 0x00},
		PCEID:         [2]byte{0x00, 0x00},
		TCBComponents: [16]uint8{7, 7, 2, 2, 3, 1, 0, 3},
		PCESVN:        13,
		TEETCBSVN:     [16]byte{5, 1, 7},
		QESVN:         8,
		TDQESVN:       4,
	}
}

// TCBConfig sets what the simulated TCB Info says about the platform's own
// TCB level. The lower levels (ConfigurationNeeded, OutOfDate, Revoked)
// that the faults select are fixed.
type TCBConfig struct {
	// Status is the status of the platform's TCB level, so the status a
	// clean quote verifies with. Empty means UpToDate. Revoked is refused:
	// the revoked-tcb fault produces that verdict.
	Status dcap.TCBStatus
	// AdvisoryIDs are the advisories of the platform's level.
	AdvisoryIDs []string
	// TCBEvaluationDataNumber of the TCB Info and QE Identity; zero means 17.
	TCBEvaluationDataNumber int
}

// Advisory IDs of the simulator's fixed lower TCB levels: clearly not
// Intel's, in Intel's shape.
// Functions, not variables, so that no caller can change them.
func configurationNeededAdvisories() []string { return []string{"SIM-SA-00003"} }
func outOfDateAdvisories() []string           { return []string{"SIM-SA-00001", "SIM-SA-00002"} }

// Options configures a Simulator. The zero value is valid: the default
// seed, the current time, the default platform, an UpToDate TCB.
type Options struct {
	// Seed selects the PKI and the platform; empty means DefaultSeed.
	Seed string
	// Now is the time collateral is issued at (TCB Info and QE Identity
	// issueDate, CRL thisUpdate; nextUpdate 30 days later). Zero means the
	// current time. Verify simulator evidence at a time in that window.
	Now time.Time
	// Platform nil means DefaultPlatform().
	Platform *Platform
	TCB      TCBConfig
	// RevokedSerials are certificate serial numbers to list as revoked,
	// besides the ones the faults need: in every PCK CA's CRL and in the
	// Root CA CRL. PCKCertificate gives the serial of the platform's own
	// PCK certificate.
	RevokedSerials []*big.Int
}

// Simulator is one simulated platform with its PKI. It is immutable after
// New and safe for concurrent use.
type Simulator struct {
	seed     string
	now      time.Time
	platform Platform
	tcb      TCBConfig
	revoked  []*big.Int

	pki *pki
	// platformInstanceID goes into Platform CA leaves.
	platformInstanceID [16]byte
	// qeID is the QE's platform identifier, the first 16 bytes of the
	// quote header's user data.
	qeID [16]byte
	sgx  qeParts
	tdx  qeParts
	// mrseam and mrsignerseam identify the simulated TDX module.
	mrseam       [48]byte
	mrsignerseam [48]byte
	// app holds the default measurements of the simulated enclave and TD.
	app defaults
	// pcks holds the PCK certificate variants, by fault name ("" is the
	// platform's own), each with the chain the quote carries.
	pcks map[string]pckChain
}

// qeParts is what differs between the SGX and the TD quoting enclave: its
// identity and its attestation key.
type qeParts struct {
	mrenclave      [32]byte
	mrsigner       [32]byte
	prodID         uint16
	svn            uint16
	attestationKey *ecdsa.PrivateKey
	attestationPub [64]byte
}

// defaults are the measurements used for body fields a caller leaves zero.
type defaults struct {
	mrenclave, mrsigner [32]byte
	mrtd                [48]byte
	rtmr                [4][48]byte
}

// pckChain is a PCK certificate with the chain a quote carries for it.
type pckChain struct {
	leaf *x509.Certificate
	pem  []byte // leaf, CA, root
}

// New builds the simulator for opts: derives every key from the seed and
// issues the PKI's certificates.
func New(opts Options) (*Simulator, error) {
	s := &Simulator{seed: opts.Seed, now: opts.Now}
	for _, sn := range opts.RevokedSerials {
		if sn == nil || sn.Sign() <= 0 {
			return nil, errors.New("simulator: revoked serial numbers must be positive")
		}
		s.revoked = append(s.revoked, new(big.Int).Set(sn))
	}
	if s.seed == "" {
		s.seed = DefaultSeed
	}
	if s.now.IsZero() {
		s.now = time.Now()
	}
	// Second precision: JSON dates and CRL times carry no more, and the
	// verifier must see exactly the instant the options named.
	s.now = s.now.UTC().Truncate(time.Second)
	if opts.Platform != nil {
		s.platform = *opts.Platform
	} else {
		s.platform = DefaultPlatform()
	}
	if err := validatePlatform(&s.platform); err != nil {
		return nil, err
	}
	tcb, err := resolveTCB(opts.TCB)
	if err != nil {
		return nil, err
	}
	s.tcb = tcb

	if s.platform.PPID == [16]byte{} {
		if err := s.fill(s.platform.PPID[:], "ppid"); err != nil {
			return nil, err
		}
	}
	fills := []struct {
		dst   []byte
		label string
	}{
		{s.platformInstanceID[:], "platform-instance-id"},
		{s.qeID[:], "qe-id"},
		{s.sgx.mrenclave[:], "qe-mrenclave/sgx"},
		{s.sgx.mrsigner[:], "qe-mrsigner"},
		{s.tdx.mrenclave[:], "qe-mrenclave/tdx"},
		{s.mrseam[:], "mrseam"},
		{s.mrsignerseam[:], "mrsignerseam"},
		{s.app.mrenclave[:], "app/mrenclave"},
		{s.app.mrsigner[:], "app/mrsigner"},
		{s.app.mrtd[:], "app/mrtd"},
	}
	for i := range s.app.rtmr {
		fills = append(fills, struct {
			dst   []byte
			label string
		}{s.app.rtmr[i][:], fmt.Sprintf("app/rtmr%d", i)})
	}
	for _, f := range fills {
		if err := s.fill(f.dst, f.label); err != nil {
			return nil, err
		}
	}
	// Intel signs the QE and the TD QE with one key; so does the simulator.
	s.tdx.mrsigner = s.sgx.mrsigner
	s.sgx.prodID, s.sgx.svn = 1, s.platform.QESVN
	s.tdx.prodID, s.tdx.svn = 2, s.platform.TDQESVN
	for _, p := range []struct {
		parts *qeParts
		label string
	}{{&s.sgx, "attestation-key/sgx"}, {&s.tdx, "attestation-key/tdx"}} {
		if p.parts.attestationKey, err = deriveKey(s.seed, p.label); err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
		if p.parts.attestationPub, err = rawPublicKey(p.parts.attestationKey); err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
	}
	if s.pki, err = newPKI(s.seed); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	if err := s.issuePCKVariants(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	return s, nil
}

func (s *Simulator) fill(dst []byte, label string) error {
	b, err := deriveBytes(s.seed, "id/"+label, len(dst))
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	copy(dst, b)
	return nil
}

func validatePlatform(p *Platform) error {
	if p.PCESVN < 2 || p.TCBComponents[0] < 2 {
		return fmt.Errorf("simulator: platform PCESVN (%d) and TCB component 0 (%d) must be at least 2: the simulator publishes lower TCB levels and needs a TCB below every level", p.PCESVN, p.TCBComponents[0])
	}
	if p.QESVN == 0 || p.TDQESVN == 0 {
		return errors.New("simulator: platform QE SVNs must be at least 1 (a QE identity level at ISVSVN 0 would match every QE)")
	}
	if p.CA != PlatformCA && p.CA != ProcessorCA {
		return fmt.Errorf("simulator: unknown PCK CA %d", int(p.CA))
	}
	if p.FMSPC[4] == fmspcFaultMarker {
		return fmt.Errorf("simulator: FMSPC byte 4 must not be %#x: the simulator reserves it for the FMSPCs of faults", fmspcFaultMarker)
	}
	return nil
}

func resolveTCB(c TCBConfig) (TCBConfig, error) {
	out := TCBConfig{Status: c.Status, TCBEvaluationDataNumber: c.TCBEvaluationDataNumber}
	for _, id := range c.AdvisoryIDs {
		if id != "" {
			out.AdvisoryIDs = append(out.AdvisoryIDs, id)
		}
	}
	if out.Status == "" {
		out.Status = dcap.StatusUpToDate
	}
	if out.TCBEvaluationDataNumber == 0 {
		out.TCBEvaluationDataNumber = 17
	}
	switch out.Status {
	case dcap.StatusUpToDate, dcap.StatusSWHardeningNeeded, dcap.StatusConfigurationNeeded,
		dcap.StatusConfigurationAndSWHardeningNeeded, dcap.StatusOutOfDate, dcap.StatusOutOfDateConfigurationNeeded:
	case dcap.StatusRevoked:
		return out, errors.New("simulator: TCB status Revoked is not a platform configuration; use the revoked-tcb fault")
	default:
		return out, fmt.Errorf("simulator: TCB status %q is not one Intel publishes for a platform level", out.Status)
	}
	return out, nil
}

// Seed returns the seed the simulator was built from.
func (s *Simulator) Seed() string { return s.seed }

// Now returns the time collateral is issued at.
func (s *Simulator) Now() time.Time { return s.now }

// Platform returns the simulated platform.
func (s *Simulator) Platform() Platform { return s.platform }

// Root returns the simulator's root CA certificate, the one to pass to
// dcap.WithTrustRoot. It is a fresh copy.
func (s *Simulator) Root() *x509.Certificate {
	c, err := x509.ParseCertificate(s.pki.root.cert.Raw)
	if err != nil {
		return s.pki.root.cert // cannot happen: New parsed these bytes
	}
	return c
}

// PCKCertificate returns the platform's own PCK certificate (the one clean
// quotes carry).
func (s *Simulator) PCKCertificate() *x509.Certificate {
	c, err := x509.ParseCertificate(s.pcks[""].leaf.Raw)
	if err != nil {
		return s.pcks[""].leaf // cannot happen: New parsed these bytes
	}
	return c
}

// RootPEM returns the root CA certificate in PEM.
func (s *Simulator) RootPEM() []byte { return pemCerts(s.pki.root.cert) }

func pemCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// pckCA returns the CA that certifies the platform.
func (s *Simulator) pckCA() *issuer {
	if s.platform.CA == ProcessorCA {
		return &s.pki.processorCA
	}
	return &s.pki.platformCA
}

func (s *Simulator) qe(tee dcap.TEEType) *qeParts {
	if tee == dcap.TEETDX {
		return &s.tdx
	}
	return &s.sgx
}
