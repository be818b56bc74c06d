package dcap_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/internal/testvectors"
)

// Negative tests on real vectors: every signed region of a quote and of its
// collateral is tampered with in turn, the verification time is moved just
// outside the validity window, collateral is left out or swapped, and the
// quote is truncated or patched. Each case runs on a fresh Verifier (the
// verifier caches collateral and PCK chains) and on a freshly built
// Collateral (a Collateral caches its fingerprint).
//
// The expectations follow the order of checks in verify.go: QE vendor ID,
// PCK chain, PCK chain validity, QE report signature, QE report binding of
// the attestation key, quote signature, then collateral (presence, issuer
// chains, Root CA CRL, TCB Info and QE Identity signatures, validity), PCK
// CRL, and finally the collateral/quote match (TCB Info id, FMSPC, PCE ID,
// QE Identity id).

// negSet is a COMPLETE DCAP vector set that verifies, with the offsets of
// the quote's fields.
type negSet struct {
	testvectors.Set
	raw  []byte           // the quote itself, without trailing bytes
	q    *dcap.Quote      // parsed from raw
	col  *dcap.Collateral // never mutated; clone it with negClone
	at   time.Time
	base *dcap.Result // the verdict on the untouched quote and collateral
	lay  negLayout
}

// negLayout holds absolute offsets into negSet.raw.
type negLayout struct {
	body, bodyLen int // report body
	reportData    int // the body's REPORTDATA
	sig           int // quote signature (start of the signature data)
	attKey        int // attestation key
	outerType     int // v4/v5 outer certification data type; -1 for v3
	qeReport      int
	qeReportSig   int
	qeAuth        int // QE authentication data (after its u16 size)
	certType      int // innermost certification data type (u16, then u32 size)
	pem           int // PCK chain PEM
}

// negSets returns every COMPLETE SGX/TDX set that expected.json says
// verifies, each checked to verify untouched; at least one of each kind.
func negSets(t *testing.T) []*negSet {
	t.Helper()
	dir, sets := testvectors.Sets(t)
	var out []*negSet
	kinds := map[string]int{}
	for _, s := range sets {
		if !s.Complete() || (s.Kind != "sgx" && s.Kind != "tdx") || s.Expected.Error != "" {
			continue
		}
		decoded, col := loadSet(t, dir, s)
		q, err := dcap.ParseQuote(decoded)
		if err != nil {
			t.Fatalf("%s: parse: %v", s.ID, err)
		}
		raw := bytes.Clone(q.Raw)
		if q, err = dcap.ParseQuote(raw); err != nil {
			t.Fatalf("%s: parse: %v", s.ID, err)
		}
		ns := &negSet{Set: s, raw: raw, q: q, col: col, at: atTime(t, s.VerificationTime)}
		ns.base, err = negVerifier(ns.at).VerifyQuote(context.Background(), raw, negClone(col))
		if err != nil {
			t.Fatalf("%s: untouched quote does not verify: %v", s.ID, err)
		}
		ns.lay = negLayoutOf(t, s.ID, raw, q)
		out = append(out, ns)
		kinds[s.Kind]++
	}
	if kinds["sgx"] == 0 || kinds["tdx"] == 0 {
		t.Fatalf("need a verifying SGX and TDX set; found %v", kinds)
	}
	return out
}

