package dcap

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
)

// OIDs of Intel's SGX PCK certificate extension (1.2.840.113741.1.13.1).
var (
	oidSGXExtension    = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oidPPID            = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 1}
	oidTCB             = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	oidPCEID           = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 3}
	oidFMSPC           = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 4}
	oidSGXType         = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
	oidPlatformInstID  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 6}
	oidConfiguration   = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7}
	oidConfDynamic     = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7, 1}
	oidConfCachedKeys  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7, 2}
	oidConfSMTEnabled  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7, 3}
	oidTCBPCESVN       = 17 // last arc of 1.2.840.113741.1.13.1.2.17
	oidTCBCPUSVN       = 18 // last arc of 1.2.840.113741.1.13.1.2.18
	maxSGXExtensionLen = 64 << 10
)

// SGXType is the SGX type of the platform in the PCK certificate.
type SGXType int

// SGX types (ENUMERATED in the extension).
const (
	SGXTypeStandard              SGXType = 0
	SGXTypeScalable              SGXType = 1
	SGXTypeScalableWithIntegrity SGXType = 2
)

func (t SGXType) String() string {
	switch t {
	case SGXTypeStandard:
		return "Standard"
	case SGXTypeScalable:
		return "Scalable"
	case SGXTypeScalableWithIntegrity:
		return "ScalableWithIntegrity"
	}
	return fmt.Sprintf("SGXType(%d)", int(t))
}

// PCKExtension is the content of the SGX extension of a PCK certificate.
type PCKExtension struct {
	PPID [16]byte
	// TCB is the platform TCB the certificate was issued for.
	TCBComponents [16]uint8
	PCESVN        uint16
	CPUSVN        [16]byte
	PCEID         [2]byte
	FMSPC         [6]byte
	SGXType       SGXType
	// Platform CA certificates only.
	PlatformInstanceID []byte
	// Configuration is present in Platform CA certificates only.
	Configuration *PlatformConfiguration
}

// PlatformConfiguration is the optional configuration sequence of the
// extension. A nil field was absent.
type PlatformConfiguration struct {
	DynamicPlatform *bool
	CachedKeys      *bool
	SMTEnabled      *bool
}

type asn1Entry struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// ParsePCKExtension extracts the SGX extension from a PCK certificate.
func ParsePCKExtension(cert *x509.Certificate) (*PCKExtension, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSGXExtension) {
			return ParsePCKExtensionValue(ext.Value)
		}
	}
	return nil, fmt.Errorf("certificate %q has no SGX extension (%s)", cert.Subject.CommonName, oidSGXExtension)
}

