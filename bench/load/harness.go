package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxResponse bounds how much of a response is read. An attestation token
// is a few KiB.
const maxResponse = 1 << 20

// maxErrorKinds bounds the distinct error kinds kept per level.
const maxErrorKinds = 16

// loadClient is the HTTP client of the load: keep-alive, enough idle
// connections per host for the highest concurrency, and a count of the
// connections it opened.
type loadClient struct {
	http  *http.Client
	dials atomic.Int64
}

func newLoadClient(maxConcurrency int, timeout time.Duration, insecure bool) *loadClient {
	lc := &loadClient{}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // never a proxy for a benchmark
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			lc.dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:          0, // no overall limit
		MaxIdleConnsPerHost:   maxConcurrency + 8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
	}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in, for self-signed dev servers
	}
	lc.http = &http.Client{Transport: tr, Timeout: timeout}
	return lc
}

func (lc *loadClient) close() { lc.http.CloseIdleConnections() }

// httpError is a response other than 200.
type httpError struct {
	Status int
	Code   string // MAA error code, with attestd's reason when present
	Body   string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Body)
}

// attest posts one request body and checks that the answer is a 200 with
// a compact JWS token.
func (lc *loadClient) attest(ctx context.Context, endpoint string, body []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := lc.http.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return newHTTPError(resp.StatusCode, b)
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("200 whose body is not JSON: %w", err)
	}
	if parts := strings.Split(r.Token, "."); len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return errors.New("200 without a signed compact JWS token")
	}
	return nil
}

