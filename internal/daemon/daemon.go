package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/attestd/attestd/internal/keys"
	"github.com/attestd/attestd/internal/policies"
	"github.com/attestd/attestd/internal/server"
	"github.com/attestd/attestd/internal/service"
	"github.com/attestd/attestd/internal/store"
	"github.com/attestd/attestd/internal/store/sqlite"
	"github.com/attestd/attestd/simulator"
	"github.com/attestd/attestd/token"
)

// Version is attestd's version, reported in x-ms-maa-service-version.
const Version = "attestd/0.1.0"

// Instance is a running attestd.
type Instance struct {
	// Addr is the address it listens on; URL its issuer.
	Addr net.Addr
	URL  string

	log      *slog.Logger
	server   *http.Server
	store    store.Store
	keys     *keys.Manager
	policies *policies.Manager
	done     chan error
	quit     chan struct{}
	stopOnce sync.Once
	// cancelRequests ends every request's context.
	cancelRequests context.CancelFunc
	reloader       sync.WaitGroup
	shutdown       time.Duration
}

// Options are for embedding attestd in tests and harnesses.
type Options struct {
	Logger *slog.Logger
	// Clock replaces time.Now for verification and tokens (tests).
	Clock func() time.Time
	// Listener, when not nil, is used instead of listening on cfg.Addr.
	Listener net.Listener
}

