package dcap

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// Verifier verifies DCAP quotes against collateral, anchored on one trusted
// root (Intel's SGX Root CA unless WithTrustRoot says otherwise). It caches
// what is sound to cache: verified collateral by content fingerprint,
// verified PCK chains by their bytes, and QE report signatures per PCK
// leaf. Validity windows are re-checked against the clock on every call.
// A Verifier is safe for concurrent use.
type Verifier struct {
	root  *x509.Certificate
	clock func() time.Time

	mu         sync.Mutex
	chains     map[string]*pckEntry // keyed by the PEM chain bytes
	collateral map[[32]byte]*collateralEntry
	maxEntries int
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithTrustRoot anchors verification on root instead of Intel's SGX Root CA.
// Use it for the simulator's PKI; nothing else should need it.
func WithTrustRoot(root *x509.Certificate) Option {
	return func(v *Verifier) { v.root = root }
}

// WithClock sets the source of the verification time.
func WithClock(clock func() time.Time) Option {
	return func(v *Verifier) { v.clock = clock }
}

// WithCacheSize bounds each cache (PCK chains, collateral sets); when full
// a cache is emptied. The default is 4096.
func WithCacheSize(n int) Option {
	return func(v *Verifier) { v.maxEntries = n }
}

// NewVerifier returns a Verifier anchored on Intel's SGX Root CA with the
// system clock, unless options say otherwise.
func NewVerifier(opts ...Option) *Verifier {
	v := &Verifier{clock: time.Now, maxEntries: 4096}
	for _, o := range opts {
		o(v)
	}
	if v.root == nil {
		v.root = IntelSGXRootCA()
	}
	v.chains = map[string]*pckEntry{}
	v.collateral = map[[32]byte]*collateralEntry{}
	return v
}

// TrustRoot returns the certificate verification is anchored on.
func (v *Verifier) TrustRoot() *x509.Certificate { return v.root }

// pckEntry is a PCK chain whose signatures verified.
type pckEntry struct {
	chain   *verifiedChain
	leafKey *ecdsa.PublicKey
	ext     *PCKExtension
	// qeReports holds SHA-256(QE report || signature) of QE reports whose
	// signature by this leaf verified.
	qeReports sync.Map
}

// collateralEntry is a collateral set whose signatures verified.
type collateralEntry struct {
	tcbInfo  *TCBInfo
	levels   []*TCBLevel
	qeID     *QEIdentity
	tcbChain *verifiedChain
	qeChain  *verifiedChain
	rootCRL  *crlState
	window   window
	hashes   CollateralHashes
	// pckCRLs caches the PCK CA CRL check per CA certificate.
	pckCRLs sync.Map // [32]byte SHA-256 of CA cert -> *crlState
}

// CollateralHashes are hex SHA-256 digests of the collateral a verdict
// rests on, under the names MAA uses in x-ms-sgx-collateral.
type CollateralHashes struct {
	QEIDCertsHash    string `json:"qeidcertshash"`
	QEIDCRLHash      string `json:"qeidcrlhash"`
	QEIDHash         string `json:"qeidhash"`
	QuoteHash        string `json:"quotehash"`
	TCBInfoCertsHash string `json:"tcbinfocertshash"`
	TCBInfoCRLHash   string `json:"tcbinfocrlhash"`
	TCBInfoHash      string `json:"tcbinfohash"`
}

// Result is a verified quote.
type Result struct {
	Quote        *Quote
	TEE          TEEType
	QuoteVersion int
	// TCBStatus is the overall status: platform, TDX module and QE merged
	// as Intel's QVL merges them. It is never Revoked (that is an error).
	TCBStatus TCBStatus
	// AdvisoryIDs are the platform's, the TDX module's and the QE's advisory
	// IDs, sorted, without duplicates; never nil.
	AdvisoryIDs []string
	// TCBDate is the earliest tcbDate of the matched levels.
	TCBDate time.Time
	// TCBEvaluationDataNumber is the lower of the TCB Info's and the QE
	// Identity's.
	TCBEvaluationDataNumber int
	PlatformTCBStatus       TCBStatus
	PlatformTCBDate         time.Time
	QETCBStatus             TCBStatus
	QETCBDate               time.Time
	// TDXModule is set for TDX quotes whose module version is not 0.
	TDXModule *TDXModuleResult
	// TDRelaunchAdvised is set when the TD runs on an updated module and a
	// relaunch would clear the OutOfDate status.
	TDRelaunchAdvised bool

	PCK              *PCKExtension
	PCKLeaf          *x509.Certificate
	Collateral       CollateralHashes
	CollateralExpiry time.Time // earliest expiry of any item the verdict used
	VerifiedAt       time.Time
}

// TDXModuleResult is the matched TDX module identity and level.
type TDXModuleResult struct {
	ID          string    `json:"id"`
	ISVSVN      uint16    `json:"isvsvn"`
	TCBStatus   TCBStatus `json:"tcbStatus"`
	TCBDate     time.Time `json:"tcbDate"`
	AdvisoryIDs []string  `json:"advisoryIDs"`
}

// VerifyQuote parses raw and verifies it (see Verify).
func (v *Verifier) VerifyQuote(ctx context.Context, raw []byte, col *Collateral) (*Result, error) {
	q, err := ParseQuote(raw)
	if err != nil {
		return nil, err
	}
	return v.Verify(ctx, q, col)
}

// Verify checks a parsed quote down to the trusted root at the clock's
// time: the PCK chain and its revocation, the QE report and its binding of
// the attestation key, the quote signature, the collateral's signatures and
// validity, the QE identity and the TCB levels. Non-terminal TCB statuses
// are results; only failures are errors, each an *Error with a Code.
func (v *Verifier) Verify(ctx context.Context, q *Quote, col *Collateral) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	at := v.clock().UTC()
	if q.Header.QEVendorID != IntelQEVendorID {
		return nil, newErr(CodeUnsupportedQuoteVersion, "QE vendor ID %x is not Intel's (%x)", q.Header.QEVendorID, IntelQEVendorID)
	}

	pck, err := v.pckChain(q.PCKChainPEM)
	if err != nil {
		return nil, err
	}
	if !pck.chain.window.contains(at) {
		if err := checkChainAt(pck.chain.certs, at); err != nil {
			return nil, err
		}
	}
	if err := v.checkQEReport(pck, q); err != nil {
		return nil, err
	}
	if err := verifyQuoteSignature(q); err != nil {
		return nil, err
	}

	if col == nil {
		return nil, newErr(CodeCollateralMissing, "no collateral was supplied")
	}
	ce, err := v.collateralState(col, at)
	if err != nil {
		return nil, err
	}

	// Revocation of the PCK chain: the CA by the Root CA CRL, the leaf by
	// the CA's CRL.
	pckCA := pck.chain.certs[1]
	if ce.rootCRL.isRevoked(pckCA) {
		return nil, newErr(CodePCKRevoked, "PCK CA certificate %s (serial %x) is revoked by the Root CA CRL", certName(pckCA), pckCA.SerialNumber)
	}
	pckCRL, err := v.pckCRL(ce, col, pckCA)
	if err != nil {
		return nil, err
	}
	if err := checkCRLAt(pckCRL, "PCK CRL", at); err != nil {
		return nil, err
	}
	leaf := pck.chain.certs[0]
	if pckCRL.isRevoked(leaf) {
		return nil, newErr(CodePCKRevoked, "PCK certificate (serial %x) is revoked by the CRL of %s", leaf.SerialNumber, certName(pckCA))
	}

	// The collateral must be for this platform and TEE.
	info := ce.tcbInfo
	wantID, wantQE := "SGX", "QE"
	if q.TEE() == TEETDX {
		wantID, wantQE = "TDX", "TD_QE"
	}
	if info.ID != wantID {
		return nil, newErr(CodeCollateralMismatch, "TCB Info is for %s but the quote is %s", info.ID, wantID)
	}
	if info.FMSPC != pck.ext.FMSPC {
		return nil, newErr(CodeCollateralMismatch, "TCB Info is for FMSPC %x but the PCK certificate's FMSPC is %x", info.FMSPC, pck.ext.FMSPC)
	}
	if info.PCEID != pck.ext.PCEID {
		return nil, newErr(CodeCollateralMismatch, "TCB Info is for PCE ID %x but the PCK certificate's PCE ID is %x", info.PCEID, pck.ext.PCEID)
	}
	if ce.qeID.ID != wantQE {
		return nil, newErr(CodeCollateralMismatch, "QE Identity is for %s but a %s quote needs %s", ce.qeID.ID, wantID, wantQE)
	}

	m, err := evaluateTCB(info, ce.levels, ce.qeID, pck.ext, q)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Quote: q, TEE: q.TEE(), QuoteVersion: int(q.Header.Version),
		TCBStatus:               m.status,
		PlatformTCBStatus:       m.platform.TCBStatus,
		PlatformTCBDate:         m.platform.TCBDate,
		QETCBStatus:             m.qeLevel.TCBStatus,
		QETCBDate:               m.qeLevel.TCBDate,
		TCBDate:                 m.platform.TCBDate,
		TCBEvaluationDataNumber: min(info.TCBEvaluationDataNumber, ce.qeID.TCBEvaluationDataNumber),
		TDRelaunchAdvised:       m.relaunch,
		PCK:                     pck.ext,
		PCKLeaf:                 leaf,
		Collateral:              ce.hashes,
		VerifiedAt:              at,
	}
	if m.qeLevel.TCBDate.Before(res.TCBDate) {
		res.TCBDate = m.qeLevel.TCBDate
	}
	advisories := [][]string{m.platform.AdvisoryIDs, m.qeLevel.AdvisoryIDs}
	if m.moduleLevel != nil {
		res.TDXModule = &TDXModuleResult{
			ID: m.module.ID, ISVSVN: uint16(q.TD.TEETCBSVN[0]), TCBStatus: m.moduleLevel.TCBStatus,
			TCBDate: m.moduleLevel.TCBDate, AdvisoryIDs: sortedUnion(m.moduleLevel.AdvisoryIDs),
		}
		advisories = append(advisories, m.moduleLevel.AdvisoryIDs)
		if m.moduleLevel.TCBDate.Before(res.TCBDate) {
			res.TCBDate = m.moduleLevel.TCBDate
		}
	}
	res.AdvisoryIDs = sortedUnion(advisories...)
	res.Collateral.QuoteHash = hexSHA256(q.Raw)
	expiry := ce.window.notAfter
	if pck.chain.window.notAfter.Before(expiry) {
		expiry = pck.chain.window.notAfter
	}
	if pckCRL.crl.List.NextUpdate.Before(expiry) {
		expiry = pckCRL.crl.List.NextUpdate
	}
	res.CollateralExpiry = expiry.UTC()
	return res, nil
}

