package main

import (
	"slices"
	"sort"
)

// runResult is one run: a floor measurement and every level.
type runResult struct {
	Run    int            `json:"run"`
	Floor  *floorResult   `json:"floor,omitempty"`
	Levels []*levelResult `json:"levels"`
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianOf is the median of f over items.
func medianOf[T any](items []T, f func(T) float64) float64 {
	xs := make([]float64, len(items))
	for i, it := range items {
		xs[i] = f(it)
	}
	return median(xs)
}

// aggregate returns the floor and the levels of a single run as they are;
// over several runs, the median of each figure (the worst for peak memory,
// maximum latency, CPU used by other processes and connections; the sum
// for errors), with the range of attestations/s.
func aggregate(runs []*runResult) (*floorResult, []*levelResult) {
	if len(runs) == 0 {
		return nil, []*levelResult{}
	}
	if len(runs) == 1 {
		if runs[0].Levels == nil {
			return runs[0].Floor, []*levelResult{}
		}
		return runs[0].Floor, runs[0].Levels
	}
	var floors []*floorResult
	for _, r := range runs {
		if r.Floor != nil {
			floors = append(floors, r.Floor)
		}
	}
	var floor *floorResult
	if len(floors) > 0 {
		f := *floors[0]
		f.Ops = int64(medianOf(floors, func(f *floorResult) float64 { return float64(f.Ops) }))
		f.PerSec = medianOf(floors, func(f *floorResult) float64 { return f.PerSec })
		f.RSASignPerSec = medianOf(floors, func(f *floorResult) float64 { return f.RSASignPerSec })
		f.ECDSAVerifyPerSec = medianOf(floors, func(f *floorResult) float64 { return f.ECDSAVerifyPerSec })
		f.RSASignUS = medianOf(floors, func(f *floorResult) float64 { return f.RSASignUS })
		f.ECDSAVerifyUS = medianOf(floors, func(f *floorResult) float64 { return f.ECDSAVerifyUS })
		for _, g := range floors {
			f.OtherCPUS = max(f.OtherCPUS, g.OtherCPUS)
			f.StealCPUS = max(f.StealCPUS, g.StealCPUS)
		}
		floor = &f
	}

	out := []*levelResult{}
	for i := 0; ; i++ {
		var ls []*levelResult
		for _, r := range runs {
			if i < len(r.Levels) {
				ls = append(ls, r.Levels[i])
			}
		}
		if len(ls) == 0 {
			break
		}
		out = append(out, aggregateLevel(ls))
	}
	return floor, out
}

func aggregateLevel(ls []*levelResult) *levelResult {
	if len(ls) == 1 {
		return ls[0]
	}
	type L = *levelResult
	m := &levelResult{
		Concurrency: ls[0].Concurrency, WarmupS: ls[0].WarmupS, DurationS: ls[0].DurationS,
		HWMSince: ls[0].HWMSince, Runs: len(ls), CPUMeasured: true,
	}
	m.Requests = int64(medianOf(ls, func(l L) float64 { return float64(l.Requests) }))
	m.PerSec = medianOf(ls, func(l L) float64 { return l.PerSec })
	m.PerSecMin, m.PerSecMax = ls[0].PerSec, ls[0].PerSec
	m.Latency.P50 = medianOf(ls, func(l L) float64 { return l.Latency.P50 })
	m.Latency.P90 = medianOf(ls, func(l L) float64 { return l.Latency.P90 })
	m.Latency.P99 = medianOf(ls, func(l L) float64 { return l.Latency.P99 })
	m.Latency.Mean = medianOf(ls, func(l L) float64 { return l.Latency.Mean })
	m.Latency.Min = ls[0].Latency.Min
	m.ServerCPUS = medianOf(ls, func(l L) float64 { return l.ServerCPUS })
	m.ServerCPUMSPerAtt = medianOf(ls, func(l L) float64 { return l.ServerCPUMSPerAtt })
	m.ClientCPUS = medianOf(ls, func(l L) float64 { return l.ClientCPUS })
	m.RatioToFloor = medianOf(ls, func(l L) float64 { return l.RatioToFloor })
	var rss []float64
	kinds := map[string]*errorCount{}
	for _, l := range ls {
		m.PerSecMin = min(m.PerSecMin, l.PerSec)
		m.PerSecMax = max(m.PerSecMax, l.PerSec)
		m.Latency.Max = max(m.Latency.Max, l.Latency.Max)
		m.Latency.Min = min(m.Latency.Min, l.Latency.Min)
		m.Errors += l.Errors
		m.ErrorsOutsideWindow += l.ErrorsOutsideWindow
		m.Connections = max(m.Connections, l.Connections)
		m.OtherCPUS = max(m.OtherCPUS, l.OtherCPUS)
		m.StealCPUS = max(m.StealCPUS, l.StealCPUS)
		m.CPUMeasured = m.CPUMeasured && l.CPUMeasured
		if l.Memory != nil {
			if m.Memory == nil {
				m.Memory = &memStatus{}
			}
			rss = append(rss, float64(l.Memory.RSSKiB))
			m.Memory.HWMKiB = max(m.Memory.HWMKiB, l.Memory.HWMKiB)
		}
		for _, e := range l.ErrorKinds {
			if have, ok := kinds[e.Kind]; ok {
				have.Count += e.Count
			} else {
				c := e
				kinds[e.Kind] = &c
			}
		}
	}
	if m.Memory != nil {
		m.Memory.RSSKiB = int64(median(rss))
	}
	for _, e := range kinds {
		m.ErrorKinds = append(m.ErrorKinds, *e)
	}
	sort.Slice(m.ErrorKinds, func(i, j int) bool { return m.ErrorKinds[i].Count > m.ErrorKinds[j].Count })
	return m
}
