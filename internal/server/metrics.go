package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attestd/attestd/internal/service"
)

// Metrics are the server's Prometheus collectors, on a registry of its own
// (no global state: two servers in one process do not share counters).
type Metrics struct {
	registry     *prometheus.Registry
	attestations *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	requests     *prometheus.CounterVec
	policy       *prometheus.CounterVec
	signings     *prometheus.CounterVec
	// authFailures counts refused credentials by reason.
	authFailures *prometheus.CounterVec
	// policyChanges counts accepted policy and certificate changes.
	policyChanges *prometheus.CounterVec
}

// NewMetrics builds the collectors on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_attestations_total",
			Help: "Attestation requests by attestation type and result (ok, or the refusal reason).",
		}, []string{"type", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attestd_attestation_duration_seconds",
			Help:    "Time to answer an attestation request, by attestation type and outcome (ok, rejected, error).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"type", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		policy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_policy_decisions_total",
			Help: "Policy decisions by attestation type and decision (permit, deny).",
		}, []string{"type", "decision"}),
		signings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_token_signings_total",
			Help: "Tokens minted, by kind (attestation, unsecured, management).",
		}, []string{"kind"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_auth_failures_total",
			Help: "Refused bearer credentials on management (and, if required, attest) calls, by reason.",
		}, []string{"reason"}),
		policyChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_policy_changes_total",
			Help: "Accepted policy changes by attestation type and operation (set, reset), and certificate changes (add, remove).",
		}, []string{"type", "operation"}),
	}
	m.registry.MustRegister(m.attestations, m.latency, m.requests, m.policy, m.signings, m.authFailures, m.policyChanges,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *Metrics) observeAttestation(t service.AttestationType, result, outcome string, d time.Duration) {
	m.attestations.WithLabelValues(string(t), result).Inc()
	m.latency.WithLabelValues(string(t), outcome).Observe(d.Seconds())
}

// PolicyDecision implements service.Observer.
func (m *Metrics) PolicyDecision(t service.AttestationType, permit bool) {
	d := "deny"
	if permit {
		d = "permit"
	}
	m.policy.WithLabelValues(string(t), d).Inc()
}

// TokenSigned implements service.Observer.
func (m *Metrics) TokenSigned(kind string) { m.signings.WithLabelValues(kind).Inc() }
