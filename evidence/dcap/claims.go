package dcap

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"
)

// Hex is a byte string that marshals to JSON as lowercase hex.
type Hex []byte

// MarshalText implements encoding.TextMarshaler.
func (h Hex) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h)
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hex) UnmarshalText(b []byte) error {
	out := make([]byte, hex.DecodedLen(len(b)))
	if _, err := hex.Decode(out, b); err != nil {
		return err
	}
	*h = out
	return nil
}

// SGXClaims are the claims of a verified SGX enclave quote.
type SGXClaims struct {
	MRENCLAVE    Hex    `json:"mrenclave"`
	MRSIGNER     Hex    `json:"mrsigner"`
	ISVProdID    uint16 `json:"isvprodid"`
	ISVSVN       uint16 `json:"isvsvn"`
	Attributes   Hex    `json:"attributes"`
	Debug        bool   `json:"debug"`
	MiscSelect   uint32 `json:"miscselect"`
	ConfigID     Hex    `json:"configid"`
	ConfigSVN    uint16 `json:"configsvn"`
	ISVFamilyID  Hex    `json:"isvfamilyid"`
	ISVExtProdID Hex    `json:"isvextprodid"`
	ReportData   Hex    `json:"reportdata"`
	CPUSVN       Hex    `json:"cpusvn"`
}

// TDXClaims are the claims of a verified TD quote.
type TDXClaims struct {
	MRTD             Hex              `json:"mrtd"`
	RTMR0            Hex              `json:"rtmr0"`
	RTMR1            Hex              `json:"rtmr1"`
	RTMR2            Hex              `json:"rtmr2"`
	RTMR3            Hex              `json:"rtmr3"`
	MRSEAM           Hex              `json:"mrseam"`
	MRSIGNERSEAM     Hex              `json:"mrsignerseam"`
	SEAMAttributes   Hex              `json:"seamattributes"`
	TDAttributes     Hex              `json:"tdattributes"`
	TDAttributeFlags TDAttributeFlags `json:"tdattributesflags"`
	XFAM             Hex              `json:"xfam"`
	MRCONFIGID       Hex              `json:"mrconfigid"`
	MROWNER          Hex              `json:"mrowner"`
	MROWNERCONFIG    Hex              `json:"mrownerconfig"`
	TEETCBSVN        Hex              `json:"teetcbsvn"`
	TEETCBSVN2       Hex              `json:"teetcbsvn2,omitempty"`
	MRSERVICETD      Hex              `json:"mrservicetd,omitempty"`
	ReportData       Hex              `json:"reportdata"`
}

// TDAttributeFlags decodes the TD attribute bits users write policy on.
type TDAttributeFlags struct {
	Debug         bool `json:"debug"`
	SEPTVEDisable bool `json:"septvedisable"`
	PKS           bool `json:"pks"`
	KL            bool `json:"kl"`
	Perfmon       bool `json:"perfmon"`
}

// PlatformClaims are claims about the platform common to SGX and TDX.
type PlatformClaims struct {
	FMSPC   Hex    `json:"fmspc"`
	PCEID   Hex    `json:"pceid"`
	SGXType string `json:"sgxtype"`
	PCESVN  uint16 `json:"pcesvn"`
	// TCBComponents are the PCK certificate's 16 CPUSVN components.
	TCBComponents []uint8 `json:"tcbcomponents"`
}

// Claims is the JSON view of a verified quote.
type Claims struct {
	TEEType                 string           `json:"teeType"`
	QuoteVersion            int              `json:"quoteVersion"`
	TCBStatus               TCBStatus        `json:"tcbStatus"`
	AdvisoryIDs             []string         `json:"advisoryIDs"`
	TCBDate                 time.Time        `json:"tcbDate"`
	TCBEvaluationDataNumber int              `json:"tcbEvaluationDataNumber"`
	PlatformTCBStatus       TCBStatus        `json:"platformTcbStatus"`
	QETCBStatus             TCBStatus        `json:"qeTcbStatus"`
	TDXModule               *TDXModuleResult `json:"tdxModule,omitempty"`
	TDRelaunchAdvised       bool             `json:"tdRelaunchAdvised,omitempty"`
	FMSPC                   Hex              `json:"fmspc"`
	Platform                PlatformClaims   `json:"platform"`
	Collateral              CollateralHashes `json:"collateral"`
	CollateralExpiry        time.Time        `json:"collateralExpiry"`
	VerifiedAt              time.Time        `json:"verifiedAt"`
	SGX                     *SGXClaims       `json:"sgx,omitempty"`
	TDX                     *TDXClaims       `json:"tdx,omitempty"`
	// Claims is the body's claims again (SGX or TDX), so a consumer can
	// read them without switching on the TEE.
	Claims any `json:"claims"`
}