// negLayoutOf computes the field offsets the way ParseQuote reads them and
// checks each against the parsed quote, so a wrong offset fails loudly
// instead of tampering with the wrong bytes.
func negLayoutOf(t *testing.T, id string, raw []byte, q *dcap.Quote) negLayout {
	t.Helper()
	var l negLayout
	switch q.BodyType {
	case dcap.BodySGX:
		l.bodyLen = 384
	case dcap.BodyTD10:
		l.bodyLen = 584
	case dcap.BodyTD15:
		l.bodyLen = 648
	default:
		t.Fatalf("%s: body type %v", id, q.BodyType)
	}
	l.body = len(q.SignedData) - l.bodyLen
	l.reportData = l.body + 520
	if q.BodyType == dcap.BodySGX {
		l.reportData = l.body + 320
	}
	l.sig = len(q.SignedData) + 4
	l.attKey = l.sig + 64
	p := l.sig + 128
	l.outerType = -1
	if q.Header.Version >= 4 {
		l.outerType = p
		p += 6
	}
	l.qeReport = p
	l.qeReportSig = p + 384
	authSize := l.qeReportSig + 64
	l.qeAuth = authSize + 2
	l.certType = l.qeAuth + len(q.QEAuthData)
	l.pem = l.certType + 6

	rd := q.ReportData()
	checks := []struct {
		what string
		ok   bool
	}{
		{"header", l.body == 48 || (q.Header.Version == 5 && l.body == 54)},
		{"report data", bytes.Equal(raw[l.reportData:l.reportData+64], rd[:])},
		{"signature", bytes.Equal(raw[l.sig:l.sig+64], q.Signature[:])},
		{"attestation key", bytes.Equal(raw[l.attKey:l.attKey+64], q.AttestationKey[:])},
		{"outer type", l.outerType < 0 || binary.LittleEndian.Uint16(raw[l.outerType:]) == 6},
		{"QE report", bytes.Equal(raw[l.qeReport:l.qeReport+384], q.QEReport.Raw())},
		{"QE report signature", bytes.Equal(raw[l.qeReportSig:l.qeReportSig+64], q.QEReportSignature[:])},
		{"QE auth data size", int(binary.LittleEndian.Uint16(raw[authSize:])) == len(q.QEAuthData)},
		{"QE auth data", bytes.Equal(raw[l.qeAuth:l.certType], q.QEAuthData)},
		{"certification data type", binary.LittleEndian.Uint16(raw[l.certType:]) == 5},
		{"certification data size", int(binary.LittleEndian.Uint32(raw[l.certType+2:])) == len(q.PCKChainPEM)},
		{"PCK chain", l.pem+len(q.PCKChainPEM) <= len(raw) && bytes.Equal(raw[l.pem:l.pem+len(q.PCKChainPEM)], q.PCKChainPEM)},
	}
	for _, c := range checks {
		if !c.ok {
			t.Fatalf("%s: computed offset of the %s does not match the parsed quote", id, c.what)
		}
	}
	if len(q.QEAuthData) == 0 {
		t.Fatalf("%s: no QE authentication data to tamper with", id)
	}
	return l
}

func negVerifier(at time.Time) *dcap.Verifier {
	return dcap.NewVerifier(dcap.WithClock(func() time.Time { return at }))
}

// verify verifies on a fresh verifier at the set's time.
func (ns *negSet) verify(raw []byte, col *dcap.Collateral) (*dcap.Result, error) {
	return negVerifier(ns.at).VerifyQuote(context.Background(), raw, col)
}

// negClone returns a new Collateral with c's items (nil for nil).
func negClone(c *dcap.Collateral) *dcap.Collateral {
	if c == nil {
		return nil
	}
	return &dcap.Collateral{
		TCBInfo: c.TCBInfo, QEIdentity: c.QEIdentity,
		TCBInfoIssuerChain: c.TCBInfoIssuerChain, QEIdentityIssuerChain: c.QEIdentityIssuerChain,
		PCKCRLIssuerChain: c.PCKCRLIssuerChain,
		CRLs:              slices.Clone(c.CRLs),
	}
}

// negWant fails unless err carries code.
func negWant(t *testing.T, res *dcap.Result, err error, want dcap.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified (status %s); want %s", res.TCBStatus, want)
	}
	if got := dcap.CodeOf(err); got != want {
		t.Fatalf("code %q (%v); want %s", got, err, want)
	}
	t.Log(err)
}

// wantSame fails unless the verdict equals the untouched one.
func (ns *negSet) wantSame(t *testing.T, res *dcap.Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res.TCBStatus != ns.base.TCBStatus || !slices.Equal(res.AdvisoryIDs, ns.base.AdvisoryIDs) {
		t.Fatalf("status %s %v; want %s %v", res.TCBStatus, res.AdvisoryIDs, ns.base.TCBStatus, ns.base.AdvisoryIDs)
	}
}

// negFlip returns a copy of b with b[i] XORed with 0x01.
func negFlip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x01
	return out
}

// negFlipCertSignature flips the last byte of a certificate's DER, which
// lies in its signature value (the DER stays well formed).
func negFlipCertSignature(t *testing.T, c *x509.Certificate, der []byte) {
	t.Helper()
	if len(c.Signature) == 0 || !bytes.HasSuffix(der, c.Signature) {
		t.Fatal("certificate DER does not end with its signature value")
	}
	der[len(der)-1] ^= 0x01
}

