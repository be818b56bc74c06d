// Package daemon is the attestd program: configuration (flags, environment,
// file), wiring of store, keys, collateral, service and HTTP server, and the
// serve and keys commands. cmd/attestd only calls Run.
package daemon

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is attestd's configuration. Precedence, lowest first: defaults,
// the JSON file named by --config (or ATTESTD_CONFIG), ATTESTD_*
// environment variables, command-line flags.
type Config struct {
	Addr    string `json:"addr"`
	TLSCert string `json:"tlsCert"`
	TLSKey  string `json:"tlsKey"`
	DataDir string `json:"dataDir"`
	// Issuer is the public base URL (iss, jku, the signing certificate's
	// CN). Empty: derived from Addr and TLS.
	Issuer string `json:"issuer"`
	Dev    bool   `json:"dev"`
	// DevSeed selects the simulator trusted in dev mode.
	DevSeed       string   `json:"devSeed"`
	TokenLifetime Duration `json:"tokenLifetime"`
	// Collateral lists files (bundles) and directories (PCS files) of
	// collateral for real quotes.
	Collateral []string `json:"collateral"`
	// StoreKey is the store encryption key (64 hex or base64 of 32 bytes);
	// empty: read or create <dataDir>/store.key.
	StoreKey        string   `json:"storeKey"`
	StoreKeyFile    string   `json:"storeKeyFile"`
	LogLevel        string   `json:"logLevel"`
	LogFormat       string   `json:"logFormat"`
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// KeyReloadInterval is how often signing keys are re-read from the
	// store, to pick up a rotation made by another process.
	KeyReloadInterval Duration `json:"keyReloadInterval"`

	// AdminTokenFile lists hashed bearer tokens for the management API
	// (docs/auth.md).
	AdminTokenFile string `json:"adminTokenFile"`
	// OIDC* configure bearer JWTs from an OpenID Connect issuer.
	OIDCIssuer    string `json:"oidcIssuer"`
	OIDCAudience  string `json:"oidcAudience"`
	OIDCRoleClaim string `json:"oidcRoleClaim"`
	// OIDCDiscoveryURL overrides where the issuer's metadata is read (for
	// Entra ID v1 tokens, whose issuer differs from the metadata's).
	OIDCDiscoveryURL     string   `json:"oidcDiscoveryUrl"`
	OIDCReaderRoles      []string `json:"oidcReaderRoles"`
	OIDCContributorRoles []string `json:"oidcContributorRoles"`
	OIDCAttesterRoles    []string `json:"oidcAttesterRoles"`
	// AttestAuth is "none" (MAA's anonymous attest calls) or "required".
	AttestAuth string `json:"attestAuth"`
	// Isolated creates the tenant in isolated mode, with
	// PolicySignerCerts (PEM files) as its policy-management
	// certificates. Both count only at first start.
	Isolated          bool     `json:"isolated"`
	PolicySignerCerts []string `json:"policySignerCerts"`
}

// Duration is a time.Duration written as "8h", "90s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"8h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// DefaultConfig returns the embedded defaults: plain HTTP on loopback,
// data in ./attestd-data, MAA's 8 h token lifetime.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		DataDir:           "attestd-data",
		TokenLifetime:     Duration(8 * time.Hour),
		LogLevel:          "info",
		LogFormat:         "text",
		ShutdownTimeout:   Duration(15 * time.Second),
		KeyReloadInterval: Duration(time.Minute),
		AttestAuth:        "none",
		OIDCRoleClaim:     "roles",
		// Names in the style of Entra ID app roles; MAA's RBAC roles are
		// called Attestation Reader and Attestation Contributor.
		OIDCReaderRoles:      []string{"Attestation.Reader"},
		OIDCContributorRoles: []string{"Attestation.Contributor"},
		OIDCAttesterRoles:    []string{"Attestation.Attester"},
	}
}

type multiString []string

func (m *multiString) String() string     { return strings.Join(*m, ",") }
func (m *multiString) Set(v string) error { *m = append(*m, v); return nil }

// configFlags binds serve's flags to a Config.
type configFlags struct {
	fs         *flag.FlagSet
	cfg        Config
	configFile string
	collateral multiString
	// Repeatable flags whose values replace, not extend, the lower layers.
	oidcReader, oidcContributor, oidcAttester, signerCerts multiString
}

