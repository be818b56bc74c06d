package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/simulator"
)

// attestPath is MAA's SGX attestation route with the api-version the
// current SDKs send.
const attestPath = "/attest/SgxEnclave?api-version=2022-08-01"

// runtimeDataSize is the size of the runtime data bound into each quote:
// the size of an uncompressed P-256 key, a typical enclave-held key.
const runtimeDataSize = 65

// attestRequest is MAA's attestation request body.
type attestRequest struct {
	Quote       string      `json:"quote"`
	RuntimeData runtimeData `json:"runtimeData"`
}

type runtimeData struct {
	Data     string `json:"data"`
	DataType string `json:"dataType"`
}

// evidenceSet is the pre-built request bodies.
type evidenceSet struct {
	Bodies [][]byte `json:"-"`
	// Sample is one raw quote, used by the floor measurement.
	Sample []byte `json:"-"`

	Quotes         int `json:"quotes"`
	DistinctQuotes int `json:"distinct_quotes"`
	QuoteBytes     int `json:"quote_bytes"`
	BodyBytes      int `json:"body_bytes"`
	QuoteVersion   int `json:"quote_version"`
	// DistinctQEReports counts distinct (QE report, signature, PCK chain)
	// triples: 1 means the verifier's QE report and PCK chain caches hit
	// after the first request, so a warm attestation verifies exactly one
	// ECDSA signature (the quote's).
	DistinctQEReports int `json:"distinct_qe_reports"`
}

// makeEvidence mints n simulated SGX quotes, each binding distinct random
// runtime data, and encodes them as MAA request bodies (base64url without
// padding, as the MAA SDKs send them).
func makeEvidence(n int, seed string) (*evidenceSet, error) {
	if n < 1 {
		return nil, fmt.Errorf("need at least one quote, not %d", n)
	}
	sim, err := simulator.New(simulator.Options{Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	enc := base64.RawURLEncoding
	ev := &evidenceSet{Quotes: n}
	quotes := map[[32]byte]bool{}
	qeReports := map[[32]byte]bool{}
	for i := range n {
		rt := make([]byte, runtimeDataSize)
		rt[0] = 4
		binary.BigEndian.PutUint32(rt[1:], uint32(i))
		if _, err := rand.Read(rt[5:]); err != nil {
			return nil, err
		}
		raw, err := sim.Quote(simulator.QuoteOptions{TEE: dcap.TEESGX, RuntimeData: rt})
		if err != nil {
			return nil, fmt.Errorf("simulator quote: %w", err)
		}
		q, err := dcap.ParseQuote(raw)
		if err != nil {
			return nil, fmt.Errorf("simulator quote does not parse: %w", err)
		}
		if want := simulator.BindRuntimeData(rt); q.ReportData() != want {
			return nil, fmt.Errorf("simulator quote %d does not bind its runtime data", i)
		}
		quotes[sha256.Sum256(raw)] = true
		h := sha256.New()
		h.Write(q.QEReport.Raw())
		h.Write(q.QEReportSignature[:])
		h.Write(q.PCKChainPEM)
		qeReports[[32]byte(h.Sum(nil))] = true

		body, err := json.Marshal(attestRequest{
			Quote:       enc.EncodeToString(raw),
			RuntimeData: runtimeData{Data: enc.EncodeToString(rt), DataType: "Binary"},
		})
		if err != nil {
			return nil, err
		}
		ev.Bodies = append(ev.Bodies, body)
		if i == 0 {
			ev.Sample = bytes.Clone(raw)
			ev.QuoteBytes = len(raw)
			ev.BodyBytes = len(body)
			ev.QuoteVersion = int(q.Header.Version)
		}
	}
	ev.DistinctQuotes = len(quotes)
	ev.DistinctQEReports = len(qeReports)
	if ev.DistinctQuotes != n {
		return nil, fmt.Errorf("only %d of %d quotes are distinct", ev.DistinctQuotes, n)
	}
	return ev, nil
}
