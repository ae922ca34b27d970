package certs

import (
	"crypto/x509"

	"github.com/prometheus/client_golang/prometheus"
)

// ExpiryMetric is the name of the gauge RegisterExpiry registers.
const ExpiryMetric = "causeway_certs_expiry_timestamp_seconds"

// RegisterExpiry registers on reg the gauge
// causeway_certs_expiry_timestamp_seconds{component} whose value is the
// NotAfter (Unix seconds) of the certificate src serves now, so an alert
// can fire well before a component that cannot renew loses its identity.
// It reads src at every scrape; a source without a certificate reports 0.
func RegisterExpiry(reg prometheus.Registerer, component string, src Source) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        ExpiryMetric,
		Help:        "When the component's current certificate expires (Unix seconds); it renews at 2/3 of the lifetime.",
		ConstLabels: prometheus.Labels{"component": component},
	}, func() float64 {
		c, err := src.Certificate()
		if err != nil || c == nil || len(c.Certificate) == 0 {
			return 0
		}
		leaf := c.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return 0
			}
		}
		return float64(leaf.NotAfter.Unix())
	})
	return reg.Register(g)
}
