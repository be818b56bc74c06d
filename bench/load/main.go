// Command load is attestd's load harness: it drives MAA-shaped SGX
// attestations (simulated quotes) at fixed concurrency levels and reports
// throughput, exact latency percentiles, memory and CPU, next to a floor
// measured in the same run: the cryptography one attestation cannot avoid.
//
//	go run ./bench/load                       # attestd in this process
//	go run ./bench/load --spawn               # attestd as a separate process
//	go run ./bench/load --url http://host:port # an attestd already running (--dev)
//
// See bench/README.md for what each number means.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the run failed: errors under load, or the harness could not run
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed flags.
type options struct {
	url           string
	spawn         bool
	attestdBin    string
	serverPID     int
	insecure      bool
	concurrency   []int
	duration      time.Duration
	warmup        time.Duration
	timeout       time.Duration
	floorDuration time.Duration
	quotes        int
	runs          int
	seed          string
	jsonPath      string
}

type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("%q is not an integer", f)
		}
		if n < 1 || n > 4096 {
			return fmt.Errorf("concurrency %d is outside 1..4096", n)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{concurrency: []int{1, 8, 64}}
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: go run ./bench/load [flags]

Drives POST /attest/SgxEnclave with simulated SGX quotes at each concurrency
level and reports attestations/s, exact latency percentiles, memory and CPU,
against a floor (RS256 signing + P-256 verification) measured in the same run.
By default attestd runs in this process; --spawn runs it as its own process
(memory is then the server's alone); --url targets one already running with --dev.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "", "target an attestd already running in dev mode at `URL` (http://host:port)")
	fs.BoolVar(&o.spawn, "spawn", false, "build cmd/attestd and run it as a separate process (server-only RSS and CPU)")
	fs.StringVar(&o.attestdBin, "attestd-bin", "", "with --spawn, run this attestd `binary` instead of building one")
	fs.IntVar(&o.serverPID, "server-pid", 0, "with --url, the server's `PID` on this machine, to report its RSS and CPU")
	fs.BoolVar(&o.insecure, "insecure", false, "with an https --url, do not verify the server's certificate")
	fs.Var((*intList)(&o.concurrency), "concurrency", "comma-separated concurrency `levels`")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measurement window per level")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per level before the window (not measured)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each request")
	fs.DurationVar(&o.floorDuration, "floor-duration", 3*time.Second, "floor measurement time (0 skips the floor)")
	fs.IntVar(&o.quotes, "quotes", 64, "distinct pre-generated quotes to cycle through")
	fs.IntVar(&o.runs, "runs", 1, "repeat the floor and every level this many `times`; the table shows medians")
	fs.StringVar(&o.seed, "seed", "", "simulator seed; the server must trust the same one (default: the simulator's default seed)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to `FILE`")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return o, o.validate()
}

