package dcap_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/internal/testvectors"
	"github.com/attestd/attestd/simulator"
)

// The fuzz targets cover every parser of untrusted bytes: quotes (and their
// text encodings), the PCK certificate extension, and each collateral
// format. Seeds come from the real vectors when they are present and from
// the simulator always, so the corpus holds every format and quote shape.
// Run one with, for example:
//
//	go test ./evidence/dcap -run '^$' -fuzz '^FuzzParseQuote$' -fuzztime 60s

var fuzzTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seedSim is the simulator the seeds and FuzzVerifyQuote use.
func seedSim(f *testing.F) *simulator.Simulator {
	f.Helper()
	s, err := simulator.New(simulator.Options{Now: fuzzTime})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// simQuotes mints a quote of every shape, clean and with the faults that
// change quote bytes.
func simQuotes(f *testing.F, s *simulator.Simulator) [][]byte {
	f.Helper()
	var out [][]byte
	for _, o := range []simulator.QuoteOptions{
		{TEE: dcap.TEESGX, Version: 3}, {TEE: dcap.TEESGX, Version: 4}, {TEE: dcap.TEESGX, Version: 5},
		{TEE: dcap.TEETDX, Version: 4}, {TEE: dcap.TEETDX, Version: 5, Body: dcap.BodyTD10}, {TEE: dcap.TEETDX, Version: 5, Body: dcap.BodyTD15},
		{TEE: dcap.TEESGX, Fault: simulator.FaultUnsupportedCertificationData},
		{TEE: dcap.TEETDX, Fault: simulator.FaultUnsupportedCertificationData},
		{TEE: dcap.TEESGX, Fault: simulator.FaultTruncatedQuote},
	} {
		q, err := s.Quote(o)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, q)
	}
	return out
}

// vectorFiles returns the evidence and collateral files of the vector
// sets, or nothing when the vectors are absent.
func vectorFiles(f *testing.F) (quotes, collateral [][]byte) {
	f.Helper()
	if _, ok := testvectors.Lookup(); !ok {
		return nil, nil
	}
	dir, sets := testvectors.Sets(f)
	for _, s := range sets {
		if s.Kind != "sgx" && s.Kind != "tdx" || !s.Complete() {
			continue
		}
		quotes = append(quotes, testvectors.Read(f, dir, s.Evidence.Path))
		for _, c := range s.Collateral {
			collateral = append(collateral, testvectors.Read(f, dir, c.Path))
		}
	}
	return quotes, collateral
}

func simCollateralFiles(f *testing.F, s *simulator.Simulator) [][]byte {
	f.Helper()
	var out [][]byte
	for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
		set, err := s.Collateral(tee, "")
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range set.FileNames() {
			out = append(out, set.Files[name])
		}
	}
	return out
}

// decodedQuotes returns the binary form of every seed quote.
func decodedQuotes(f *testing.F) [][]byte {
	f.Helper()
	vq, _ := vectorFiles(f)
	var out [][]byte
	for _, q := range append(vq, simQuotes(f, seedSim(f))...) {
		if raw, _, err := dcap.DecodeQuote(q); err == nil {
			out = append(out, raw)
		}
	}
	return out
}

func FuzzParseQuote(f *testing.F) {
	for _, q := range decodedQuotes(f) {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := dcap.ParseQuote(data)
		if err != nil {
			if code := dcap.CodeOf(err); !slices.Contains(dcap.Codes(), code) {
				t.Fatalf("error without a known code: %v", err)
			}
			return
		}
		// Lengths come from the quote's fields and stay inside the input.
		if len(q.Raw) > len(data) || !bytes.Equal(q.Raw, data[:len(q.Raw)]) {
			t.Fatal("Raw is not a prefix of the input")
		}
		if !bytes.HasPrefix(q.Raw, q.SignedData) {
			t.Fatal("SignedData is not a prefix of the quote")
		}
		if (q.Enclave == nil) == (q.TD == nil) {
			t.Fatal("exactly one of Enclave and TD must be set")
		}
	})
}

func FuzzDecodeQuote(f *testing.F) {
	vq, _ := vectorFiles(f)
	for _, q := range vq {
		f.Add(q)
	}
	f.Add([]byte("0x0300020000000000"))
	f.Add([]byte("AwACAAAAAAA="))
	f.Add([]byte("AwACAAAAAAA"))
	f.Add([]byte("030002000000000a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, enc, err := dcap.DecodeQuote(data)
		if err != nil {
			return
		}
		if enc == "" || len(raw) == 0 {
			t.Fatalf("decoded %d bytes with encoding %q", len(raw), enc)
		}
		_, _ = dcap.ParseQuote(raw)
	})
}

