package dcap

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The TCB evaluation follows Intel's Quote Verification Library
// (TcbLevelCheck, TdxModuleCheck, TDRelaunchCheck, QE identity checks):
//
//   - TCB levels are tried from the highest down, the order being Intel's:
//     the 16 SGX components compared as a sequence, then PCESVN, then (TDX)
//     the 16 TDX components. The JSON order is not trusted.
//   - SGX: the first level whose every SGX component and PCESVN is at or
//     below the PCK certificate's matches.
//   - TDX: of the levels whose SGX part matches, the first whose TDX
//     components are at or below TEE_TCB_SVN matches; components 0 and 1
//     (the TDX module's SVN and version) are skipped when TEE_TCB_SVN[1] is
//     not zero, because the module identity's own levels judge the module.
//   - The TDX module (TEE_TCB_SVN[1] > 0) must match the identity
//     "TDX_%02X" of that version; its level is the first whose ISVSVN is at
//     or below TEE_TCB_SVN[0]. An OutOfDate module makes the platform
//     OutOfDate (OutOfDateConfigurationNeeded when configuration is needed).
//   - TDX 1.5 quotes whose TD was launched on an out-of-date module that
//     has since been updated (TEE_TCB_SVN2) to the latest level report
//     TDRelaunchAdvised: relaunching the TD would bring it up to date.
//   - The QE's level is the first (in document order) whose ISVSVN is at
//     or below the QE's; an out-of-date QE lowers the status like a module.

type levelMatch struct {
	platform    *TCBLevel // the matched level (TDX: the one matching TDX components too)
	sgxPlatform *TCBLevel // TDX: the first level whose SGX part matched
	module      *TDXModuleIdentity
	moduleLevel *ModuleTCBLevel
	qeLevel     *ModuleTCBLevel
	status      TCBStatus
	relaunch    bool
}

// sortedLevels returns the TCB levels highest first, by Intel's order.
func sortedLevels(levels []TCBLevel) []*TCBLevel {
	out := make([]*TCBLevel, len(levels))
	for i := range levels {
		out[i] = &levels[i]
	}
	slices.SortStableFunc(out, func(a, b *TCBLevel) int {
		if c := bytes.Compare(b.SGXComponents[:], a.SGXComponents[:]); c != 0 {
			return c
		}
		if a.PCESVN != b.PCESVN {
			if a.PCESVN > b.PCESVN {
				return -1
			}
			return 1
		}
		return bytes.Compare(b.TDXComponents[:], a.TDXComponents[:])
	})
	return out
}

func sgxPartMatches(l *TCBLevel, pck *PCKExtension) bool {
	for i := range 16 {
		if pck.TCBComponents[i] < l.SGXComponents[i] {
			return false
		}
	}
	return pck.PCESVN >= l.PCESVN
}

func tdxPartMatches(l *TCBLevel, teeTCBSVN [16]byte) bool {
	start := 0
	if teeTCBSVN[1] > 0 {
		start = 2
	}
	for i := start; i < 16; i++ {
		if teeTCBSVN[i] < l.TDXComponents[i] {
			return false
		}
	}
	return true
}

// matchPlatform selects the platform TCB level.
func matchPlatform(info *TCBInfo, levels []*TCBLevel, pck *PCKExtension, td *TDReport) (platform, sgxLevel *TCBLevel, err error) {
	for _, l := range levels {
		if !sgxPartMatches(l, pck) {
			continue
		}
		if td == nil {
			return l, l, nil
		}
		if sgxLevel == nil {
			sgxLevel = l
		}
		if tdxPartMatches(l, td.TEETCBSVN) {
			return l, sgxLevel, nil
		}
	}
	if sgxLevel == nil {
		return nil, nil, newErr(CodeTCBLevelNotSupported,
			"no TCB level of FMSPC %x is satisfied by the PCK certificate's TCB (SGX components %v, PCESVN %d)",
			info.FMSPC, pck.TCBComponents, pck.PCESVN)
	}
	return nil, nil, newErr(CodeTCBLevelNotSupported,
		"no TCB level of FMSPC %x is satisfied by the TD's TEE_TCB_SVN %x", info.FMSPC, td.TEETCBSVN)
}

func moduleID(version byte) string { return fmt.Sprintf("TDX_%02X", version) }

func findModule(info *TCBInfo, version byte) *TDXModuleIdentity {
	want := moduleID(version)
	for i := range info.TDXModuleIdentities {
		if strings.EqualFold(info.TDXModuleIdentities[i].ID, want) {
			return &info.TDXModuleIdentities[i]
		}
	}
	return nil
}