// negFlipCertSerial flips a middle byte of the serial number in the TBS
// certificate (the DER stays well formed, the signature no longer covers
// it).
func negFlipCertSerial(t *testing.T, c *x509.Certificate, der []byte) {
	t.Helper()
	serial := c.SerialNumber.Bytes()
	tbs := bytes.Index(der, c.RawTBSCertificate)
	i := bytes.Index(c.RawTBSCertificate, serial)
	if tbs < 0 || i < 0 || len(serial) < 4 {
		t.Fatalf("serial %x not found in the TBS certificate", serial)
	}
	der[tbs+i+len(serial)/2] ^= 0x01
}

// negMutatePEMCert returns a copy of the PEM chain text with certificate
// idx changed by mutate, re-encoded in place: the DER keeps its length, so
// its base64 text does too, and the characters are replaced one for one
// around the original line breaks.
func negMutatePEMCert(t *testing.T, text []byte, idx int, mutate func(*testing.T, *x509.Certificate, []byte)) []byte {
	t.Helper()
	out := bytes.Clone(text)
	rest, pos := out, 0
	for i := 0; ; i++ {
		blk, r := pem.Decode(rest)
		if blk == nil {
			t.Fatalf("PEM chain has no certificate %d", idx)
		}
		consumed := len(rest) - len(r)
		if i != idx {
			pos += consumed
			rest = r
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		der := bytes.Clone(blk.Bytes)
		mutate(t, cert, der)
		enc := base64.StdEncoding.EncodeToString(der)
		seg := out[pos : pos+consumed]
		start := bytes.Index(seg, []byte("-----BEGIN"))
		start += bytes.IndexByte(seg[start:], '\n') + 1
		end := bytes.Index(seg, []byte("-----END"))
		k := 0
		for j := start; j < end; j++ {
			switch seg[j] {
			case '\n', '\r', ' ', '\t':
				continue
			}
			if k >= len(enc) {
				t.Fatal("re-encoded certificate is shorter than the original text")
			}
			seg[j] = enc[k]
			k++
		}
		if k != len(enc) {
			t.Fatalf("re-encoded certificate is %d base64 characters, the original %d", len(enc), k)
		}
		chain, err := dcap.ParsePEMChain(out)
		if err != nil {
			t.Fatalf("mutated chain does not parse: %v", err)
		}
		if !bytes.Equal(chain.Certs[idx].Raw, der) || bytes.Equal(der, blk.Bytes) {
			t.Fatal("mutated chain does not carry the mutated certificate")
		}
		return out
	}
}

// negMutateChain returns a new chain with certificate idx changed by mutate.
func negMutateChain(t *testing.T, ch *dcap.CertChain, idx int, mutate func(*testing.T, *x509.Certificate, []byte)) *dcap.CertChain {
	t.Helper()
	out := &dcap.CertChain{}
	for i, c := range ch.Certs {
		if i == idx {
			der := bytes.Clone(c.Raw)
			mutate(t, c, der)
			var err error
			if c, err = x509.ParseCertificate(der); err != nil {
				t.Fatalf("mutated certificate does not parse: %v", err)
			}
		}
		out.Certs = append(out.Certs, c)
		out.Raw = append(out.Raw, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// negFlipCRLSignature returns the CRL with the last byte of its DER (in
// the signature value) flipped, re-parsed; the issuer is unchanged, so the
// verifier still finds it.
func negFlipCRLSignature(t *testing.T, crl *dcap.CRL) *dcap.CRL {
	t.Helper()
	if len(crl.List.Signature) == 0 || !bytes.HasSuffix(crl.DER, crl.List.Signature) {
		t.Fatal("CRL DER does not end with its signature value")
	}
	der := negFlip(crl.DER, len(crl.DER)-1)
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("mutated CRL does not parse: %v", err)
	}
	if !bytes.Equal(l.RawIssuer, crl.List.RawIssuer) {
		t.Fatal("mutated CRL changed issuer")
	}
	return &dcap.CRL{DER: l.Raw, List: l}
}

// negJSONValue returns the offset of the first character of key's value
// in a JSON text (past the opening quote of a string).
func negJSONValue(t *testing.T, raw []byte, key string) int {
	t.Helper()
	i := bytes.Index(raw, []byte(`"`+key+`"`))
	if i < 0 {
		t.Fatalf("%q not found", key)
	}
	i += len(key) + 2
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r' || raw[i] == ':') {
		i++
	}
	if i < len(raw) && raw[i] == '"' {
		i++
	}
	if i >= len(raw) {
		t.Fatalf("%q has no value", key)
	}
	return i
}

// negSwapChar returns a copy of raw with raw[i], a digit or hex digit,
// replaced by another one ('0' <-> '1', anything else -> '0').
func negSwapChar(t *testing.T, raw []byte, i int) []byte {
	t.Helper()
	c := raw[i]
	if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
		t.Fatalf("byte %q at %d is not a hex digit", c, i)
	}
	out := bytes.Clone(raw)
	out[i] = '0'
	if c == '0' {
		out[i] = '1'
	}
	return out
}

// negLastDigit returns the offset of the last digit of the number at i.
func negLastDigit(raw []byte, i int) int {
	for i+1 < len(raw) && raw[i+1] >= '0' && raw[i+1] <= '9' {
		i++
	}
	return i
}

// crls returns the indexes of the set's Root CA CRL and PCK CA CRL (by
// issuer).
func (ns *negSet) crls(t *testing.T) (root, pck int) {
	t.Helper()
	root, pck = -1, -1
	for i, c := range ns.col.CRLs {
		switch {
		case bytes.Equal(c.List.RawIssuer, dcap.IntelSGXRootCA().RawSubject):
			root = i
		case bytes.Equal(c.List.RawIssuer, ns.base.PCKLeaf.RawIssuer):
			pck = i
		}
	}
	if root < 0 || pck < 0 {
		t.Fatalf("Root CA CRL (%d) or PCK CRL (%d) not found among %d CRLs", root, pck, len(ns.col.CRLs))
	}
	return root, pck
}

// TestNegativeQuoteTamper flips one byte in each signed region of the
// quote.
func TestNegativeQuoteTamper(t *testing.T) {
	for _, ns := range negSets(t) {
		t.Run(ns.ID, func(t *testing.T) {
			l := ns.lay
			flips := []struct {
				name string
				off  int
				want dcap.Code
			}{
				// The vendor ID is checked before any signature.
				{"header/qe-vendor-id", 12, dcap.CodeUnsupportedQuoteVersion},
				// QESVN/PCESVN (v3) or reserved (v4/v5): signed, not checked.
				{"header/qesvn", 8, dcap.CodeQuoteSignatureInvalid},
				{"header/user-data-first", 28, dcap.CodeQuoteSignatureInvalid},
				{"header/user-data-last", 47, dcap.CodeQuoteSignatureInvalid},
				{"body/first", l.body, dcap.CodeQuoteSignatureInvalid},
				{"body/report-data-first", l.reportData, dcap.CodeQuoteSignatureInvalid},
				{"body/report-data-last", l.reportData + 63, dcap.CodeQuoteSignatureInvalid},
				{"body/last", l.body + l.bodyLen - 1, dcap.CodeQuoteSignatureInvalid},
				{"signature/r", l.sig + 5, dcap.CodeQuoteSignatureInvalid},
				{"signature/s", l.sig + 63, dcap.CodeQuoteSignatureInvalid},
				// The QE report binding is checked before the quote
				// signature, so a changed attestation key is a QE report
				// failure.
				{"attestation-key/x", l.attKey, dcap.CodeQEReportInvalid},
				{"attestation-key/y", l.attKey + 63, dcap.CodeQEReportInvalid},
				{"qe-report/reserved", l.qeReport + 24, dcap.CodeQEReportInvalid},
				{"qe-report/isvsvn", l.qeReport + 258, dcap.CodeQEReportInvalid},
				{"qe-report/report-data-40", l.qeReport + 320 + 40, dcap.CodeQEReportInvalid},
				{"qe-report/report-data-0", l.qeReport + 320, dcap.CodeQEReportInvalid},
				{"qe-report-signature/r", l.qeReportSig, dcap.CodeQEReportInvalid},
				{"qe-report-signature/s", l.qeReportSig + 63, dcap.CodeQEReportInvalid},
				{"qe-auth-data/first", l.qeAuth, dcap.CodeQEReportInvalid},
				{"qe-auth-data/last", l.certType - 1, dcap.CodeQEReportInvalid},
			}
			for _, f := range flips {
				t.Run(f.name, func(t *testing.T) {
					res, err := ns.verify(negFlip(ns.raw, f.off), negClone(ns.col))
					negWant(t, res, err, f.want)
				})
			}

			pemText := ns.raw[l.pem : l.pem+len(ns.q.PCKChainPEM)]
			certs := []struct {
				name   string
				idx    int
				mutate func(*testing.T, *x509.Certificate, []byte)
			}{
				{"pck-leaf/signature", 0, negFlipCertSignature},
				{"pck-leaf/tbs-serial", 0, negFlipCertSerial},
				{"pck-ca/signature", 1, negFlipCertSignature},
				{"pck-ca/tbs-serial", 1, negFlipCertSerial},
				{"root/signature", 2, negFlipCertSignature},
			}
			for _, c := range certs {
				t.Run(c.name, func(t *testing.T) {
					mutated := negMutatePEMCert(t, pemText, c.idx, c.mutate)
					raw := bytes.Clone(ns.raw)
					copy(raw[l.pem:], mutated)
					q, err := dcap.ParseQuote(raw)
					if err != nil {
						t.Fatalf("quote with the mutated chain does not parse: %v", err)
					}
					if !bytes.Equal(q.PCKChainPEM, mutated) {
						t.Fatal("mutated chain was not spliced into the quote")
					}
					res, err := ns.verify(raw, negClone(ns.col))
					negWant(t, res, err, dcap.CodePCKChainInvalid)
				})
			}
		})
	}
}

// TestNegativeCollateralTamper changes one byte of each signed collateral
// item (and of the TCB Signing certificate).
func TestNegativeCollateralTamper(t *testing.T) {
	for _, ns := range negSets(t) {
		t.Run(ns.ID, func(t *testing.T) {
			rootIdx, pckIdx := ns.crls(t)
			ti, qi := ns.col.TCBInfo, ns.col.QEIdentity
			tcbInfo := func(raw, sig []byte) func(*dcap.Collateral) {
				return func(c *dcap.Collateral) {
					nt, err := dcap.ParseTCBInfo(raw, sig)
					if err != nil {
						t.Fatalf("mutated TCB Info does not parse: %v", err)
					}
					c.TCBInfo = nt
				}
			}
			qeID := func(raw, sig []byte) func(*dcap.Collateral) {
				return func(c *dcap.Collateral) {
					nq, err := dcap.ParseQEIdentity(raw, sig)
					if err != nil {
						t.Fatalf("mutated QE Identity does not parse: %v", err)
					}
					c.QEIdentity = nq
				}
			}
			qeChain := ns.col.QEIdentityIssuerChain
			if qeChain == nil {
				qeChain = ns.col.TCBInfoIssuerChain
			}
			cases := []struct {
				name   string
				mutate func(*dcap.Collateral)
				check  func(*dcap.Collateral) bool // the mutation took
			}{
				{"tcbinfo/raw-tcbEvaluationDataNumber",
					tcbInfo(negSwapChar(t, ti.Raw, negLastDigit(ti.Raw, negJSONValue(t, ti.Raw, "tcbEvaluationDataNumber"))), ti.Signature),
					func(c *dcap.Collateral) bool {
						return c.TCBInfo.TCBEvaluationDataNumber != ti.TCBEvaluationDataNumber
					}},
				{"tcbinfo/raw-fmspc",
					tcbInfo(negSwapChar(t, ti.Raw, negJSONValue(t, ti.Raw, "fmspc")+11), ti.Signature),
					func(c *dcap.Collateral) bool { return c.TCBInfo.FMSPC != ti.FMSPC }},
				{"tcbinfo/signature-r", tcbInfo(ti.Raw, negFlip(ti.Signature, 0)), nil},
				{"tcbinfo/signature-s", tcbInfo(ti.Raw, negFlip(ti.Signature, 63)), nil},
				{"qeidentity/raw-tcbEvaluationDataNumber",
					qeID(negSwapChar(t, qi.Raw, negLastDigit(qi.Raw, negJSONValue(t, qi.Raw, "tcbEvaluationDataNumber"))), qi.Signature),
					func(c *dcap.Collateral) bool {
						return c.QEIdentity.TCBEvaluationDataNumber != qi.TCBEvaluationDataNumber
					}},
				{"qeidentity/raw-mrsigner",
					qeID(negSwapChar(t, qi.Raw, negJSONValue(t, qi.Raw, "mrsigner")+30), qi.Signature),
					func(c *dcap.Collateral) bool { return c.QEIdentity.MRSIGNER != qi.MRSIGNER }},
				{"qeidentity/signature-r", qeID(qi.Raw, negFlip(qi.Signature, 0)), nil},
				{"qeidentity/signature-s", qeID(qi.Raw, negFlip(qi.Signature, 63)), nil},
				{"tcbinfo-issuer-chain/signing-cert-signature", func(c *dcap.Collateral) {
					c.TCBInfoIssuerChain = negMutateChain(t, ns.col.TCBInfoIssuerChain, 0, negFlipCertSignature)
				}, nil},
				{"tcbinfo-issuer-chain/signing-cert-serial", func(c *dcap.Collateral) {
					c.TCBInfoIssuerChain = negMutateChain(t, ns.col.TCBInfoIssuerChain, 0, negFlipCertSerial)
				}, nil},
				{"qeidentity-issuer-chain/signing-cert-signature", func(c *dcap.Collateral) {
					c.QEIdentityIssuerChain = negMutateChain(t, qeChain, 0, negFlipCertSignature)
				}, nil},
				{"root-ca-crl/signature", func(c *dcap.Collateral) {
					c.CRLs[rootIdx] = negFlipCRLSignature(t, c.CRLs[rootIdx])
				}, nil},
				{"pck-crl/signature", func(c *dcap.Collateral) {
					c.CRLs[pckIdx] = negFlipCRLSignature(t, c.CRLs[pckIdx])
				}, nil},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					col := negClone(ns.col)
					tc.mutate(col)
					if tc.check != nil && !tc.check(col) {
						t.Fatal("mutation did not change the parsed document")
					}
					res, err := ns.verify(ns.raw, col)
					negWant(t, res, err, dcap.CodeCollateralSignatureInvalid)
				})
			}
		})
	}
}