// openStore opens the embedded store in the data dir, with the sealing key
// from the configuration or the key file.
func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var key []byte
	var err error
	if cfg.StoreKey != "" {
		if key, err = store.ParseKey(cfg.StoreKey); err != nil {
			return nil, fmt.Errorf("store key: %w", err)
		}
	} else {
		path := cfg.StoreKeyFile
		if path == "" {
			path = filepath.Join(cfg.DataDir, "store.key")
		}
		if key, err = store.LoadOrCreateKeyFile(path); err != nil {
			return nil, fmt.Errorf("store key: %w", err)
		}
	}
	sealer, err := store.NewAESGCMSealer(key)
	if err != nil {
		return nil, fmt.Errorf("store key: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "attestd.db"), sealer)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// Start wires attestd and starts serving; it returns once the listener is
// open. Stop it with Shutdown.
func Start(ctx context.Context, cfg Config, opts Options) (*Instance, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var intel service.CollateralSource = &service.FileCollateral{}
	if len(cfg.Collateral) > 0 {
		fc, err := service.LoadCollateralFiles(cfg.Collateral)
		if err != nil {
			return nil, err
		}
		log.Info("collateral loaded", "platforms", fc.Platforms())
		intel = fc
	} else {
		log.Warn("no collateral configured: real SGX/TDX quotes will be refused with collateral_unavailable (see --collateral)")
	}
	ln := opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	issuer, err := issuerFor(cfg, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	fail := func(err error) (*Instance, error) {
		ln.Close()
		st.Close()
		return nil, err
	}
	lifetime := time.Duration(cfg.TokenLifetime)
	km, err := keys.New(ctx, keys.Config{Store: st, Issuer: issuer, Clock: clock, Retention: lifetime + 10*time.Minute})
	if err != nil {
		return fail(err)
	}
	metrics := server.NewMetrics()
	svcCfg := service.Config{
		Issuer: issuer, TokenLifetime: lifetime, Clock: clock, Keys: km,
		Collateral: intel, Observer: metrics,
	}
	var devKeys *fixedKey
	if cfg.Dev {
		sim, err := simulator.New(simulator.Options{Seed: cfg.DevSeed, Now: clock()})
		if err != nil {
			return fail(fmt.Errorf("dev mode: %w", err))
		}
		// Simulated evidence gets its own key, made afresh in memory on
		// every start and never stored: its tokens stop verifying as soon
		// as dev mode is off, and the production key never vouches for
		// evidence anyone can mint.
		devKey, err := token.GenerateKey(nil, issuer, clock())
		if err != nil {
			return fail(fmt.Errorf("dev mode: %w", err))
		}
		devKeys = &fixedKey{key: devKey}
		svcCfg.Dev = &service.DevMode{Root: sim.Root(), Collateral: service.NewSimulatorCollateral(cfg.DevSeed, clock), Keys: devKeys}
		log.Warn("DEV MODE: simulator evidence is accepted; its tokens carry x-attestd-simulated=true and are signed by a separate in-memory key. Never use in production.",
			"seed", sim.Seed(), "dev_kid", devKey.KID)
	}
	pm, err := openPolicies(ctx, cfg, st, clock, log)
	if err != nil {
		return fail(err)
	}
	svcCfg.Policies = pm
	authn, err := newAuthenticator(cfg, clock, log)
	if err != nil {
		return fail(err)
	}
	svc, err := service.New(svcCfg)
	if err != nil {
		return fail(err)
	}
	var published server.KeySet = km
	if devKeys != nil {
		published = keySets{km, devKeys}
	}
	srvCfg := server.Config{Service: svc, Keys: published, Ready: st, Metrics: metrics, Logger: log, Version: Version,
		Policies: pm, Signer: svc, AttestRequiresAuth: cfg.AttestAuth == "required"}
	if authn != nil {
		srvCfg.Auth = authn
	} else {
		log.Warn("no management credentials configured: the policy management API refuses every call (see --admin-token-file, --oidc-issuer)")
	}
	srv, err := server.New(srvCfg)
	if err != nil {
		return fail(err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Requests' contexts end when shutdown gives up, so work waiting for
	// an attestation slot stops too.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	hs.BaseContext = func(net.Listener) context.Context { return baseCtx }
	inst := &Instance{Addr: ln.Addr(), URL: issuer, log: log, server: hs, store: st, keys: km, policies: pm, cancelRequests: cancelBase,
		done: make(chan error, 1), quit: make(chan struct{}), shutdown: time.Duration(cfg.ShutdownTimeout)}
	go func() {
		var err error
		if tlsConfig != nil {
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		inst.done <- err
	}()
	inst.reloader.Add(1)
	go func() {
		defer inst.reloader.Done()
		inst.reloadKeys(time.Duration(cfg.KeyReloadInterval))
	}()
	log.Info("attestd listening", "addr", ln.Addr().String(), "issuer", issuer, "tls", tlsConfig != nil,
		"data_dir", cfg.DataDir, "dev", cfg.Dev, "active_kid", mustKID(km), "trust_model", pm.TrustModel(),
		"attest_auth", cfg.AttestAuth)
	return inst, nil
}

// fixedKey is a key that is always the active and only published one.
type fixedKey struct{ key *token.Key }

func (f *fixedKey) ActiveKey() (*token.Key, error) { return f.key, nil }
func (f *fixedKey) Published() []*token.Key        { return []*token.Key{f.key} }

// keySets publishes several key sets, in order.
type keySets []server.KeySet

func (ks keySets) Published() []*token.Key {
	var out []*token.Key
	for _, k := range ks {
		out = append(out, k.Published()...)
	}
	return out
}

func mustKID(km *keys.Manager) string {
	if k, err := km.ActiveKey(); err == nil {
		return k.KID
	}
	return ""
}

// reloadKeys re-reads the signing keys periodically, so that a rotation
// made with `attestd keys rotate` (another process) takes effect.
func (in *Instance) reloadKeys(every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := in.keys.Reload(ctx); err != nil {
				in.log.Error("reloading signing keys", "error", err)
			}
			if err := in.policies.Reload(ctx); err != nil {
				in.log.Error("reloading policies", "error", err)
			}
			cancel()
		case <-in.quit:
			return
		}
	}
}

// Shutdown stops accepting connections, waits for in-flight requests (up
// to the configured timeout, then closes what is left) and closes the
// store. Calling it again returns at once.
func (in *Instance) Shutdown(ctx context.Context) error {
	err := errors.New("daemon: already shut down")
	in.stopOnce.Do(func() { err = in.stop(ctx) })
	return err
}

func (in *Instance) stop(ctx context.Context) error {
	if in.shutdown > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.shutdown)
		defer cancel()
	}
	close(in.quit)
	err := in.server.Shutdown(ctx)
	if err != nil {
		// Out of patience: drop the remaining connections.
		in.log.Warn("shutdown timed out; closing open connections", "error", err)
		in.cancelRequests()
		_ = in.server.Close()
	}
	in.cancelRequests()
	if serveErr := <-in.done; err == nil {
		err = serveErr
	}
	in.reloader.Wait()
	if cerr := in.store.Close(); err == nil {
		err = cerr
	}
	return err
}