func newHTTPError(status int, body []byte) *httpError {
	e := &httpError{Status: status, Body: truncate(string(body), 300)}
	var eb struct {
		Error struct {
			Code       string `json:"code"`
			InnerError struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Code = eb.Error.Code
		if eb.Error.InnerError.Code != "" {
			e.Code += "/" + eb.Error.InnerError.Code
		}
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var hostPort = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]|localhost):\d+`)

// errorKind names an error for counting: the status and MAA code of a
// response, or the transport error without ephemeral ports.
func errorKind(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		return fmt.Sprintf("HTTP %d %s", he.Status, he.Code)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timeout"
		}
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return truncate(hostPort.ReplaceAllString(err.Error(), "$1:*"), 200)
}

// levelSpec is one concurrency level of the load.
type levelSpec struct {
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
	Timeout     time.Duration
}

// latencies are exact statistics of the recorded samples, in milliseconds.
type latencies struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
	Min  float64 `json:"min_ms"`
}

// errorCount is one kind of error with its count and a full example.
type errorCount struct {
	Kind    string `json:"kind"`
	Count   int64  `json:"count"`
	Example string `json:"example"`
}

// levelResult is what one level measured.
type levelResult struct {
	Concurrency int     `json:"concurrency"`
	WarmupS     float64 `json:"warmup_s"`
	DurationS   float64 `json:"duration_s"`
	// Requests are the requests that completed inside the measurement
	// window, successful or not; Errors those of them that failed.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// ErrorsOutsideWindow failed during the warm-up or while the requests
	// in flight at the end of the window completed. They fail the run too.
	ErrorsOutsideWindow int64 `json:"errors_outside_window"`
	// PerSec is successful attestations completed in the window per second.
	PerSec float64 `json:"attestations_per_s"`
	// Over several runs (Runs > 1) the figures are medians and PerSecMin
	// and PerSecMax the range of the runs' PerSec.
	Runs      int     `json:"runs,omitempty"`
	PerSecMin float64 `json:"attestations_per_s_min,omitempty"`
	PerSecMax float64 `json:"attestations_per_s_max,omitempty"`
	// Latency is over the successful requests completed in the window,
	// measured from before the request is written to after the response
	// body is read.
	Latency latencies `json:"latency"`
	// Connections is the TCP connections the client opened during the level
	// (warm-up included); with keep-alive it stays at most Concurrency.
	Connections int64 `json:"connections_opened"`
	// CPU time (user+system, seconds) over the window. ServerCPUS is the
	// measured process's (in-process mode: server and client together);
	// ServerCPUMSPerAtt divides it by the successful requests. ClientCPUS is
	// the harness's when the server is another process. OtherCPUS is the
	// rest of the machine's busy time: other processes competing for the
	// CPUs, which makes the figures unreliable. StealCPUS is hypervisor
	// steal.
	CPUMeasured       bool    `json:"cpu_measured"`
	ServerCPUS        float64 `json:"server_cpu_s"`
	ServerCPUMSPerAtt float64 `json:"server_cpu_ms_per_attestation"`
	ClientCPUS        float64 `json:"client_cpu_s"`
	OtherCPUS         float64 `json:"other_cpu_s"`
	StealCPUS         float64 `json:"steal_cpu_s"`
	// Memory of the measured process at the end of the level: VmRSS then,
	// and VmHWM, the peak since the level started (HWMSince "level") or
	// since the process started ("process") when the peak cannot be reset.
	Memory   *memStatus `json:"memory,omitempty"`
	HWMSince string     `json:"hwm_since,omitempty"`
	// RatioToFloor is PerSec divided by the floor's attestations/s.
	RatioToFloor float64      `json:"ratio_to_floor,omitempty"`
	ErrorKinds   []errorCount `json:"error_kinds,omitempty"`
}

// workerResult is what one worker recorded.
type workerResult struct {
	lat         []time.Duration
	requests    int64
	errs        int64
	errsOutside int64
	kinds       map[string]*errorCount
}

func (w *workerResult) addError(err error) {
	if w.kinds == nil {
		w.kinds = map[string]*errorCount{}
	}
	k := errorKind(err)
	if e, ok := w.kinds[k]; ok {
		e.Count++
		return
	}
	if len(w.kinds) >= maxErrorKinds {
		k = "other"
		if e, ok := w.kinds[k]; ok {
			e.Count++
			return
		}
	}
	w.kinds[k] = &errorCount{Kind: k, Count: 1, Example: truncate(err.Error(), 500)}
}

// cpuSnapshot is CPU time used so far, in seconds: by the measured
// process (server), by the harness when it is another process (client),
// and by the whole machine.
type cpuSnapshot struct {
	server, client float64
	machine        machineCPU
	ok             bool
}

// takeCPU reads the CPU time of pid (0: unknown) and of this process.
func takeCPU(pid int) cpuSnapshot {
	var s cpuSnapshot
	var err error
	if s.machine, err = readMachineCPU(); err != nil {
		return s
	}
	self := os.Getpid()
	if pid != 0 {
		if s.server, err = cpuSeconds(pid); err != nil {
			return s
		}
	}
	if pid != self {
		if s.client, err = cpuSeconds(self); err != nil {
			return s
		}
	}
	s.ok = true
	return s
}

// cpuUse is the CPU time used between two snapshots, in seconds.
type cpuUse struct {
	Server, Client float64
	// Other is the machine's busy time not used by the server or the
	// harness: other processes competing for the CPUs. Steal is time the
	// hypervisor gave to other guests.
	Other, Steal float64
	OK           bool
}

func (a cpuSnapshot) until(b cpuSnapshot) cpuUse {
	if !a.ok || !b.ok {
		return cpuUse{}
	}
	u := cpuUse{Server: b.server - a.server, Client: b.client - a.client, Steal: b.machine.Steal - a.machine.Steal, OK: true}
	u.Other = max(b.machine.Busy-a.machine.Busy-u.Server-u.Client, 0)
	return u
}

// sampleCPU returns the CPU time used between start and end.
func sampleCPU(ctx context.Context, pid int, start, end time.Time) cpuUse {
	sleepUntil := func(t time.Time) bool {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		}
	}
	if !sleepUntil(start) {
		return cpuUse{}
	}
	a := takeCPU(pid)
	if !sleepUntil(end) {
		return cpuUse{}
	}
	return a.until(takeCPU(pid))
}

// runLevel runs spec.Concurrency workers, each posting the bodies in turn
// back to back, for the warm-up and then the measurement window. Requests
// that complete inside the window are counted; every error, inside the
// window or not, is reported.
func runLevel(ctx context.Context, lc *loadClient, t *target, bodies [][]byte, spec levelSpec) (*levelResult, error) {
	if spec.Concurrency < 1 || spec.Duration <= 0 || spec.Timeout <= 0 || len(bodies) == 0 {
		return nil, fmt.Errorf("invalid level %+v with %d bodies", spec, len(bodies))
	}
	endpoint := t.BaseURL + attestPath
	res := &levelResult{Concurrency: spec.Concurrency, WarmupS: spec.Warmup.Seconds(), DurationS: spec.Duration.Seconds()}
	if t.PID != 0 {
		res.HWMSince = "process"
		if resetHWM(t.PID) == nil {
			res.HWMSince = "level"
		}
	}
	dials0 := lc.dials.Load()
	start := time.Now()
	winStart := start.Add(spec.Warmup)
	winEnd := winStart.Add(spec.Duration)

	cpuc := make(chan cpuUse, 1)
	go func() { cpuc <- sampleCPU(ctx, t.PID, winStart, winEnd) }()

	workers := make([]workerResult, spec.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &workers[i]
			// Each worker starts at its own place in the bodies.
			k := i * len(bodies) / spec.Concurrency
			for ctx.Err() == nil && time.Now().Before(winEnd) {
				body := bodies[k%len(bodies)]
				k++
				t0 := time.Now()
				err := lc.attest(ctx, endpoint, body, spec.Timeout)
				t1 := time.Now()
				if ctx.Err() != nil {
					return // interrupted: neither a sample nor the server's fault
				}
				inWindow := !t1.Before(winStart) && !t1.After(winEnd)
				switch {
				case err != nil && inWindow:
					w.requests++
					w.errs++
					w.addError(err)
				case err != nil:
					w.errsOutside++
					w.addError(err)
				case inWindow:
					w.requests++
					w.lat = append(w.lat, t1.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	cpu := <-cpuc
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("level %d interrupted: %w", spec.Concurrency, err)
	}
	res.Connections = lc.dials.Load() - dials0

	var lat []time.Duration
	kinds := map[string]*errorCount{}
	for i := range workers {
		w := &workers[i]
		lat = append(lat, w.lat...)
		res.Requests += w.requests
		res.Errors += w.errs
		res.ErrorsOutsideWindow += w.errsOutside
		for k, e := range w.kinds {
			if have, ok := kinds[k]; ok {
				have.Count += e.Count
			} else {
				c := *e
				kinds[k] = &c
			}
		}
	}
	for _, e := range kinds {
		res.ErrorKinds = append(res.ErrorKinds, *e)
	}
	sort.Slice(res.ErrorKinds, func(i, j int) bool { return res.ErrorKinds[i].Count > res.ErrorKinds[j].Count })
	res.PerSec = float64(len(lat)) / spec.Duration.Seconds()
	res.Latency = summarize(lat)
	if cpu.OK {
		res.CPUMeasured = true
		res.OtherCPUS, res.StealCPUS = cpu.Other, cpu.Steal
		res.ClientCPUS = cpu.Client
		if t.PID != 0 {
			res.ServerCPUS = cpu.Server
			if len(lat) > 0 {
				res.ServerCPUMSPerAtt = cpu.Server * 1e3 / float64(len(lat))
			}
		}
	}
	if t.PID != 0 {
		if m, err := readMem(t.PID); err == nil {
			res.Memory = &m
		}
	}
	return res, nil
}

// summarize returns exact statistics of the samples: nearest-rank
// percentiles of the sorted samples.
func summarize(lat []time.Duration) latencies {
	if len(lat) == 0 {
		return latencies{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latencies{
		P50:  ms(percentile(s, 50)),
		P90:  ms(percentile(s, 90)),
		P99:  ms(percentile(s, 99)),
		Max:  ms(s[len(s)-1]),
		Min:  ms(s[0]),
		Mean: ms(sum / time.Duration(len(s))),
	}
}

// percentile is the nearest-rank p-th percentile of sorted samples: the
// smallest sample with at least p % of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