// TestNegativeValidityWindow checks that the set's window bounds, and
// only they, flip the verdict: the bounds are inclusive.
func TestNegativeValidityWindow(t *testing.T) {
	for _, ns := range negSets(t) {
		t.Run(ns.ID, func(t *testing.T) {
			nb, na := atTime(t, ns.Window.NotBefore), atTime(t, ns.Window.NotAfter)
			if !nb.Before(na) || ns.at.Before(nb) || ns.at.After(na) {
				t.Fatalf("window %s..%s does not hold the verification time %s", nb, na, ns.at)
			}
			expired := func(t *testing.T, res *dcap.Result, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("verified (status %s); want collateral_expired or certificate_expired", res.TCBStatus)
				}
				if c := dcap.CodeOf(err); c != dcap.CodeCollateralExpired && c != dcap.CodeCertificateExpired {
					t.Fatalf("code %q (%v); want collateral_expired or certificate_expired", c, err)
				}
				t.Log(err)
			}
			for _, tc := range []struct {
				name string
				at   time.Time
				ok   bool
			}{
				{"notBefore-1s", nb.Add(-time.Second), false},
				{"notBefore", nb, true},
				{"notAfter", na, true},
				{"notAfter+1s", na.Add(time.Second), false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					res, err := negVerifier(tc.at).VerifyQuote(context.Background(), ns.raw, negClone(ns.col))
					if tc.ok {
						ns.wantSame(t, res, err)
						return
					}
					expired(t, res, err)
				})
			}

			// One verifier whose clock moves: its caches (collateral, PCK
			// chain, QE report) must not carry a verdict outside the
			// window.
			t.Run("cached", func(t *testing.T) {
				now := ns.at
				v := dcap.NewVerifier(dcap.WithClock(func() time.Time { return now }))
				col := negClone(ns.col)
				verify := func() (*dcap.Result, error) {
					return v.VerifyQuote(context.Background(), ns.raw, col)
				}
				res, err := verify()
				ns.wantSame(t, res, err)
				now = na.Add(time.Second)
				res, err = verify()
				expired(t, res, err)
				now = na
				res, err = verify()
				ns.wantSame(t, res, err)
				now = nb.Add(-time.Second)
				res, err = verify()
				expired(t, res, err)
				now = nb
				res, err = verify()
				ns.wantSame(t, res, err)
			})
		})
	}
}