// pckChain parses and verifies the quote's PCK chain, or returns the cached
// result for the same bytes.
func (v *Verifier) pckChain(pemChain []byte) (*pckEntry, error) {
	// Indexing with string(pemChain) does not copy; the chain bytes are the
	// key, so a hit is exact without hashing them first.
	v.mu.Lock()
	e := v.chains[string(pemChain)]
	v.mu.Unlock()
	if e != nil {
		return e, nil
	}
	chain, err := ParsePEMChain(pemChain)
	if err != nil {
		return nil, wrapErr(CodePCKChainInvalid, err, "PCK certificate chain in the quote does not parse")
	}
	vc, err := verifyChainSignatures(chain.Certs, v.root, 2, CodePCKChainInvalid, "PCK certificate chain")
	if err != nil {
		return nil, err
	}
	leaf := vc.certs[0]
	leafKey, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || leafKey.Curve != elliptic.P256() {
		return nil, newErr(CodePCKChainInvalid, "PCK certificate key is not an ECDSA P-256 key")
	}
	ext, err := ParsePCKExtension(leaf)
	if err != nil {
		return nil, wrapErr(CodePCKChainInvalid, err, "PCK certificate SGX extension is invalid")
	}
	e = &pckEntry{chain: vc, leafKey: leafKey, ext: ext}
	v.mu.Lock()
	if len(v.chains) >= v.maxEntries {
		clear(v.chains)
	}
	v.chains[string(pemChain)] = e
	v.mu.Unlock()
	return e, nil
}

