package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/simulator"
)

// ErrNoCollateral is returned (wrapped) by a CollateralSource that has
// nothing for the platform asked about.
var ErrNoCollateral = errors.New("no collateral for this platform")

// CollateralSource finds the collateral to verify a quote from the platform
// with the given TEE type and FMSPC.
type CollateralSource interface {
	Collateral(ctx context.Context, tee dcap.TEEType, fmspc [6]byte) (*dcap.Collateral, error)
}

type collateralKey struct {
	tee   dcap.TEEType
	fmspc [6]byte
}

// FileCollateral serves collateral loaded once from local files: attestd or
// dcap-qvl bundles, PCS response bodies, PEM chains and CRLs. It is
// immutable after loading.
type FileCollateral struct {
	sets map[collateralKey]*dcap.Collateral
}

// LoadCollateralFiles loads collateral from paths. A file is one set (a
// bundle); a directory is one set made of every regular file in it (PCS
// bodies, chains and CRLs side by side, as attestctl sim collateral writes
// them). Each set must hold a TCB Info, which names its TEE and FMSPC; items
// a set lacks (QE Identity, CRLs, issuer chains) are taken from the other
// sets of the same TEE, in the order given. Of two sets for one platform the
// later tcbEvaluationDataNumber wins.
func LoadCollateralFiles(paths []string) (*FileCollateral, error) {
	var loaded []*dcap.Collateral
	for _, p := range paths {
		c, err := loadCollateralPath(p)
		if err != nil {
			return nil, err
		}
		if c.TCBInfo == nil {
			return nil, fmt.Errorf("collateral %s: no TCB Info in it", p)
		}
		loaded = append(loaded, c)
	}
	fc := &FileCollateral{sets: make(map[collateralKey]*dcap.Collateral)}
	for i, c := range loaded {
		tee := dcap.TEESGX
		if c.TCBInfo.ID == "TDX" {
			tee = dcap.TEETDX
		}
		parts := []*dcap.Collateral{c}
		for j, other := range loaded {
			if j != i && other.TCBInfo.ID == c.TCBInfo.ID {
				parts = append(parts, other)
			}
		}
		merged := dcap.MergeCollateral(parts...)
		// Merging keeps the first TCB Info, which is c's own.
		key := collateralKey{tee: tee, fmspc: c.TCBInfo.FMSPC}
		if prev, ok := fc.sets[key]; ok && prev.TCBInfo.TCBEvaluationDataNumber >= c.TCBInfo.TCBEvaluationDataNumber {
			continue
		}
		fc.sets[key] = merged
	}
	return fc, nil
}

func loadCollateralPath(p string) (*dcap.Collateral, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("collateral: %w", err)
	}
	if !info.IsDir() {
		return loadCollateralFile(p)
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("collateral: %w", err)
	}
	var parts []*dcap.Collateral
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		c, err := loadCollateralFile(filepath.Join(p, e.Name()))
		if err != nil {
			return nil, err
		}
		parts = append(parts, c)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("collateral %s: the directory holds no files", p)
	}
	return dcap.MergeCollateral(parts...), nil
}

const maxCollateralFile = 16 << 20

func loadCollateralFile(p string) (*dcap.Collateral, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("collateral: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCollateralFile+1))
	if err != nil {
		return nil, fmt.Errorf("collateral %s: %w", p, err)
	}
	if len(data) > maxCollateralFile {
		return nil, fmt.Errorf("collateral %s: larger than %d bytes", p, maxCollateralFile)
	}
	c, _, err := dcap.LoadCollateral(data)
	if err != nil {
		return nil, fmt.Errorf("collateral %s: %w", p, err)
	}
	return c, nil
}

// Collateral implements CollateralSource.
func (fc *FileCollateral) Collateral(_ context.Context, tee dcap.TEEType, fmspc [6]byte) (*dcap.Collateral, error) {
	if c, ok := fc.sets[collateralKey{tee, fmspc}]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %s FMSPC %x", ErrNoCollateral, tee, fmspc)
}

// Platforms lists the (TEE, FMSPC) pairs served, for logs and readiness.
func (fc *FileCollateral) Platforms() []string {
	var out []string
	for k := range fc.sets {
		out = append(out, fmt.Sprintf("%s/%x", k.tee, k.fmspc))
	}
	sort.Strings(out)
	return out
}

// SimulatorCollateral serves the simulator's collateral for any FMSPC it
// knows, including the broken collateral of its collateral faults, so that
// every fault is reachable through the service by the quote alone. Sets are
// reissued (from a simulator re-created at the current time) before they
// expire, so a long-running dev server keeps working.
type SimulatorCollateral struct {
	seed  string
	clock func() time.Time

	mu      sync.Mutex
	sim     *simulator.Simulator
	entries map[collateralKey]*dcap.Collateral
}

// simReissueMargin is how long before the simulator's 30-day collateral
// expires it is reissued.
const simReissueMargin = 24 * time.Hour

// NewSimulatorCollateral serves collateral of the simulator with seed.
func NewSimulatorCollateral(seed string, clock func() time.Time) *SimulatorCollateral {
	return &SimulatorCollateral{seed: seed, clock: clock, entries: make(map[collateralKey]*dcap.Collateral)}
}

// Collateral implements CollateralSource.
func (s *SimulatorCollateral) Collateral(_ context.Context, tee dcap.TEEType, fmspc [6]byte) (*dcap.Collateral, error) {
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sim == nil || now.After(s.sim.Now().Add(30*24*time.Hour-simReissueMargin)) || now.Before(s.sim.Now()) {
		sim, err := simulator.New(simulator.Options{Seed: s.seed, Now: now.Add(-time.Minute)})
		if err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
		s.sim = sim
		clear(s.entries)
	}
	key := collateralKey{tee, fmspc}
	if c, ok := s.entries[key]; ok {
		return c, nil
	}
	set, err := s.sim.CollateralForFMSPC(tee, fmspc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCollateral, err)
	}
	c, err := set.Collateral()
	if err != nil {
		return nil, fmt.Errorf("simulator collateral: %w", err)
	}
	s.entries[key] = c
	return c, nil
}