// TestNegativeMissingCollateral leaves out each collateral item.
func TestNegativeMissingCollateral(t *testing.T) {
	for _, ns := range negSets(t) {
		t.Run(ns.ID, func(t *testing.T) {
			rootIdx, pckIdx := ns.crls(t)
			without := func(i int) func(*dcap.Collateral) {
				return func(c *dcap.Collateral) {
					c.CRLs = slices.DeleteFunc(c.CRLs, func(crl *dcap.CRL) bool { return crl == ns.col.CRLs[i] })
				}
			}
			for _, tc := range []struct {
				name   string
				mutate func(*dcap.Collateral)
				ok     bool
			}{
				{"no-tcbinfo", func(c *dcap.Collateral) { c.TCBInfo = nil }, false},
				{"no-qeidentity", func(c *dcap.Collateral) { c.QEIdentity = nil }, false},
				{"no-tcbinfo-issuer-chain", func(c *dcap.Collateral) { c.TCBInfoIssuerChain = nil }, false},
				{"no-issuer-chains", func(c *dcap.Collateral) { c.TCBInfoIssuerChain, c.QEIdentityIssuerChain = nil, nil }, false},
				{"no-crls", func(c *dcap.Collateral) { c.CRLs = nil }, false},
				{"no-root-ca-crl", without(rootIdx), false},
				{"no-pck-crl", without(pckIdx), false},
				// The QE Identity falls back to the TCB Info issuer chain;
				// the PCK CRL issuer chain is informational.
				{"no-qeidentity-issuer-chain", func(c *dcap.Collateral) { c.QEIdentityIssuerChain = nil }, true},
				{"no-pck-crl-issuer-chain", func(c *dcap.Collateral) { c.PCKCRLIssuerChain = nil }, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					col := negClone(ns.col)
					tc.mutate(col)
					res, err := ns.verify(ns.raw, col)
					if tc.ok {
						ns.wantSame(t, res, err)
						return
					}
					negWant(t, res, err, dcap.CodeCollateralMissing)
				})
			}
			t.Run("nil", func(t *testing.T) {
				res, err := ns.verify(ns.raw, nil)
				negWant(t, res, err, dcap.CodeCollateralMissing)
			})
			t.Run("empty", func(t *testing.T) {
				res, err := ns.verify(ns.raw, &dcap.Collateral{})
				negWant(t, res, err, dcap.CodeCollateralMissing)
			})
		})
	}
}