// checkQEReport verifies the QE report signature by the PCK key (cached per
// leaf) and that the QE report data binds the attestation key and QE
// authentication data.
func (v *Verifier) checkQEReport(pck *pckEntry, q *Quote) error {
	h := sha256.New()
	h.Write(q.QEReport.Raw())
	h.Write(q.QEReportSignature[:])
	var key [32]byte
	h.Sum(key[:0])
	if _, ok := pck.qeReports.Load(key); !ok {
		digest := sha256.Sum256(q.QEReport.Raw())
		if !verifyRawSignature(pck.leafKey, digest[:], q.QEReportSignature[:]) {
			return newErr(CodeQEReportInvalid, "QE report signature by the PCK key does not verify")
		}
		pck.qeReports.Store(key, struct{}{})
	}
	bh := sha256.New()
	bh.Write(q.AttestationKey[:])
	bh.Write(q.QEAuthData)
	var binding [32]byte
	bh.Sum(binding[:0])
	rd := q.QEReport.ReportData
	if !bytes.Equal(rd[:32], binding[:]) || [32]byte(rd[32:]) != [32]byte{} {
		return newErr(CodeQEReportInvalid, "QE report data is not SHA-256(attestation key || QE authentication data) followed by zeros: the attestation key is not bound to the QE")
	}
	return nil
}

