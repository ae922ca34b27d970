package federator

import (
	"errors"
	"fmt"
	"github.com/causeway-mesh/causeway/internal/names"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Federator.
type Config struct {
	// Cluster is this cluster's name, a DNS label. Required.
	Cluster string
	// Region and Zone locate the cluster for locality routing.
	Region, Zone string
	// VIPRanges are the CIDRs clusterset IPs are allocated from. Required.
	VIPRanges []netip.Prefix
	// TrustDomain is the cluster's SPIFFE trust domain. Required.
	TrustDomain string
	// Authorities are the cluster's CA certificates (DER), published as its
	// trust bundle. Required.
	Authorities [][]byte
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; if nil, metrics are not registered.
	Registerer prometheus.Registerer
}

// Validate reports the first problem of c.
func (c *Config) Validate() error {
	switch {
	case !names.IsDNSLabel(c.Cluster):
		return fmt.Errorf("federator config: cluster name %q is not a DNS label", c.Cluster)
	case len(c.VIPRanges) == 0:
		return errors.New("federator config: no VIP range")
	case c.TrustDomain == "":
		return errors.New("federator config: no trust domain")
	case len(c.Authorities) == 0:
		return errors.New("federator config: no CA certificates for the trust bundle")
	}
	return nil
}
