package service

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
)

// Claim names attestd adds to MAA's. They carry what Intel's verification
// concluded, which MAA tokens leave out, and mark simulated evidence.
const (
	ClaimTCBStatus               = "x-attestd-tcb-status"
	ClaimAdvisoryIDs             = "x-attestd-advisory-ids"
	ClaimTCBDate                 = "x-attestd-tcb-date"
	ClaimTCBEvaluationDataNumber = "x-attestd-tcb-evaluation-data-number"
	ClaimFMSPC                   = "x-attestd-fmspc"
	ClaimCollateralExpiry        = "x-attestd-collateral-expiry"
	ClaimTDRelaunchAdvised       = "x-attestd-td-relaunch-advised"
	ClaimRuntimeData             = "x-attestd-runtime-data"
	ClaimCollateral              = "x-attestd-collateral"
	// ClaimSimulated is true in every token minted from simulator evidence
	// (dev mode). verify.Verifier rejects such tokens unless told otherwise.
	ClaimSimulated = "x-attestd-simulated"
	// ClaimDraftPolicy marks a token shaped by draftPolicyForAttestation.
	ClaimDraftPolicy = "x-attestd-draft-policy"
)

// TDXEATProfile is MAA's EAT profile for TDX tokens.
const TDXEATProfile = "https://aka.ms/maa-eat-profile-tdxvm"