// checkModule matches MRSIGNERSEAM and SEAM attributes against the module
// identity for the TD's module version, and selects the module TCB level.
// It returns a nil level for TDX 1.0 modules (version 0), which the
// tdxModule object only identifies.
func checkModule(info *TCBInfo, td *TDReport) (*TDXModuleIdentity, *ModuleTCBLevel, error) {
	version := td.TEETCBSVN[1]
	ident := info.TDXModule
	if version > 0 {
		ident = findModule(info, version)
		if ident == nil {
			return nil, nil, newErr(CodeTDXModuleMismatch, "TCB Info has no TDX module identity %s for the TD's module version %d", moduleID(version), version)
		}
	}
	if ident == nil {
		return nil, nil, newErr(CodeTDXModuleMismatch, "TCB Info has no tdxModule identity")
	}
	if !bytes.Equal(td.MRSIGNERSEAM[:], ident.MRSIGNER[:]) {
		return nil, nil, newErr(CodeTDXModuleMismatch, "MRSIGNERSEAM %x does not match the TDX module identity's mrsigner %x", td.MRSIGNERSEAM, ident.MRSIGNER)
	}
	for i := range td.SEAMAttributes {
		if td.SEAMAttributes[i]&ident.AttributesMask[i] != ident.Attributes[i] {
			return nil, nil, newErr(CodeTDXModuleMismatch, "SEAM attributes %x do not match the TDX module identity's attributes %x under mask %x", td.SEAMAttributes, ident.Attributes, ident.AttributesMask)
		}
	}
	if version == 0 {
		return ident, nil, nil
	}
	lvl := moduleLevel(ident, td.TEETCBSVN[0])
	if lvl == nil {
		return nil, nil, newErr(CodeTCBLevelNotSupported, "TDX module %s SVN %d is below every module TCB level", ident.ID, td.TEETCBSVN[0])
	}
	return ident, lvl, nil
}

// moduleLevel returns the highest module level whose ISVSVN is at or below
// svn.
func moduleLevel(ident *TDXModuleIdentity, svn byte) *ModuleTCBLevel {
	var best *ModuleTCBLevel
	for i := range ident.TCBLevels {
		l := &ident.TCBLevels[i]
		if uint16(svn) >= l.ISVSVN && (best == nil || l.ISVSVN > best.ISVSVN) {
			best = l
		}
	}
	return best
}

func highestModuleLevel(ident *TDXModuleIdentity) *ModuleTCBLevel {
	var best *ModuleTCBLevel
	for i := range ident.TCBLevels {
		if best == nil || ident.TCBLevels[i].ISVSVN > best.ISVSVN {
			best = &ident.TCBLevels[i]
		}
	}
	return best
}

// convergeOutOfDate lowers a platform status for an out-of-date or revoked
// component (TDX module or QE).
func convergeOutOfDate(platform, component TCBStatus) TCBStatus {
	switch component {
	case StatusOutOfDate:
		switch platform {
		case StatusUpToDate, StatusSWHardeningNeeded:
			return StatusOutOfDate
		case StatusConfigurationNeeded, StatusConfigurationAndSWHardeningNeeded:
			return StatusOutOfDateConfigurationNeeded
		}
	case StatusRevoked:
		return StatusRevoked
	}
	return platform
}

func outOfDate(s TCBStatus) bool {
	return s == StatusOutOfDate || s == StatusOutOfDateConfigurationNeeded || s == StatusRevoked
}

func configurationNeeded(s TCBStatus) bool {
	switch s {
	case StatusConfigurationNeeded, StatusOutOfDateConfigurationNeeded,
		StatusConfigurationAndSWHardeningNeeded, StatusTDRelaunchAdvisedConfigurationNeeded:
		return true
	}
	return false
}

// relaunchAdvised reports whether a TDX 1.5 TD launched on an out-of-date
// module now runs on a platform whose module (TEE_TCB_SVN2) is at the
// latest level, so that relaunching the TD would clear the OutOfDate.
func relaunchAdvised(info *TCBInfo, levels []*TCBLevel, td *TDReport) bool {
	latest := levels[0]
	svn2 := td.TEETCBSVN2
	if svn2[1] == 0 {
		return svn2[0] >= latest.TDXComponents[0] && svn2[2] >= latest.TDXComponents[2]
	}
	ident := findModule(info, svn2[1])
	if ident == nil {
		return false
	}
	top := highestModuleLevel(ident)
	if top == nil {
		return false
	}
	return uint16(svn2[0]) >= top.ISVSVN && svn2[2] >= latest.TDXComponents[2]
}