func newConfigFlags(name string) *configFlags {
	cf := &configFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs, c := cf.fs, &cf.cfg
	fs.StringVar(&cf.configFile, "config", "", "JSON configuration `FILE` (env ATTESTD_CONFIG)")
	fs.StringVar(&c.Addr, "addr", "", "listen `ADDRESS` (default 127.0.0.1:8080)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate `PEM` (serve HTTPS; the MAA SDKs require it)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key `PEM`")
	fs.StringVar(&c.DataDir, "data-dir", "", "data `DIR` for the embedded store (default ./attestd-data)")
	fs.StringVar(&c.Issuer, "issuer", "", "public base `URL`; token iss and jku derive from it (default from --addr)")
	fs.BoolVar(&c.Dev, "dev", false, "dev mode: also trust the simulator's root and serve its collateral; tokens are marked simulated")
	fs.StringVar(&c.DevSeed, "dev-seed", "", "simulator `SEED` trusted in dev mode (default the simulator's default seed)")
	fs.Var((*durationFlag)(&c.TokenLifetime), "token-lifetime", "attestation token `LIFETIME` (default 8h)")
	fs.Var(&cf.collateral, "collateral", "collateral `PATH` for real quotes: a bundle file or a directory of PCS files (repeatable)")
	fs.StringVar(&c.StoreKey, "store-key", "", "store encryption `KEY` (64 hex chars or base64 of 32 bytes; prefer ATTESTD_STORE_KEY)")
	fs.StringVar(&c.StoreKeyFile, "store-key-file", "", "store encryption key `FILE` (default DATA-DIR/store.key, created if absent)")
	fs.StringVar(&c.LogLevel, "log-level", "", "log `LEVEL`: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "", "log `FORMAT`: text or json")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", "", "`FILE` of hashed admin bearer tokens for the management API (see `attestd admin-token create`)")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", "", "OpenID Connect issuer `URL` whose JWTs authenticate management calls")
	fs.StringVar(&c.OIDCAudience, "oidc-audience", "", "`AUDIENCE` OIDC tokens must be issued for")
	fs.StringVar(&c.OIDCRoleClaim, "oidc-role-claim", "", "OIDC token claim holding the caller's roles (default roles)")
	fs.StringVar(&c.OIDCDiscoveryURL, "oidc-discovery-url", "", "`URL` of the OIDC issuer's metadata, when not <issuer>/.well-known/openid-configuration")
	fs.Var(&cf.oidcReader, "oidc-reader-role", "OIDC role `VALUE` granting reader (repeatable; default Attestation.Reader)")
	fs.Var(&cf.oidcContributor, "oidc-contributor-role", "OIDC role `VALUE` granting contributor (repeatable; default Attestation.Contributor)")
	fs.Var(&cf.oidcAttester, "oidc-attester-role", "OIDC role `VALUE` granting attester (repeatable; default Attestation.Attester)")
	fs.StringVar(&c.AttestAuth, "attest-auth", "", "`MODE` for attest calls: none (anonymous, as MAA) or required (bearer token with the attester role)")
	fs.BoolVar(&c.Isolated, "isolated", false, "create the tenant in isolated mode: policy changes must be signed by a policy signer certificate (first start only)")
	fs.Var(&cf.signerCerts, "policy-signer-cert", "`PEM` file of policy signer certificates for a new isolated tenant (repeatable; first start only)")
	return cf
}

type durationFlag Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }
func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

