package certsctl

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/lib/names"
)

// DefaultDomain is the clusterset domain when none is given.
const DefaultDomain = "clusterset.local"

// InitOptions are the flags of `causeway certs init`.
type InitOptions struct {
	// Cluster names the cluster, a DNS label. Required.
	Cluster string
	// Domain is the clusterset domain. If empty, DefaultDomain.
	Domain string
	// Out is the CA directory. If empty, "./<cluster>-ca".
	Out string
	// Force replaces an existing CA (and abandons a rotation in progress).
	Force bool
	// Lifetime of the CA. If zero, certs.DefaultCALifetime.
	Lifetime time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// InitResult is the answer of `causeway certs init`.
type InitResult struct {
	Cluster     string   `json:"cluster"`
	TrustDomain string   `json:"trustDomain"`
	CACert      string   `json:"caCert"`
	CAKey       string   `json:"caKey"`
	Bundle      string   `json:"bundle"`
	CA          CertInfo `json:"ca"`
}

// Init creates a cluster's CA directory with certs.InitCADir.
func Init(o InitOptions) (*InitResult, error) {
	if !names.IsDNSLabel(o.Cluster) {
		return nil, fmt.Errorf("--cluster %q: want a DNS label", o.Cluster)
	}
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.Out == "" {
		o.Out = o.Cluster + "-ca"
	}
	if o.Lifetime == 0 {
		o.Lifetime = certs.DefaultCALifetime
	}
	if o.Lifetime < 0 {
		return nil, errors.New("--lifetime must be positive")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	dir, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	td := certs.TrustDomainFor(o.Cluster, o.Domain)
	ca, err := certs.InitCADir(dir, td, o.Lifetime, now(), o.Force)
	if err != nil {
		return nil, err
	}
	return &InitResult{
		Cluster: o.Cluster, TrustDomain: td,
		CACert: filepath.Join(dir, certs.CACertFile), CAKey: filepath.Join(dir, certs.CAKeyFile),
		Bundle: filepath.Join(dir, certs.BundleFile), CA: newCertInfo(ca.Cert, now()),
	}, nil
}

// WriteTable implements cli.Tabular.
func (r *InitResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "created the CA of cluster %s, trust domain %s\n", r.Cluster, r.TrustDomain)
	fmt.Fprintf(w, "  certificate: %s\n  private key: %s (0600: keep it secret, back it up)\n  trust bundle: %s\n",
		r.CACert, r.CAKey, r.Bundle)
	writeCert(w, "  ", r.CA)
	_, err := fmt.Fprintf(w, "give the directory to the cluster's federator; rotate the CA before it expires with\n"+
		"  causeway certs rotate-ca --cluster %s --dir %s\n", r.Cluster, filepath.Dir(r.CACert))
	return err
}
