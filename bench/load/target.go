package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/attestd/attestd/internal/daemon"
)

// Modes of running the server.
const (
	modeInProcess = "in-process"
	modeSpawn     = "spawn"
	modeURL       = "url"
)

// target is the attestd under load.
type target struct {
	Mode string
	// BaseURL is the server's scheme and authority, without a slash.
	BaseURL string
	// PID is the process whose memory and CPU are reported; 0 when unknown.
	PID int
	// Separate says the PID is the server alone, not server plus client.
	Separate bool
	stop     func() error
	// logTail returns the end of the server's log, when there is one.
	logTail func() string
}

func (t *target) Stop() error {
	if t.stop == nil {
		return nil
	}
	stop := t.stop
	t.stop = nil
	return stop()
}

func (t *target) LogTail() string {
	if t.logTail == nil {
		return ""
	}
	return t.logTail()
}

// startInProcess runs attestd in this process on a loopback port, in dev
// mode with its data in dataDir.
func startInProcess(ctx context.Context, dataDir, seed string) (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	cfg := daemon.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.Dev = true
	cfg.DevSeed = seed
	cfg.Issuer = "http://" + ln.Addr().String()
	inst, err := daemon.Start(ctx, cfg, daemon.Options{Listener: ln})
	if err != nil {
		return nil, fmt.Errorf("starting attestd in-process: %w", err)
	}
	t := &target{Mode: modeInProcess, BaseURL: cfg.Issuer, PID: os.Getpid()}
	t.stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return inst.Shutdown(ctx)
	}
	return t, nil
}

// buildAttestd builds cmd/attestd into dir with the go command.
func buildAttestd(ctx context.Context, dir string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("--spawn builds cmd/attestd with the go command, which is not on PATH (or pass --attestd-bin): %w", err)
	}
	bin := filepath.Join(dir, "attestd")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin, "github.com/attestd/attestd/cmd/attestd")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build cmd/attestd (run from inside the module, or pass --attestd-bin): %w\n%s", err, out.String())
	}
	return bin, nil
}

// freeLoopbackPort asks the kernel for an unused loopback port.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// childEnv is the environment without ATTESTD_* variables, so that the
// spawned server's configuration is exactly its flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ATTESTD_") {
			env = append(env, kv)
		}
	}
	return env
}

// startSpawn runs attestd as a separate process (bin, or cmd/attestd built
// into workDir) in dev mode on a loopback port, with its data and log in
// workDir, and waits until it is ready.
func startSpawn(ctx context.Context, workDir, bin, seed string, readyTimeout time.Duration) (*target, error) {
	if bin == "" {
		var err error
		if bin, err = buildAttestd(ctx, workDir); err != nil {
			return nil, err
		}
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"serve", "--dev", "--data-dir", filepath.Join(workDir, "data"), "--addr", addr, "--log-level", "info"}
	if seed != "" {
		args = append(args, "--dev-seed", seed)
	}
	logPath := filepath.Join(workDir, "attestd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	t := &target{Mode: modeSpawn, BaseURL: "http://" + addr, PID: cmd.Process.Pid, Separate: true}
	t.logTail = func() string { return tailFile(logPath, 4096) }
	t.stop = func() error {
		select {
		case <-exited:
			return fmt.Errorf("attestd exited early: %v", waitErr)
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil {
				return fmt.Errorf("attestd: %v", waitErr)
			}
			return nil
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("attestd did not stop within 20s of SIGTERM; killed it")
		}
	}
	if err := waitReady(ctx, t.BaseURL, readyTimeout, exited); err != nil {
		_ = t.Stop()
		if tail := t.LogTail(); tail != "" {
			err = fmt.Errorf("%w\nattestd log (end):\n%s", err, tail)
		}
		return nil, err
	}
	return t, nil
}

// waitReady polls GET /readyz until it answers 200, the deadline passes,
// ctx ends or exited (when not nil) is closed.
func waitReady(ctx context.Context, baseURL string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("attestd at %s not ready within %s: %v", baseURL, timeout, last)
			}
			return ctx.Err()
		case <-exited:
			return errors.New("attestd exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tailFile returns up to the last n bytes of a file.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return ""
	}
	return string(buf)
}