func verifyQuoteSignature(q *Quote) error {
	point := make([]byte, 1+ecdsaPublicKeySize)
	point[0] = 4
	copy(point[1:], q.AttestationKey[:])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return wrapErr(CodeQuoteSignatureInvalid, err, "attestation key is not a P-256 point")
	}
	digest := sha256.Sum256(q.SignedData)
	if !verifyRawSignature(pub, digest[:], q.Signature[:]) {
		return newErr(CodeQuoteSignatureInvalid, "quote signature by the attestation key does not verify over the header and body")
	}
	return nil
}

// verifyRawSignature verifies an r||s P-256 signature.
func verifyRawSignature(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, digest, r, s)
}

// collateralState verifies the collateral (cached by fingerprint) and
// checks that every item is valid at t.
func (v *Verifier) collateralState(col *Collateral, at time.Time) (*collateralEntry, error) {
	fp := col.Fingerprint()
	v.mu.Lock()
	ce := v.collateral[fp]
	v.mu.Unlock()
	if ce != nil && ce.window.contains(at) {
		return ce, nil
	}
	ce, err := v.verifyCollateral(col)
	if err != nil {
		return nil, err
	}
	if err := ce.checkAt(at); err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.collateral) >= v.maxEntries {
		clear(v.collateral)
	}
	v.collateral[fp] = ce
	v.mu.Unlock()
	return ce, nil
}