// ParsePCKExtensionValue parses the DER value of the SGX extension.
func ParsePCKExtensionValue(der []byte) (*PCKExtension, error) {
	if len(der) > maxSGXExtensionLen {
		return nil, fmt.Errorf("SGX extension is %d bytes, more than %d", len(der), maxSGXExtensionLen)
	}
	var entries []asn1Entry
	rest, err := asn1.Unmarshal(der, &entries)
	if err != nil {
		return nil, fmt.Errorf("SGX extension: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("SGX extension: %d trailing bytes", len(rest))
	}
	ext := &PCKExtension{}
	seen := map[string]bool{}
	for _, e := range entries {
		key := e.ID.String()
		if seen[key] {
			return nil, fmt.Errorf("SGX extension: duplicate entry %s", key)
		}
		seen[key] = true
		switch {
		case e.ID.Equal(oidPPID):
			if err := fixedOctets(e.Value, ext.PPID[:], "PPID"); err != nil {
				return nil, err
			}
		case e.ID.Equal(oidTCB):
			if err := parseTCBEntry(e.Value, ext); err != nil {
				return nil, err
			}
		case e.ID.Equal(oidPCEID):
			if err := fixedOctets(e.Value, ext.PCEID[:], "PCE-ID"); err != nil {
				return nil, err
			}
		case e.ID.Equal(oidFMSPC):
			if err := fixedOctets(e.Value, ext.FMSPC[:], "FMSPC"); err != nil {
				return nil, err
			}
		case e.ID.Equal(oidSGXType):
			var v asn1.Enumerated
			if _, err := asn1.Unmarshal(e.Value.FullBytes, &v); err != nil {
				return nil, fmt.Errorf("SGX extension: SGX type: %w", err)
			}
			if v < 0 || v > 2 {
				return nil, fmt.Errorf("SGX extension: SGX type %d is unknown", v)
			}
			ext.SGXType = SGXType(v)
		case e.ID.Equal(oidPlatformInstID):
			var v []byte
			if _, err := asn1.Unmarshal(e.Value.FullBytes, &v); err != nil {
				return nil, fmt.Errorf("SGX extension: platform instance id: %w", err)
			}
			ext.PlatformInstanceID = v
		case e.ID.Equal(oidConfiguration):
			conf, err := parseConfiguration(e.Value)
			if err != nil {
				return nil, err
			}
			ext.Configuration = conf
		}
		// Unknown entries are ignored: Intel may add fields.
	}
	for _, req := range []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{{oidPPID, "PPID"}, {oidTCB, "TCB"}, {oidPCEID, "PCE-ID"}, {oidFMSPC, "FMSPC"}, {oidSGXType, "SGX type"}} {
		if !seen[req.oid.String()] {
			return nil, fmt.Errorf("SGX extension: %s is missing", req.name)
		}
	}
	return ext, nil
}

func fixedOctets(v asn1.RawValue, dst []byte, name string) error {
	var b []byte
	if _, err := asn1.Unmarshal(v.FullBytes, &b); err != nil {
		return fmt.Errorf("SGX extension: %s: %w", name, err)
	}
	if len(b) != len(dst) {
		return fmt.Errorf("SGX extension: %s is %d bytes, want %d", name, len(b), len(dst))
	}
	copy(dst, b)
	return nil
}

func parseTCBEntry(v asn1.RawValue, ext *PCKExtension) error {
	var entries []asn1Entry
	if _, err := asn1.Unmarshal(v.FullBytes, &entries); err != nil {
		return fmt.Errorf("SGX extension: TCB: %w", err)
	}
	var got [19]bool
	for _, e := range entries {
		if len(e.ID) != len(oidTCB)+1 || !e.ID[:len(oidTCB)].Equal(oidTCB) {
			continue
		}
		arc := e.ID[len(oidTCB)]
		switch {
		case arc >= 1 && arc <= 16:
			var n int
			if _, err := asn1.Unmarshal(e.Value.FullBytes, &n); err != nil {
				return fmt.Errorf("SGX extension: TCB component %d: %w", arc, err)
			}
			if n < 0 || n > 255 {
				return fmt.Errorf("SGX extension: TCB component %d is %d, outside 0..255", arc, n)
			}
			ext.TCBComponents[arc-1] = uint8(n)
		case arc == oidTCBPCESVN:
			var n int
			if _, err := asn1.Unmarshal(e.Value.FullBytes, &n); err != nil {
				return fmt.Errorf("SGX extension: PCESVN: %w", err)
			}
			if n < 0 || n > 65535 {
				return fmt.Errorf("SGX extension: PCESVN %d outside 0..65535", n)
			}
			ext.PCESVN = uint16(n)
		case arc == oidTCBCPUSVN:
			if err := fixedOctets(e.Value, ext.CPUSVN[:], "CPUSVN"); err != nil {
				return err
			}
		default:
			continue
		}
		if got[arc] {
			return fmt.Errorf("SGX extension: TCB entry %d is duplicated", arc)
		}
		got[arc] = true
	}
	for arc := 1; arc <= 18; arc++ {
		if !got[arc] {
			return fmt.Errorf("SGX extension: TCB entry %s.%d is missing", oidTCB, arc)
		}
	}
	return nil
}

func parseConfiguration(v asn1.RawValue) (*PlatformConfiguration, error) {
	var entries []asn1Entry
	if _, err := asn1.Unmarshal(v.FullBytes, &entries); err != nil {
		return nil, fmt.Errorf("SGX extension: configuration: %w", err)
	}
	conf := &PlatformConfiguration{}
	for _, e := range entries {
		var b bool
		if _, err := asn1.Unmarshal(e.Value.FullBytes, &b); err != nil {
			return nil, fmt.Errorf("SGX extension: configuration %s: %w", e.ID, err)
		}
		switch {
		case e.ID.Equal(oidConfDynamic):
			conf.DynamicPlatform = &b
		case e.ID.Equal(oidConfCachedKeys):
			conf.CachedKeys = &b
		case e.ID.Equal(oidConfSMTEnabled):
			conf.SMTEnabled = &b
		}
	}
	return conf, nil
}