func FuzzParsePCKExtension(f *testing.F) {
	for _, raw := range decodedQuotes(f) {
		q, err := dcap.ParseQuote(raw)
		if err != nil {
			continue
		}
		blk, _ := pem.Decode(q.PCKChainPEM)
		if blk == nil {
			continue
		}
		chain, err := dcap.ParsePEMChain(q.PCKChainPEM)
		if err != nil {
			continue
		}
		for _, ext := range chain.Certs[0].Extensions {
			if ext.Id.String() == "1.2.840.113741.1.13.1" {
				f.Add(ext.Value)
			}
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		ext, err := dcap.ParsePCKExtensionValue(der)
		if err == nil && ext == nil {
			t.Fatal("nil extension without an error")
		}
	})
}

// FuzzLoadCollateral covers every collateral loader through format
// detection: PCS JSON bodies, the dcap-qvl and attestd bundles, Intel's
// QvE collateral dump, PEM, DER and hex.
func FuzzLoadCollateral(f *testing.F) {
	_, vc := vectorFiles(f)
	for _, c := range append(vc, simCollateralFiles(f, seedSim(f))...) {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		col, format, err := dcap.LoadCollateral(data)
		if err != nil {
			if code := dcap.CodeOf(err); !slices.Contains(dcap.Codes(), code) {
				t.Fatalf("error without a known code: %v", err)
			}
			return
		}
		if col == nil || format == "" {
			t.Fatal("no collateral or format without an error")
		}
		col.Fingerprint()
		_ = dcap.MergeCollateral(col, col)
	})
}

// tcbObjects returns the exact signed objects of the seed TCB Info and QE
// Identity documents.
func tcbObjects(f *testing.F) (tcbInfos, qeIdentities [][]byte) {
	_, vc := vectorFiles(f)
	for _, c := range append(vc, simCollateralFiles(f, seedSim(f))...) {
		col, _, err := dcap.LoadCollateral(c)
		if err != nil {
			continue
		}
		if col.TCBInfo != nil {
			tcbInfos = append(tcbInfos, col.TCBInfo.Raw)
		}
		if col.QEIdentity != nil {
			qeIdentities = append(qeIdentities, col.QEIdentity.Raw)
		}
	}
	return tcbInfos, qeIdentities
}

func FuzzParseTCBInfo(f *testing.F) {
	infos, _ := tcbObjects(f)
	for _, raw := range infos {
		f.Add(raw)
	}
	sig := make([]byte, 64)
	f.Fuzz(func(t *testing.T, raw []byte) {
		info, err := dcap.ParseTCBInfo(raw, sig)
		if err == nil && (info.ID != "SGX" && info.ID != "TDX") {
			t.Fatalf("accepted TCB Info with id %q", info.ID)
		}
	})
}

func FuzzParseQEIdentity(f *testing.F) {
	_, ids := tcbObjects(f)
	for _, raw := range ids {
		f.Add(raw)
	}
	sig := make([]byte, 64)
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = dcap.ParseQEIdentity(raw, sig)
	})
}

// FuzzLoadQVECollateral targets Intel's sgx_ql_qve_collateral_t layout
// directly, where length fields index into the buffer.
func FuzzLoadQVECollateral(f *testing.F) {
	_, vc := vectorFiles(f)
	for _, c := range vc {
		if _, format, err := dcap.LoadCollateral(c); err == nil && format == dcap.FormatQVECollateral {
			f.Add(c)
		}
	}
	// A minimal header: version 3.1, TEE type SGX, nine zero lengths.
	f.Add(append([]byte{3, 0, 1, 0, 0, 0, 0, 0}, make([]byte, 9*8)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = dcap.LoadQVECollateral(data)
	})
}

// FuzzVerifyQuote runs the whole verification on mutated simulator quotes
// with valid collateral: whatever the bytes, the verifier returns a result
// or an error with a known code, and never accepts a quote whose signed
// bytes differ from a genuine one's.
func FuzzVerifyQuote(f *testing.F) {
	s := seedSim(f)
	var genuine [][]byte // the signed bytes of every seed quote
	for _, q := range simQuotes(f, s) {
		f.Add(q)
		if p, err := dcap.ParseQuote(q); err == nil {
			genuine = append(genuine, bytes.Clone(p.SignedData))
		}
	}
	cols := map[dcap.TEEType]*dcap.Collateral{}
	for _, tee := range []dcap.TEEType{dcap.TEESGX, dcap.TEETDX} {
		set, err := s.Collateral(tee, "")
		if err != nil {
			f.Fatal(err)
		}
		if cols[tee], err = set.Collateral(); err != nil {
			f.Fatal(err)
		}
	}
	v := dcap.NewVerifier(dcap.WithTrustRoot(s.Root()), dcap.WithClock(func() time.Time { return fuzzTime }))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := dcap.ParseQuote(data)
		if err != nil {
			return
		}
		_, err = v.Verify(context.Background(), q, cols[q.TEE()])
		if err != nil {
			if !slices.Contains(dcap.Codes(), dcap.CodeOf(err)) {
				t.Fatalf("error without a known code: %v", err)
			}
			return
		}
		if !slices.ContainsFunc(genuine, func(g []byte) bool { return bytes.Equal(g, q.SignedData) }) {
			t.Fatal("verified a quote whose signed bytes no genuine quote has")
		}
	})
}