// Claims returns the typed claims of the verified quote.
func (r *Result) Claims() *Claims {
	c := &Claims{
		TEEType:                 r.TEE.String(),
		QuoteVersion:            r.QuoteVersion,
		TCBStatus:               r.TCBStatus,
		AdvisoryIDs:             r.AdvisoryIDs,
		TCBDate:                 r.TCBDate,
		TCBEvaluationDataNumber: r.TCBEvaluationDataNumber,
		PlatformTCBStatus:       r.PlatformTCBStatus,
		QETCBStatus:             r.QETCBStatus,
		TDXModule:               r.TDXModule,
		TDRelaunchAdvised:       r.TDRelaunchAdvised,
		FMSPC:                   Hex(r.PCK.FMSPC[:]),
		Platform: PlatformClaims{
			FMSPC: Hex(r.PCK.FMSPC[:]), PCEID: Hex(r.PCK.PCEID[:]), SGXType: r.PCK.SGXType.String(),
			PCESVN: r.PCK.PCESVN, TCBComponents: append([]uint8(nil), r.PCK.TCBComponents[:]...),
		},
		Collateral:       r.Collateral,
		CollateralExpiry: r.CollateralExpiry,
		VerifiedAt:       r.VerifiedAt,
	}
	if e := r.Quote.Enclave; e != nil {
		c.SGX = EnclaveClaims(e)
		c.Claims = c.SGX
	}
	if td := r.Quote.TD; td != nil {
		c.TDX = TDClaims(td, r.Quote.BodyType)
		c.Claims = c.TDX
	}
	return c
}

// EnclaveClaims returns the claims of an SGX enclave report.
func EnclaveClaims(e *EnclaveReport) *SGXClaims {
	return &SGXClaims{
		MRENCLAVE: clone(e.MRENCLAVE[:]), MRSIGNER: clone(e.MRSIGNER[:]),
		ISVProdID: e.ISVProdID, ISVSVN: e.ISVSVN,
		Attributes: clone(e.Attributes[:]), Debug: e.Debug(), MiscSelect: e.MiscSelect,
		ConfigID: clone(e.ConfigID[:]), ConfigSVN: e.ConfigSVN,
		ISVFamilyID: clone(e.ISVFamilyID[:]), ISVExtProdID: clone(e.ISVExtProdID[:]),
		ReportData: clone(e.ReportData[:]), CPUSVN: clone(e.CPUSVN[:]),
	}
}

// TDClaims returns the claims of a TD report.
func TDClaims(td *TDReport, body BodyType) *TDXClaims {
	bits := binary.LittleEndian.Uint64(td.TDAttributes[:])
	c := &TDXClaims{
		MRTD: clone(td.MRTD[:]), RTMR0: clone(td.RTMR[0][:]), RTMR1: clone(td.RTMR[1][:]),
		RTMR2: clone(td.RTMR[2][:]), RTMR3: clone(td.RTMR[3][:]),
		MRSEAM: clone(td.MRSEAM[:]), MRSIGNERSEAM: clone(td.MRSIGNERSEAM[:]),
		SEAMAttributes: clone(td.SEAMAttributes[:]), TDAttributes: clone(td.TDAttributes[:]),
		TDAttributeFlags: TDAttributeFlags{
			Debug: bits&TDAttrDebug != 0, SEPTVEDisable: bits&TDAttrSEPTVEDisable != 0,
			PKS: bits&TDAttrPKS != 0, KL: bits&TDAttrKL != 0, Perfmon: bits&TDAttrPerfmon != 0,
		},
		XFAM: clone(td.XFAM[:]), MRCONFIGID: clone(td.MRCONFIGID[:]), MROWNER: clone(td.MROWNER[:]),
		MROWNERCONFIG: clone(td.MROWNERCONFIG[:]), TEETCBSVN: clone(td.TEETCBSVN[:]),
		ReportData: clone(td.ReportData[:]),
	}
	if body == BodyTD15 {
		c.TEETCBSVN2 = clone(td.TEETCBSVN2[:])
		c.MRSERVICETD = clone(td.MRSERVICETD[:])
	}
	return c
}

func clone(b []byte) Hex { return Hex(strings.Clone(string(b))) }