// qeLevel returns the first QE TCB level (document order) whose ISVSVN is
// at or below the QE's.
func qeLevel(id *QEIdentity, isvsvn uint16) *ModuleTCBLevel {
	for i := range id.TCBLevels {
		if isvsvn >= id.TCBLevels[i].ISVSVN {
			return &id.TCBLevels[i]
		}
	}
	return nil
}

// checkQEIdentity matches the QE report against the QE Identity.
func checkQEIdentity(id *QEIdentity, qe *EnclaveReport) (*ModuleTCBLevel, error) {
	if qe.MiscSelect&id.MiscSelectMask != id.MiscSelect {
		return nil, newErr(CodeQEIdentityMismatch, "QE MISCSELECT %08x under mask %08x is not %08x", qe.MiscSelect, id.MiscSelectMask, id.MiscSelect)
	}
	for i := range qe.Attributes {
		if qe.Attributes[i]&id.AttributesMask[i] != id.Attributes[i] {
			return nil, newErr(CodeQEIdentityMismatch, "QE ATTRIBUTES %x under mask %x are not %x", qe.Attributes, id.AttributesMask, id.Attributes)
		}
	}
	if qe.MRSIGNER != id.MRSIGNER {
		return nil, newErr(CodeQEIdentityMismatch, "QE MRSIGNER %x is not the identity's %x", qe.MRSIGNER, id.MRSIGNER)
	}
	if qe.ISVProdID != id.ISVProdID {
		return nil, newErr(CodeQEIdentityMismatch, "QE ISVPRODID %d is not the identity's %d", qe.ISVProdID, id.ISVProdID)
	}
	lvl := qeLevel(id, qe.ISVSVN)
	if lvl == nil {
		return nil, newErr(CodeTCBLevelNotSupported, "QE ISVSVN %d is below every %s identity TCB level", qe.ISVSVN, id.ID)
	}
	if lvl.TCBStatus == StatusRevoked {
		return nil, newErr(CodeTCBRevoked, "QE ISVSVN %d matches a %s TCB level with status Revoked", qe.ISVSVN, id.ID)
	}
	return lvl, nil
}

// evaluateTCB runs the TCB evaluation for a quote whose signatures and
// collateral have been verified.
func evaluateTCB(info *TCBInfo, levels []*TCBLevel, qeID *QEIdentity, pck *PCKExtension, q *Quote) (*levelMatch, error) {
	qeLvl, err := checkQEIdentity(qeID, &q.QEReport)
	if err != nil {
		return nil, err
	}
	platform, sgxLevel, err := matchPlatform(info, levels, pck, q.TD)
	if err != nil {
		return nil, err
	}
	m := &levelMatch{platform: platform, sgxPlatform: sgxLevel, qeLevel: qeLvl, status: platform.TCBStatus}
	if m.status == StatusRevoked {
		return nil, newErr(CodeTCBRevoked, "the platform's TCB level (%s) has status Revoked", platform.TCBDate.Format(time.DateOnly))
	}
	if q.TD != nil {
		ident, lvl, err := checkModule(info, q.TD)
		if err != nil {
			return nil, err
		}
		m.module, m.moduleLevel = ident, lvl
		if lvl != nil {
			if lvl.TCBStatus == StatusRevoked {
				return nil, newErr(CodeTCBRevoked, "TDX module %s SVN %d has status Revoked", ident.ID, q.TD.TEETCBSVN[0])
			}
			m.status = convergeOutOfDate(m.status, lvl.TCBStatus)
			if q.BodyType == BodyTD15 && lvl.TCBStatus == StatusOutOfDate &&
				qeLvl.TCBStatus == StatusUpToDate && !outOfDate(sgxLevel.TCBStatus) &&
				(m.status == StatusOutOfDate || m.status == StatusOutOfDateConfigurationNeeded) &&
				relaunchAdvised(info, levels, q.TD) {
				m.relaunch = true
				if configurationNeeded(sgxLevel.TCBStatus) || configurationNeeded(m.status) {
					m.status = StatusTDRelaunchAdvisedConfigurationNeeded
				} else {
					m.status = StatusTDRelaunchAdvised
				}
			}
		}
	}
	m.status = convergeOutOfDate(m.status, qeLvl.TCBStatus)
	return m, nil
}