// resolve merges defaults, file, environment and the flags that were set.
func (cf *configFlags) resolve(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	file := cf.configFile
	if file == "" {
		file = getenv("ATTESTD_CONFIG")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", file, err)
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	cf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	f := cf.cfg
	str := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	str("addr", &cfg.Addr, f.Addr)
	str("tls-cert", &cfg.TLSCert, f.TLSCert)
	str("tls-key", &cfg.TLSKey, f.TLSKey)
	str("data-dir", &cfg.DataDir, f.DataDir)
	str("issuer", &cfg.Issuer, f.Issuer)
	str("dev-seed", &cfg.DevSeed, f.DevSeed)
	str("store-key", &cfg.StoreKey, f.StoreKey)
	str("store-key-file", &cfg.StoreKeyFile, f.StoreKeyFile)
	str("log-level", &cfg.LogLevel, f.LogLevel)
	str("log-format", &cfg.LogFormat, f.LogFormat)
	if set["dev"] {
		cfg.Dev = f.Dev
	}
	if set["token-lifetime"] {
		cfg.TokenLifetime = f.TokenLifetime
	}
	if set["collateral"] {
		cfg.Collateral = append([]string(nil), cf.collateral...)
	}
	str("admin-token-file", &cfg.AdminTokenFile, f.AdminTokenFile)
	str("oidc-issuer", &cfg.OIDCIssuer, f.OIDCIssuer)
	str("oidc-audience", &cfg.OIDCAudience, f.OIDCAudience)
	str("oidc-role-claim", &cfg.OIDCRoleClaim, f.OIDCRoleClaim)
	str("oidc-discovery-url", &cfg.OIDCDiscoveryURL, f.OIDCDiscoveryURL)
	str("attest-auth", &cfg.AttestAuth, f.AttestAuth)
	if set["isolated"] {
		cfg.Isolated = f.Isolated
	}
	lists := map[string]struct {
		dst *[]string
		src multiString
	}{
		"oidc-reader-role": {&cfg.OIDCReaderRoles, cf.oidcReader}, "oidc-contributor-role": {&cfg.OIDCContributorRoles, cf.oidcContributor},
		"oidc-attester-role": {&cfg.OIDCAttesterRoles, cf.oidcAttester}, "policy-signer-cert": {&cfg.PolicySignerCerts, cf.signerCerts},
	}
	for name, l := range lists {
		if set[name] {
			*l.dst = append([]string(nil), l.src...)
		}
	}
	return cfg, cfg.validate()
}

func applyEnv(cfg *Config, getenv func(string) string) error {
	strs := map[string]*string{
		"ATTESTD_ADDR": &cfg.Addr, "ATTESTD_TLS_CERT": &cfg.TLSCert, "ATTESTD_TLS_KEY": &cfg.TLSKey,
		"ATTESTD_DATA_DIR": &cfg.DataDir, "ATTESTD_ISSUER": &cfg.Issuer, "ATTESTD_DEV_SEED": &cfg.DevSeed,
		"ATTESTD_STORE_KEY": &cfg.StoreKey, "ATTESTD_STORE_KEY_FILE": &cfg.StoreKeyFile,
		"ATTESTD_LOG_LEVEL": &cfg.LogLevel, "ATTESTD_LOG_FORMAT": &cfg.LogFormat,
		"ATTESTD_ADMIN_TOKEN_FILE": &cfg.AdminTokenFile, "ATTESTD_OIDC_ISSUER": &cfg.OIDCIssuer,
		"ATTESTD_OIDC_AUDIENCE": &cfg.OIDCAudience, "ATTESTD_OIDC_ROLE_CLAIM": &cfg.OIDCRoleClaim,
		"ATTESTD_OIDC_DISCOVERY_URL": &cfg.OIDCDiscoveryURL,
		"ATTESTD_ATTEST_AUTH":        &cfg.AttestAuth,
	}
	for name, dst := range strs {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("ATTESTD_DEV"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("ATTESTD_DEV=%q: want true or false", v)
		}
		cfg.Dev = b
	}
	if v := getenv("ATTESTD_TOKEN_LIFETIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("ATTESTD_TOKEN_LIFETIME=%q: %w", v, err)
		}
		cfg.TokenLifetime = Duration(d)
	}
	if v := getenv("ATTESTD_ISOLATED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("ATTESTD_ISOLATED=%q: want true or false", v)
		}
		cfg.Isolated = b
	}
	if v := getenv("ATTESTD_POLICY_SIGNER_CERTS"); v != "" {
		cfg.PolicySignerCerts = strings.Split(v, string(os.PathListSeparator))
	}
	if v := getenv("ATTESTD_COLLATERAL"); v != "" {
		cfg.Collateral = strings.Split(v, string(os.PathListSeparator))
	}
	return nil
}

func (c *Config) validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("config: --tls-cert and --tls-key go together")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("config: addr %q: %w", c.Addr, err)
	}
	if d := time.Duration(c.TokenLifetime); d < time.Minute || d > 366*24*time.Hour {
		return fmt.Errorf("config: token lifetime %s is outside 1m..366 days", d)
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("config: shutdownTimeout must be positive")
	}
	if c.DataDir == "" {
		return errors.New("config: no data dir")
	}
	if c.Issuer != "" {
		if err := checkIssuer(c.Issuer); err != nil {
			return err
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("config: log format %q: want text or json", c.LogFormat)
	}
	switch c.AttestAuth {
	case "none":
	case "required":
		if c.AdminTokenFile == "" && c.OIDCIssuer == "" {
			return errors.New("config: --attest-auth=required needs --admin-token-file or --oidc-issuer")
		}
	default:
		return fmt.Errorf("config: attest auth %q: want none or required", c.AttestAuth)
	}
	if c.OIDCIssuer != "" {
		if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("config: oidc issuer %q must be an http(s) URL", c.OIDCIssuer)
		}
		if c.OIDCAudience == "" {
			return errors.New("config: --oidc-issuer needs --oidc-audience")
		}
	}
	if len(c.PolicySignerCerts) > 0 && !c.Isolated {
		return errors.New("config: --policy-signer-cert is for --isolated tenants")
	}
	return nil
}

func checkIssuer(s string) error {
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return fmt.Errorf("config: issuer %q must be an http(s) URL", s)
	}
	if strings.HasSuffix(s, "/") {
		return fmt.Errorf("config: issuer %q must not end in a slash (jku is <issuer>/certs, byte for byte)", s)
	}
	if strings.ContainsAny(s, "?#") {
		return fmt.Errorf("config: issuer %q must not have a query or fragment", s)
	}
	return nil
}

// issuerFor derives the public URL when none is configured. Only a
// loopback listener can guess it (localhost); on any other address the
// URL clients use is unknowable here, and a wrong guess would put a wrong
// iss in every token and a wrong CN in the signing certificate.
func issuerFor(cfg Config, addr net.Addr) (string, error) {
	if cfg.Issuer != "" {
		return cfg.Issuer, nil
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("config: listening on %s, which is not loopback: set --issuer to the public URL clients use (e.g. https://attest.example.com)", addr)
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort("localhost", port), nil
}

func parseCertCN(der []byte) (string, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	return c.Subject.CommonName, nil
}