func (v *Verifier) verifyCollateral(col *Collateral) (*collateralEntry, error) {
	switch {
	case col.TCBInfo == nil:
		return nil, newErr(CodeCollateralMissing, "TCB Info was not supplied")
	case col.QEIdentity == nil:
		return nil, newErr(CodeCollateralMissing, "QE Identity was not supplied")
	case col.TCBInfoIssuerChain == nil:
		return nil, newErr(CodeCollateralMissing, "TCB Info issuer chain (TCB Signing certificate) was not supplied")
	}
	qeChainSrc := col.QEIdentityIssuerChain
	if qeChainSrc == nil {
		qeChainSrc = col.TCBInfoIssuerChain
	}
	ce := &collateralEntry{tcbInfo: col.TCBInfo, qeID: col.QEIdentity, levels: sortedLevels(col.TCBInfo.TCBLevels)}
	var err error
	ce.tcbChain, err = verifyChainSignatures(col.TCBInfoIssuerChain.Certs, v.root, 1, CodeCollateralSignatureInvalid, "TCB Info issuer chain")
	if err != nil {
		return nil, err
	}
	ce.qeChain, err = verifyChainSignatures(qeChainSrc.Certs, v.root, 1, CodeCollateralSignatureInvalid, "QE Identity issuer chain")
	if err != nil {
		return nil, err
	}
	ce.rootCRL, err = verifyCRL(col.CRLs, v.root, "Root CA CRL")
	if err != nil {
		return nil, err
	}
	for _, ch := range []struct {
		c    *verifiedChain
		what string
	}{{ce.tcbChain, "TCB Info"}, {ce.qeChain, "QE Identity"}} {
		if ce.rootCRL.isRevoked(ch.c.certs[0]) {
			return nil, newErr(CodeCollateralSignatureInvalid, "%s signing certificate %s is revoked by the Root CA CRL", ch.what, certName(ch.c.certs[0]))
		}
	}
	if err := verifyDocSignature(ce.tcbChain.certs[0], col.TCBInfo.Raw, col.TCBInfo.Signature); err != nil {
		return nil, wrapErr(CodeCollateralSignatureInvalid, err, "TCB Info signature by %s does not verify", certName(ce.tcbChain.certs[0]))
	}
	if err := verifyDocSignature(ce.qeChain.certs[0], col.QEIdentity.Raw, col.QEIdentity.Signature); err != nil {
		return nil, wrapErr(CodeCollateralSignatureInvalid, err, "QE Identity signature by %s does not verify", certName(ce.qeChain.certs[0]))
	}
	w := ce.tcbChain.window
	w.narrow(ce.qeChain.window.notBefore, ce.qeChain.window.notAfter, ce.qeChain.window.firstNotAfter)
	w.narrow(col.TCBInfo.IssueDate, col.TCBInfo.NextUpdate, "TCB Info")
	w.narrow(col.QEIdentity.IssueDate, col.QEIdentity.NextUpdate, "QE Identity")
	w.narrow(ce.rootCRL.crl.List.ThisUpdate, ce.rootCRL.crl.List.NextUpdate, "Root CA CRL")
	ce.window = w

	var tcbChainRaw, qeChainRaw []byte
	for _, c := range col.TCBInfoIssuerChain.Certs {
		tcbChainRaw = append(tcbChainRaw, c.Raw...)
	}
	for _, c := range qeChainSrc.Certs {
		qeChainRaw = append(qeChainRaw, c.Raw...)
	}
	ce.hashes = CollateralHashes{
		QEIDCertsHash:    hexSHA256(qeChainRaw),
		QEIDCRLHash:      hexSHA256(ce.rootCRL.crl.DER),
		QEIDHash:         hexSHA256(col.QEIdentity.Raw),
		TCBInfoCertsHash: hexSHA256(tcbChainRaw),
		TCBInfoCRLHash:   hexSHA256(ce.rootCRL.crl.DER),
		TCBInfoHash:      hexSHA256(col.TCBInfo.Raw),
	}
	return ce, nil
}

// checkAt reports the first collateral item that is not valid at t.
func (ce *collateralEntry) checkAt(at time.Time) error {
	if err := checkChainAt(ce.tcbChain.certs, at); err != nil {
		return err
	}
	if err := checkChainAt(ce.qeChain.certs, at); err != nil {
		return err
	}
	for _, d := range []struct {
		what        string
		issue, next time.Time
	}{{"TCB Info", ce.tcbInfo.IssueDate, ce.tcbInfo.NextUpdate}, {"QE Identity", ce.qeID.IssueDate, ce.qeID.NextUpdate}} {
		if at.Before(d.issue) {
			return newErr(CodeCollateralExpired, "%s was issued at %s, after the verification time %s", d.what, d.issue.Format(time.RFC3339), at.Format(time.RFC3339))
		}
		if at.After(d.next) {
			return newErr(CodeCollateralExpired, "%s expired at its nextUpdate %s (verification time %s)", d.what, d.next.Format(time.RFC3339), at.Format(time.RFC3339))
		}
	}
	return checkCRLAt(ce.rootCRL, "Root CA CRL", at)
}

func (v *Verifier) pckCRL(ce *collateralEntry, col *Collateral, ca *x509.Certificate) (*crlState, error) {
	key := sha256.Sum256(ca.Raw)
	if s, ok := ce.pckCRLs.Load(key); ok {
		return s.(*crlState), nil
	}
	s, err := verifyCRL(col.CRLs, ca, "PCK CRL")
	if err != nil {
		return nil, err
	}
	ce.pckCRLs.Store(key, s)
	return s, nil
}

// verifyDocSignature checks an r||s signature over a JSON document's exact
// bytes with the signing certificate's key.
func verifyDocSignature(cert *x509.Certificate, raw, sig []byte) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("signing certificate key is not ECDSA")
	}
	digest := sha256.Sum256(raw)
	if !verifyRawSignature(pub, digest[:], sig) {
		return fmt.Errorf("ECDSA verification failed")
	}
	return nil
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