// ClaimsSupported lists the claims announced in the OpenID metadata: MAA's
// list, then TDX's and attestd's.
func ClaimsSupported() []string {
	return []string{
		"cnf", "nonce", "x-ms-ver", "x-ms-attestation-type", "x-ms-policy-hash", "x-ms-policy-signer",
		"x-ms-sgx-is-debuggable", "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-sgx-svn", "x-ms-sgx-ehd",
		"x-ms-sgx-collateral", "is-debuggable", "sgx-mrsigner", "sgx-mrenclave", "product-id", "svn", "tee",
		"x-ms-sgx-product-id", "x-ms-sgx-report-data", "x-ms-runtime", "x-ms-inittime", "x-ms-policy",
		"eat_profile", "attester_tcb_status", "tdx_mrtd", "tdx_rtmr0", "tdx_rtmr1", "tdx_rtmr2", "tdx_rtmr3",
		"tdx_report_data",
		ClaimTCBStatus, ClaimAdvisoryIDs, ClaimTCBDate, ClaimTCBEvaluationDataNumber, ClaimSimulated,
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// evidenceClaims are the claims derived from verified evidence, under MAA's
// names, in the order a policy sees them.
// sentEvidence is the evidence as the client sent it: MAA's quotehash is
// its SHA-256 (for OpenEnclave, the whole report, not the quote inside).
func evidenceClaims(ev *Evidence, sentEvidence []byte) []Claim {
	r := ev.Result
	q := r.Quote
	collateral := r.Collateral
	sum := sha256.Sum256(sentEvidence)
	collateral.QuoteHash = hex.EncodeToString(sum[:])
	var out []Claim
	add := func(t string, v any) { out = append(out, Claim{t, v}) }
	add("x-ms-ver", "1.0")
	if q.Enclave != nil {
		e := q.Enclave
		add("x-ms-attestation-type", "sgx")
		add("x-ms-sgx-is-debuggable", e.Debug())
		add("x-ms-sgx-mrenclave", hexOf(e.MRENCLAVE[:]))
		add("x-ms-sgx-mrsigner", hexOf(e.MRSIGNER[:]))
		add("x-ms-sgx-product-id", int(e.ISVProdID))
		add("x-ms-sgx-svn", int(e.ISVSVN))
		add("x-ms-sgx-report-data", hexOf(e.ReportData[:]))
		add("x-ms-sgx-collateral", collateral)
		// KSS fields appear only when the enclave uses them, as in MAA.
		if !isZero(e.ConfigID[:]) {
			add("x-ms-sgx-config-id", hexOf(e.ConfigID[:]))
		}
		if e.ConfigSVN != 0 {
			add("x-ms-sgx-config-svn", int(e.ConfigSVN))
		}
		if !isZero(e.ISVExtProdID[:]) {
			add("x-ms-sgx-isv-extended-product-id", hexOf(e.ISVExtProdID[:]))
		}
		if !isZero(e.ISVFamilyID[:]) {
			add("x-ms-sgx-isv-family-id", hexOf(e.ISVFamilyID[:]))
		}
	} else {
		td := q.TD
		tc := dcap.TDClaims(td, q.BodyType)
		add("x-ms-attestation-type", "tdxvm")
		add("eat_profile", TDXEATProfile)
		dbg := "disabled"
		if td.Debug() {
			dbg = "enabled"
		}
		add("dbgstat", dbg)
		add("intuse", "generic")
		add("attester_tcb_status", string(r.TCBStatus))
		add("tdx_mrsignerseam", hexOf(td.MRSIGNERSEAM[:]))
		add("tdx_mrseam", hexOf(td.MRSEAM[:]))
		add("tdx_mrtd", hexOf(td.MRTD[:]))
		for i := range td.RTMR {
			add("tdx_rtmr"+string(rune('0'+i)), hexOf(td.RTMR[i][:]))
		}
		add("tdx_mrconfigid", hexOf(td.MRCONFIGID[:]))
		add("tdx_mrowner", hexOf(td.MROWNER[:]))
		add("tdx_mrownerconfig", hexOf(td.MROWNERCONFIG[:]))
		add("tdx_report_data", hexOf(td.ReportData[:]))
		add("tdx_seam_attributes", hexOf(td.SEAMAttributes[:]))
		add("tdx_tee_tcb_svn", hexOf(td.TEETCBSVN[:]))
		// The module's SVN: TEE_TCB_SVN bytes 0 (minor) and 1 (major).
		add("tdx_seamsvn", int(binary.LittleEndian.Uint16(td.TEETCBSVN[0:2])))
		add("tdx_xfam", hexOf(td.XFAM[:]))
		add("tdx_td_attributes", hexOf(td.TDAttributes[:]))
		add("tdx_td_attributes_debug", tc.TDAttributeFlags.Debug)
		add("tdx_td_attributes_key_locker", tc.TDAttributeFlags.KL)
		add("tdx_td_attributes_perfmon", tc.TDAttributeFlags.Perfmon)
		add("tdx_td_attributes_protection_keys", tc.TDAttributeFlags.PKS)
		add("tdx_td_attributes_septve_disable", tc.TDAttributeFlags.SEPTVEDisable)
		if q.BodyType == dcap.BodyTD15 {
			add("tdx_tee_tcb_svn2", hexOf(td.TEETCBSVN2[:]))
			add("tdx_mrservicetd", hexOf(td.MRSERVICETD[:]))
		}
		add(ClaimCollateral, collateral)
	}
	add(ClaimTCBStatus, string(r.TCBStatus))
	add(ClaimAdvisoryIDs, r.AdvisoryIDs)
	add(ClaimTCBDate, r.TCBDate.UTC().Format(time.RFC3339))
	add(ClaimTCBEvaluationDataNumber, r.TCBEvaluationDataNumber)
	add(ClaimFMSPC, hexOf(r.PCK.FMSPC[:]))
	add(ClaimCollateralExpiry, r.CollateralExpiry.UTC().Format(time.RFC3339))
	if r.TDRelaunchAdvised {
		add(ClaimTDRelaunchAdvised, true)
	}
	return out
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// legacyPolicyClaims maps the claims MAA's first default SGX policy read,
// under their old "$" names, to today's names (maa-compat.md §3.5).
func legacyPolicyClaims() [6][2]string {
	return [6][2]string{
		{"x-ms-sgx-is-debuggable", "$is-debuggable"},
		{"x-ms-sgx-mrsigner", "$sgx-mrsigner"},
		{"x-ms-sgx-mrenclave", "$sgx-mrenclave"},
		{"x-ms-sgx-product-id", "$product-id"},
		{"x-ms-sgx-svn", "$svn"},
		{"x-ms-attestation-type", "$tee"},
	}
}

// withLegacyClaims is the policy's incoming claim set: the token's claims
// plus, for SGX evidence, their legacy "$" copies, so that policies written
// for MAA's first default policy still evaluate. The copies never reach the
// token.
func withLegacyClaims(claims []Claim) []Claim {
	sgx := false
	for _, c := range claims {
		if c.Type == "x-ms-attestation-type" && c.Value == "sgx" {
			sgx = true
			break
		}
	}
	if !sgx {
		return claims
	}
	legacy := legacyPolicyClaims()
	out := make([]Claim, len(claims), len(claims)+len(legacy))
	copy(out, claims)
	for _, l := range legacy {
		for _, c := range claims {
			if c.Type == l[0] {
				out = append(out, Claim{Type: l[1], Value: c.Value})
				break
			}
		}
	}
	return out
}