// TestNegativeCollateralMismatch gives a quote another platform's TCB Info
// or QE Identity. The vectors hold no two TCB Infos of the same TEE but
// different FMSPCs that are valid at one time, so the mismatches are
// across TEEs: SGX collateral for a TDX quote and the reverse (the TCB Info
// id check runs before the FMSPC check).
func TestNegativeCollateralMismatch(t *testing.T) {
	sets := negSets(t)
	valid := func(issue, next, at time.Time) bool { return !at.Before(issue) && !at.After(next) }
	n := map[string]int{}
	for _, ns := range sets {
		for _, other := range sets {
			if other.Kind == ns.Kind {
				continue
			}
			if ti := other.col.TCBInfo; valid(ti.IssueDate, ti.NextUpdate, ns.at) {
				n["tcbinfo"]++
				t.Run(ns.ID+"/tcbinfo-of-"+other.ID, func(t *testing.T) {
					col := negClone(ns.col)
					col.TCBInfo = ti
					res, err := ns.verify(ns.raw, col)
					negWant(t, res, err, dcap.CodeCollateralMismatch)
				})
			}
			if qi := other.col.QEIdentity; valid(qi.IssueDate, qi.NextUpdate, ns.at) {
				n["qeidentity"]++
				t.Run(ns.ID+"/qeidentity-of-"+other.ID, func(t *testing.T) {
					col := negClone(ns.col)
					col.QEIdentity = qi
					res, err := ns.verify(ns.raw, col)
					negWant(t, res, err, dcap.CodeCollateralMismatch)
				})
			}
		}
	}
	if n["tcbinfo"] == 0 || n["qeidentity"] == 0 {
		t.Fatalf("no cross-TEE collateral valid at a set's time: %v", n)
	}
}