func (o *options) validate() error {
	switch {
	case o.url != "" && o.spawn:
		return errors.New("--url and --spawn exclude each other")
	case o.attestdBin != "" && !o.spawn:
		return errors.New("--attestd-bin needs --spawn")
	case o.serverPID != 0 && o.url == "":
		return errors.New("--server-pid needs --url (in the other modes the harness knows the server's PID)")
	case o.serverPID < 0:
		return errors.New("--server-pid must be positive")
	case o.insecure && !strings.HasPrefix(o.url, "https://"):
		return errors.New("--insecure needs an https --url")
	case len(o.concurrency) == 0:
		return errors.New("--concurrency needs at least one level")
	case o.duration < 100*time.Millisecond || o.duration > time.Hour:
		return fmt.Errorf("--duration %s is outside 100ms..1h", o.duration)
	case o.warmup < 0 || o.warmup > time.Hour:
		return fmt.Errorf("--warmup %s is outside 0..1h", o.warmup)
	case o.timeout < 100*time.Millisecond || o.timeout > 10*time.Minute:
		return fmt.Errorf("--timeout %s is outside 100ms..10m", o.timeout)
	case o.floorDuration != 0 && (o.floorDuration < 300*time.Millisecond || o.floorDuration > 10*time.Minute):
		return fmt.Errorf("--floor-duration %s: 0 (no floor) or 300ms..10m", o.floorDuration)
	case o.quotes < 1 || o.quotes > 4096:
		return fmt.Errorf("--quotes %d is outside 1..4096", o.quotes)
	case o.runs < 1 || o.runs > 100:
		return fmt.Errorf("--runs %d is outside 1..100", o.runs)
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil {
			return fmt.Errorf("--url: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("--url %q: want http(s)://host:port with no path, query or credentials", o.url)
		}
		o.url = u.Scheme + "://" + u.Host
	}
	if o.attestdBin != "" {
		if st, err := os.Stat(o.attestdBin); err != nil || st.IsDir() {
			return fmt.Errorf("--attestd-bin %q is not a file", o.attestdBin)
		}
	}
	if o.jsonPath != "" {
		if st, err := os.Stat(filepath.Dir(o.jsonPath)); err != nil || !st.IsDir() {
			return fmt.Errorf("--json %q: its directory does not exist", o.jsonPath)
		}
	}
	return nil
}

func (o *options) mode() string {
	switch {
	case o.spawn:
		return modeSpawn
	case o.url != "":
		return modeURL
	}
	return modeInProcess
}

// budget is an upper bound of the whole run; past it the harness gives up
// rather than hang.
func (o *options) budget() time.Duration {
	d := 2*o.floorDuration + 10*time.Second
	for range o.concurrency {
		d += o.warmup + o.duration + o.timeout + 10*time.Second
	}
	return 5*time.Minute + time.Duration(o.runs)*d
}

// machine describes where the run happened.
type machine struct {
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"goos"`
	Arch       string `json:"goarch"`
}

// settings are the run's parameters.
type settings struct {
	Concurrency []int   `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	TimeoutS    float64 `json:"timeout_s"`
	Runs        int     `json:"runs"`
	Endpoint    string  `json:"endpoint"`
}

// report is everything a run measured; --json writes it.
type report struct {
	Tool     string    `json:"tool"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Mode     string    `json:"mode"`
	Target   string    `json:"target,omitempty"`
	PID      int       `json:"server_pid,omitempty"`
	MemScope string    `json:"memory_scope"`
	Note     string    `json:"note"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`

	Evidence   *evidenceSet `json:"evidence,omitempty"`
	BeforeLoad *memStatus   `json:"memory_before_load,omitempty"`
	// Floor and Levels are the medians over Runs (with one run, its
	// figures); Runs holds every run's own.
	Floor    *floorResult   `json:"floor,omitempty"`
	Levels   []*levelResult `json:"levels"`
	Runs     []*runResult   `json:"runs"`
	Failed   bool           `json:"failed"`
	Failures []string       `json:"failures,omitempty"`
}

func (r *report) fail(format string, args ...any) {
	r.Failed = true
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, o.budget())
	defer cancel()

	rep := &report{
		Tool:    "bench/load",
		Command: strings.TrimSpace("go run ./bench/load " + strings.Join(args, " ")),
		Started: time.Now().UTC().Truncate(time.Second),
		Mode:    o.mode(),
		Machine: machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(),
			GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH},
		Settings: settings{Concurrency: o.concurrency, DurationS: o.duration.Seconds(), WarmupS: o.warmup.Seconds(),
			TimeoutS: o.timeout.Seconds(), Runs: o.runs, Endpoint: "POST " + attestPath},
		Levels: []*levelResult{},
		Runs:   []*runResult{},
	}
	err = execute(ctx, o, rep, stderr)
	if err != nil {
		rep.fail("%v", err)
	}
	rep.Floor, rep.Levels = aggregate(rep.Runs)
	printReport(stdout, rep)
	if o.jsonPath != "" {
		if werr := writeJSON(o.jsonPath, rep); werr != nil {
			fmt.Fprintf(stderr, "load: %v\n", werr)
			return exitFailed
		}
	}
	if rep.Failed {
		return exitFailed
	}
	return exitOK
}

// execute does the run and fills rep; an error is a run that could not
// complete.
func execute(ctx context.Context, o *options, rep *report, stderr io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "load: "+format+"\n", args...) }

	logf("minting %d simulated SGX quotes", o.quotes)
	ev, err := makeEvidence(o.quotes, o.seed)
	if err != nil {
		return err
	}
	rep.Evidence = ev

	workDir, err := os.MkdirTemp("", "attestd-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(workDir)
	var t *target
	switch rep.Mode {
	case modeInProcess:
		logf("starting attestd in this process")
		t, err = startInProcess(ctx, filepath.Join(workDir, "data"), o.seed)
		rep.MemScope = "harness process: server and client together"
		rep.Note = fmt.Sprintf("attestd runs in the harness process: client and server share its %d CPUs and its memory", runtime.NumCPU())
	case modeSpawn:
		if o.attestdBin == "" {
			logf("building cmd/attestd")
		}
		t, err = startSpawn(ctx, workDir, o.attestdBin, o.seed, time.Minute)
		rep.MemScope = "server process alone"
		rep.Note = fmt.Sprintf("attestd is a separate process (memory and server CPU are its own), but client and server share this machine's %d CPUs", runtime.NumCPU())
	case modeURL:
		t = &target{Mode: modeURL, BaseURL: o.url, PID: o.serverPID, Separate: true}
		err = waitReady(ctx, o.url, 30*time.Second, nil)
		rep.MemScope = "none"
		rep.Note = "attestd at " + o.url + "; if it runs on this machine, client and server share its CPUs"
		if o.serverPID != 0 {
			rep.MemScope = "server process alone (--server-pid)"
		}
	}
	if err != nil {
		return err
	}
	defer func() {
		if serr := t.Stop(); serr != nil {
			logf("stopping attestd: %v", serr)
		}
	}()
	rep.Target, rep.PID = t.BaseURL, t.PID
	logf("attestd at %s (pid %d)", t.BaseURL, t.PID)

	maxConc := 0
	for _, c := range o.concurrency {
		maxConc = max(maxConc, c)
	}
	lc := newLoadClient(maxConc, o.timeout, o.insecure)
	defer lc.close()

	// One attestation first: a target that refuses the evidence (not in
	// dev mode, another seed) is a clear error, not a table of failures.
	if err := lc.attest(ctx, t.BaseURL+attestPath, ev.Bodies[0], o.timeout); err != nil {
		err = fmt.Errorf("the first attestation failed (is the server in --dev mode with the same seed?): %w", err)
		if tail := t.LogTail(); tail != "" {
			err = fmt.Errorf("%w\nattestd log (end):\n%s", err, tail)
		}
		return err
	}
	if t.PID != 0 {
		if m, err := readMem(t.PID); err == nil {
			rep.BeforeLoad = &m
		}
	}

	for i := range o.runs {
		run := &runResult{Run: i + 1}
		rep.Runs = append(rep.Runs, run)
		prefix := ""
		if o.runs > 1 {
			prefix = fmt.Sprintf("run %d/%d: ", i+1, o.runs)
		}
		if o.floorDuration > 0 {
			workers := runtime.GOMAXPROCS(0)
			logf("%smeasuring the floor: RS256 sign + %d P-256 verify in %d goroutines for %s", prefix, ecdsaPerAttestation, workers, o.floorDuration)
			if run.Floor, err = measureFloor(ctx, ev.Sample, workers, o.floorDuration); err != nil {
				return err
			}
		}
		for _, c := range o.concurrency {
			logf("%sconcurrency %d: warm-up %s, then %s measured", prefix, c, o.warmup, o.duration)
			// Start every level without idle connections, so that each
			// opens its own and the connection count shows keep-alive.
			lc.close()
			res, err := runLevel(ctx, lc, t, ev.Bodies, levelSpec{Concurrency: c, Warmup: o.warmup, Duration: o.duration, Timeout: o.timeout})
			if err != nil {
				return err
			}
			if run.Floor != nil && run.Floor.PerSec > 0 {
				res.RatioToFloor = res.PerSec / run.Floor.PerSec
			}
			run.Levels = append(run.Levels, res)
			logf("%sconcurrency %d: %.1f attestations/s, p50 %.2f ms, p99 %.2f ms, %d errors",
				prefix, c, res.PerSec, res.Latency.P50, res.Latency.P99, res.Errors+res.ErrorsOutsideWindow)
			if n := res.Errors + res.ErrorsOutsideWindow; n > 0 {
				rep.fail("%sconcurrency %d: %d failed requests", prefix, c, n)
			}
			if res.Requests == 0 {
				rep.fail("%sconcurrency %d: no request completed in the window", prefix, c)
			}
		}
	}
	if rep.Failed {
		if tail := t.LogTail(); tail != "" {
			logf("attestd log (end):\n%s", tail)
		}
	}
	return nil
}

func writeJSON(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// noisyCores is the CPU use by other processes (or steal) above which a
// level's figures are flagged as disturbed.
const noisyCores = 0.1

func mib(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }

func printReport(w io.Writer, rep *report) {
	fmt.Fprintf(w, "attestd load (bench/load), %s\n", rep.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "command:  %s\n", rep.Command)
	m := rep.Machine
	fmt.Fprintf(w, "machine:  %d CPUs (GOMAXPROCS %d), %s, %s %s/%s\n", m.NumCPU, m.GOMAXPROCS, m.CPUModel, m.GoVersion, m.OS, m.Arch)
	fmt.Fprintf(w, "mode:     %s", rep.Mode)
	if rep.Target != "" {
		fmt.Fprintf(w, ", %s", rep.Target)
	}
	if rep.PID != 0 {
		fmt.Fprintf(w, ", pid %d", rep.PID)
	}
	fmt.Fprintln(w)
	if rep.Note != "" {
		fmt.Fprintf(w, "note:     %s\n", rep.Note)
	}
	if ev := rep.Evidence; ev != nil {
		fmt.Fprintf(w, "evidence: %d distinct simulated SGX quotes (v%d, %d bytes; request body %d bytes; %d distinct QE report(s)), %s\n",
			ev.DistinctQuotes, ev.QuoteVersion, ev.QuoteBytes, ev.BodyBytes, ev.DistinctQEReports, rep.Settings.Endpoint)
	}
	fmt.Fprintf(w, "levels:   warm-up %gs, then %gs measured each; request timeout %gs\n",
		rep.Settings.WarmupS, rep.Settings.DurationS, rep.Settings.TimeoutS)
	multi := len(rep.Runs) > 1
	if multi {
		fmt.Fprintf(w, "runs:     %d; figures are medians over the runs (max latency, peak memory, connections and other cores: the worst; errors: the sum)\n", len(rep.Runs))
	}
	if f := rep.Floor; f != nil {
		fmt.Fprintf(w, "floor:    %.0f attestations/s = 1 RSA-2048 PKCS#1 v1.5 SHA-256 signature + %d P-256 verification(s), %d goroutines for %gs\n",
			f.PerSec, f.ECDSAPerAttestation, f.Workers, f.DurationS)
		fmt.Fprintf(w, "          alone: RS256 sign %.0f/s (%.0f µs per core), P-256 verify %.0f/s (%.0f µs per core)\n",
			f.RSASignPerSec, f.RSASignUS, f.ECDSAVerifyPerSec, f.ECDSAVerifyUS)
		if other := f.OtherCPUS / f.DurationS; other > noisyCores {
			fmt.Fprintf(w, "WARNING: other processes used %.2f cores during the floor measurement: the floor is understated\n", other)
		}
	}
	if rep.BeforeLoad != nil {
		fmt.Fprintf(w, "memory:   %s; before load VmRSS %s MiB, VmHWM %s MiB\n", rep.MemScope, mib(rep.BeforeLoad.RSSKiB), mib(rep.BeforeLoad.HWMKiB))
	}
	if len(rep.Levels) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		rangeHead := ""
		if multi {
			rangeHead = "att/s range\t"
		}
		fmt.Fprintln(tw, "conc\trequests\terrors\tatt/s\t"+rangeHead+"p50 ms\tp90 ms\tp99 ms\tmax ms\tconns\tsrv CPU ms/att\tsrv cores\tclient cores\tother cores\tRSS MiB\tpeak MiB\tmeasured/floor\t")
		for _, l := range rep.Levels {
			rng := ""
			if multi {
				rng = fmt.Sprintf("%.0f–%.0f\t", l.PerSecMin, l.PerSecMax)
			}
			na := "n/a"
			cpuAtt, srvCores, cliCores, otherCores, rss, peak, ratio := na, na, na, na, na, na, na
			if l.CPUMeasured {
				otherCores = fmt.Sprintf("%.2f", l.OtherCPUS/l.DurationS)
				if rep.PID != 0 {
					cpuAtt = fmt.Sprintf("%.2f", l.ServerCPUMSPerAtt)
					srvCores = fmt.Sprintf("%.2f", l.ServerCPUS/l.DurationS)
				}
				if rep.Mode != modeInProcess {
					cliCores = fmt.Sprintf("%.2f", l.ClientCPUS/l.DurationS)
				}
			}
			if l.Memory != nil {
				rss, peak = mib(l.Memory.RSSKiB), mib(l.Memory.HWMKiB)
			}
			if l.RatioToFloor > 0 {
				ratio = fmt.Sprintf("%.2f", l.RatioToFloor)
			}
			errs := strconv.FormatInt(l.Errors, 10)
			if l.ErrorsOutsideWindow > 0 {
				errs += fmt.Sprintf(" (+%d)", l.ErrorsOutsideWindow)
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%.1f\t%s%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				l.Concurrency, l.Requests, errs, l.PerSec, rng, l.Latency.P50, l.Latency.P90, l.Latency.P99, l.Latency.Max,
				l.Connections, cpuAtt, srvCores, cliCores, otherCores, rss, peak, ratio)
		}
		tw.Flush()
		if rep.Mode == modeInProcess {
			fmt.Fprintln(w, "(in-process: srv CPU and RSS are of the whole harness process, client included)")
		}
		if len(rep.Levels) > 0 && rep.Levels[0].HWMSince == "process" {
			fmt.Fprintln(w, "(peak is VmHWM since the process started: it could not be reset per level)")
		}
		for _, l := range rep.Levels {
			if l.CPUMeasured && l.OtherCPUS/l.DurationS > noisyCores {
				fmt.Fprintf(w, "WARNING: at concurrency %d other processes used %.2f cores: the machine was not quiet, the figures understate attestd\n",
					l.Concurrency, l.OtherCPUS/l.DurationS)
			}
			if l.CPUMeasured && l.StealCPUS/l.DurationS > noisyCores {
				fmt.Fprintf(w, "WARNING: at concurrency %d the hypervisor stole %.2f cores\n", l.Concurrency, l.StealCPUS/l.DurationS)
			}
		}
		for _, l := range rep.Levels {
			for _, e := range l.ErrorKinds {
				fmt.Fprintf(w, "errors at concurrency %d: %d × %s (e.g. %s)\n", l.Concurrency, e.Count, e.Kind, e.Example)
			}
		}
	}
	fmt.Fprintln(w)
	if rep.Failed {
		fmt.Fprintln(w, "RESULT: FAILED")
		for _, f := range rep.Failures {
			fmt.Fprintf(w, "  - %s\n", f)
		}
		return
	}
	fmt.Fprintln(w, "RESULT: ok (every request answered 200 with a token)")
}
