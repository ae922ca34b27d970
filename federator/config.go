package federator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/lib/names"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Federator.
type Config struct {
	// Cluster is this cluster's name, a DNS label. Required.
	Cluster string
	// Region and Zone locate the cluster for locality routing.
	Region, Zone string
	// VIPRanges are the CIDRs clusterset IPs are allocated from, in order:
	// the next range once one is full. Required unless Sink is set.
	VIPRanges []netip.Prefix
	// TrustDomain is the cluster's SPIFFE trust domain. Required.
	TrustDomain string
	// Authorities are the cluster's CA certificates (DER), published as its
	// trust bundle. Required unless CAs is set.
	Authorities [][]byte
	// CAs, when set, is the cluster's CA set (certs.LoadCASet, kept current
	// by a certs.CADirWatcher): its authorities are published as the trust
	// bundle instead of Authorities, and republished whenever it changes
	// (each step of `causeway certs rotate-ca`).
	CAs *certs.CASet
	// TrustPins pins peer clusters' first trust bundle out of band: peer
	// cluster name to the SHA-256 fingerprint of one of its CA
	// certificates ("sha256:<hex>", printed by `causeway join`). A peer
	// publishing a bundle is trusted once a pin (or the operator's
	// TrustCluster) vouches for it; later bundles only through its signed
	// chain. Pins matter only while nothing is trusted for the peer yet.
	// If nil, peers are trusted only through TrustCluster.
	TrustPins map[string]string
	// Logger; if nil, slog.Default(). The caller names the cluster in it
	// (the wiring adds the "cluster" attribute once per process).
	Logger *slog.Logger
	// Registerer for metrics; if nil, metrics are not registered.
	Registerer prometheus.Registerer

	// Instance names this replica in the leader election; default
	// hostname-pid.
	Instance string
	// LeaderTTL is the lease of the leader election: a killed leader is
	// replaced within it. Default 10s; whole seconds, at least 2s.
	LeaderTTL time.Duration
	// Sink, when set, writes this cluster's imports into the cluster
	// (Kubernetes: ServiceImport, derived Service, EndpointSlices) and
	// supplies their addresses; clusterset IPs are then not allocated
	// from VIPRanges.
	Sink ImportSink
	// EgressPorts, when set, is the range of gateway ports given to
	// imported service ports (Kubernetes: where the derived Service's
	// EndpointSlices point). Zero: no egress ports (dev: the gateway listens
	// on the clusterset IPs).
	EgressPorts PortRange
	// HealInterval is how often the leader checks, besides watching them,
	// that etcd still holds this cluster's own records (cluster record,
	// trust bundle, exports, imports) as it wrote them, and puts back any
	// that were deleted, corrupted or changed. If zero, 10s.
	HealInterval time.Duration
}

// PortRange is an inclusive range of ports.
type PortRange struct{ Min, Max uint16 }

// IsZero reports whether r is unset.
func (r PortRange) IsZero() bool { return r.Min == 0 && r.Max == 0 }

// ImportSink writes a cluster's imports into the cluster itself.
type ImportSink interface {
	// Run keeps the cluster's objects equal to the imports of this
	// cluster in every view feed publishes, until ctx ends. It calls kick
	// when an address it supplies changed.
	Run(ctx context.Context, feed *catalog.Feed, kick func()) error
	// Addresses returns the addresses the cluster gave the import of k
	// (the derived Service's ClusterIP), nil when it has none yet.
	Addresses(k catalog.ServiceKey) []string
}

func (c *Config) leaderTTL() time.Duration {
	if c.LeaderTTL == 0 {
		return 10 * time.Second
	}
	return c.LeaderTTL
}

func (c *Config) healInterval() time.Duration {
	if c.HealInterval <= 0 {
		return 10 * time.Second
	}
	return c.HealInterval
}

func (c *Config) instance() string {
	if c.Instance != "" {
		return c.Instance
	}
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// Validate reports the first problem of c.
func (c *Config) Validate() error {
	switch {
	case !names.IsDNSLabel(c.Cluster):
		return fmt.Errorf("federator config: cluster name %q is not a DNS label", c.Cluster)
	case len(c.VIPRanges) == 0 && c.Sink == nil:
		return errors.New("federator config: no VIP range (required without an import sink)")
	case c.TrustDomain == "":
		return errors.New("federator config: no trust domain")
	case len(c.Authorities) == 0 && c.CAs == nil:
		return errors.New("federator config: no CA certificates for the trust bundle")
	case c.TrustPins != nil && !validPins(c.TrustPins):
		return fmt.Errorf("federator config: trust pins: %w", pinsError(c.TrustPins))
	case c.LeaderTTL != 0 && (c.LeaderTTL < 2*time.Second || c.LeaderTTL%time.Second != 0):
		return fmt.Errorf("federator config: leader TTL %s: want whole seconds, at least 2s", c.LeaderTTL)
	case !c.EgressPorts.IsZero() && (c.EgressPorts.Min == 0 || c.EgressPorts.Min > c.EgressPorts.Max):
		return fmt.Errorf("federator config: egress port range %d-%d is empty", c.EgressPorts.Min, c.EgressPorts.Max)
	}
	return nil
}

func validPins(pins map[string]string) bool { return pinsError(pins) == nil }

// pinsError reports the first malformed pin.
func pinsError(pins map[string]string) error {
	for cluster, fp := range pins {
		if !names.IsDNSLabel(cluster) {
			return fmt.Errorf("cluster name %q is not a DNS label", cluster)
		}
		if _, err := certs.ParseFingerprint(fp); err != nil {
			return fmt.Errorf("cluster %s: %w", cluster, err)
		}
	}
	return nil
}