// TestNegativeTruncation checks that truncated quotes are malformed (never
// a panic, never a verdict) and that trailing bytes are ignored.
func TestNegativeTruncation(t *testing.T) {
	for _, ns := range negSets(t) {
		t.Run(ns.ID, func(t *testing.T) {
			v := negVerifier(ns.at)
			col := negClone(ns.col)
			tried := 0
			for n := range len(ns.raw) {
				if n >= 64 && n < len(ns.raw)-64 && n%7 != 0 {
					continue
				}
				tried++
				res, err := v.VerifyQuote(context.Background(), ns.raw[:n:n], col)
				if err == nil {
					t.Fatalf("prefix of %d bytes verified (status %s)", n, res.TCBStatus)
				}
				if c := dcap.CodeOf(err); c != dcap.CodeMalformedQuote {
					t.Fatalf("prefix of %d bytes: code %q (%v); want malformed_quote", n, c, err)
				}
			}
			if tried < 128 {
				t.Fatalf("only %d prefixes tried", tried)
			}
			// A plain prefix always fails the outermost length check. Cut
			// inside the signature data with the enclosing length fields
			// (signature data length; v4/v5 outer certification data size)
			// shrunk to match, so that the inner structures run short.
			l := ns.lay
			for n := l.sig; n < len(ns.raw); n++ {
				if n >= l.sig+64 && n < len(ns.raw)-64 && (n-l.sig)%7 != 0 {
					continue
				}
				raw := bytes.Clone(ns.raw[:n])
				binary.LittleEndian.PutUint32(raw[l.sig-4:], uint32(n-l.sig))
				if l.outerType >= 0 && n >= l.outerType+6 {
					binary.LittleEndian.PutUint32(raw[l.outerType+2:], uint32(n-l.outerType-6))
				}
				res, err := v.VerifyQuote(context.Background(), raw, col)
				if err == nil {
					t.Fatalf("signature data cut to %d bytes verified (status %s)", n-l.sig, res.TCBStatus)
				}
				if c := dcap.CodeOf(err); c != dcap.CodeMalformedQuote {
					t.Fatalf("signature data cut to %d bytes: code %q (%v); want malformed_quote", n-l.sig, c, err)
				}
			}
			for _, tail := range [][]byte{{0}, bytes.Repeat([]byte{0xff}, 100), ns.raw} {
				raw := append(bytes.Clone(ns.raw), tail...)
				res, err := negVerifier(ns.at).VerifyQuote(context.Background(), raw, negClone(ns.col))
				ns.wantSame(t, res, err)
				if !bytes.Equal(res.Quote.Raw, ns.raw) {
					t.Fatalf("with %d trailing bytes the quote is %d bytes; want %d", len(tail), len(res.Quote.Raw), len(ns.raw))
				}
			}
		})
	}
}

