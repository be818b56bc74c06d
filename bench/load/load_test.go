package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestLoadInProcess runs the harness core against attestd in this process
// for about a second at concurrency 2. It asserts only that attestations
// flowed and none failed: no speed threshold.
func TestLoadInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := makeEvidence(8, "")
	if err != nil {
		t.Fatal(err)
	}
	if ev.DistinctQuotes != 8 || len(ev.Bodies) != 8 {
		t.Fatalf("evidence: %d distinct quotes, %d bodies; want 8", ev.DistinctQuotes, len(ev.Bodies))
	}
	if ev.DistinctQEReports != 1 {
		t.Errorf("the quotes carry %d distinct QE reports; the floor assumes one (cached after the first)", ev.DistinctQEReports)
	}
	tgt, err := startInProcess(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tgt.Stop(); err != nil {
			t.Error(err)
		}
	})
	lc := newLoadClient(2, 20*time.Second, false)
	defer lc.close()
	res, err := runLevel(ctx, lc, tgt, ev.Bodies, levelSpec{Concurrency: 2, Warmup: 200 * time.Millisecond,
		Duration: 800 * time.Millisecond, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.ErrorsOutsideWindow != 0 {
		t.Fatalf("%d errors in the window, %d outside: %+v", res.Errors, res.ErrorsOutsideWindow, res.ErrorKinds)
	}
	if res.Requests == 0 || res.PerSec <= 0 {
		t.Fatalf("no throughput: %d requests, %.1f/s", res.Requests, res.PerSec)
	}
	l := res.Latency
	if !(l.Min > 0 && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency statistics out of order: %+v", l)
	}
	if res.Connections < 1 || res.Connections > 2 {
		t.Errorf("opened %d connections for 2 workers with keep-alive", res.Connections)
	}
	if res.Memory == nil || res.Memory.RSSKiB <= 0 {
		t.Errorf("no RSS reading: %+v", res.Memory)
	}
}

// TestRefusedEvidenceIsCounted checks that a refusal is an error, not a
// sample: evidence from another simulator seed is not trusted.
func TestRefusedEvidenceIsCounted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := makeEvidence(2, "some-other-seed")
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := startInProcess(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tgt.Stop() })
	lc := newLoadClient(1, 20*time.Second, false)
	defer lc.close()
	res, err := runLevel(ctx, lc, tgt, ev.Bodies, levelSpec{Concurrency: 1, Duration: 200 * time.Millisecond, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Errors != res.Requests || res.PerSec != 0 {
		t.Fatalf("refused evidence: %d requests, %d errors, %.1f/s; want all errors", res.Requests, res.Errors, res.PerSec)
	}
	if len(res.ErrorKinds) == 0 || !strings.HasPrefix(res.ErrorKinds[0].Kind, "HTTP 400") {
		t.Errorf("error kinds %+v; want HTTP 400", res.ErrorKinds)
	}
}

func TestFloor(t *testing.T) {
	ev, err := makeEvidence(1, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := measureFloor(context.Background(), ev.Sample, 2, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if f.Ops <= 0 || f.PerSec <= 0 || f.RSASignPerSec <= 0 || f.ECDSAVerifyPerSec <= 0 || f.ECDSAPerAttestation != 1 {
		t.Fatalf("floor %+v", f)
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {90, 90}, {99, 99}, {100, 100}, {0, 1}, {0.5, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(1..100, %v) = %d, want %d", c.p, got, c.want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("percentile of one sample = %d", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of none = %d", got)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"--concurrency", "2, 4", "--duration", "1s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.concurrency) != 2 || o.concurrency[1] != 4 || o.mode() != modeInProcess {
		t.Errorf("parsed %+v", o)
	}
	o, err = parseFlags([]string{"--url", "http://127.0.0.1:8080/", "--server-pid", "1"}, io.Discard)
	if err != nil || o.url != "http://127.0.0.1:8080" || o.mode() != modeURL {
		t.Errorf("--url: %+v, %v", o, err)
	}
	for _, args := range [][]string{
		{"--concurrency", "0"},
		{"--concurrency", "1,x"},
		{"--concurrency", ""},
		{"--duration", "0s"},
		{"--warmup", "-1s"},
		{"--timeout", "1ms"},
		{"--quotes", "0"},
		{"--floor-duration", "1ms"},
		{"--url", "http://x", "--spawn"},
		{"--url", "ftp://x"},
		{"--url", "http://x/attest"},
		{"--attestd-bin", "/bin/sh"},
		{"--server-pid", "1"},
		{"--insecure"},
		{"--json", "/nonexistent-dir/x.json"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	if code := run(context.Background(), []string{"--duration", "bad"}, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
}