// TestNegativeHeaderPatch patches the header's version and key type and
// the certification data types.
func TestNegativeHeaderPatch(t *testing.T) {
	for _, ns := range negSets(t) {
		t.Run(ns.ID, func(t *testing.T) {
			patch16 := func(off int, v uint16) []byte {
				raw := bytes.Clone(ns.raw)
				binary.LittleEndian.PutUint16(raw[off:], v)
				return raw
			}
			type patch struct {
				name string
				raw  []byte
				want dcap.Code
			}
			cases := []patch{
				{"version-0", patch16(0, 0), dcap.CodeUnsupportedQuoteVersion},
				{"version-2", patch16(0, 2), dcap.CodeUnsupportedQuoteVersion},
				{"version-6", patch16(0, 6), dcap.CodeUnsupportedQuoteVersion},
				{"version-ffff", patch16(0, 0xffff), dcap.CodeUnsupportedQuoteVersion},
				{"attestation-key-type-3", patch16(2, 3), dcap.CodeUnsupportedQuoteVersion},
				{"attestation-key-type-0", patch16(2, 0), dcap.CodeUnsupportedQuoteVersion},
				{"tee-type-0x82", patch16(4, 0x82), dcap.CodeUnsupportedQuoteVersion},
			}
			for _, typ := range []uint16{0, 1, 2, 3, 4, 6, 7, 0xffff} {
				cases = append(cases, patch{fmt.Sprintf("cert-data-type-%d", typ), patch16(ns.lay.certType, typ), dcap.CodeUnsupportedCertificationData})
			}
			if ns.lay.outerType >= 0 {
				for _, typ := range []uint16{3, 5} {
					cases = append(cases, patch{fmt.Sprintf("outer-cert-data-type-%d", typ), patch16(ns.lay.outerType, typ), dcap.CodeUnsupportedCertificationData})
				}
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					if _, err := dcap.ParseQuote(tc.raw); dcap.CodeOf(err) != tc.want {
						t.Fatalf("ParseQuote: %v; want code %s", err, tc.want)
					}
					res, err := ns.verify(tc.raw, negClone(ns.col))
					negWant(t, res, err, tc.want)
				})
			}
		})
	}
}
