package join

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/internal/lib/names"
)

// Defaults of Options.
const (
	DefaultDomain     = "clusterset.local"
	DefaultNamespace  = "causeway"
	DefaultCASecret   = "causeway-ca"
	DefaultEtcdSecret = "causeway-etcd"
	// DefaultDialTimeout bounds reaching etcd and each etcd request.
	DefaultDialTimeout = 5 * time.Second
)

// Options are the flags of `causeway join`.
type Options struct {
	// Cluster is the new cluster's name, a DNS label. Required.
	Cluster string
	// Domain is the clusterset domain. If empty, DefaultDomain.
	Domain string
	// Region and Zone locate the cluster for locality routing.
	Region, Zone string
	// Etcd is how to reach the federation etcd as the clusterset admin
	// (join creates the cluster's own etcd user; only the CA and server
	// name go into the federator's configuration).
	Etcd EtcdOptions
	// Out is the directory the CA directory (Out/ca), the values file and
	// the Secret manifests are written to. Required.
	Out string
	// Namespace the chart is installed in (the Secrets' namespace). If
	// empty, DefaultNamespace.
	Namespace string
	// CASecret and EtcdSecret name the Secrets. If empty, DefaultCASecret
	// and DefaultEtcdSecret.
	CASecret, EtcdSecret string
	// Advertise are the gateway addresses (host:port) peers dial; written
	// to the values file. Optional: the values file then says to set them.
	Advertise []string
	// CALifetime of the new CA. If zero, certs.DefaultCALifetime.
	CALifetime time.Duration
	// Force replaces existing files and an existing registration.
	Force bool
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// EtcdOptions are the federation etcd's endpoints and credentials.
type EtcdOptions struct {
	// Endpoints of the etcd members. Required.
	Endpoints []string
	// CAFile verifies etcd's certificate; CertFile and KeyFile are a client
	// certificate; ServerName is the name etcd's certificate is verified
	// against (if empty, the endpoint's host). All optional.
	CAFile, CertFile, KeyFile, ServerName string
	// Username and PasswordFile authenticate to etcd. Optional.
	Username, PasswordFile string
	// DialTimeout bounds connecting and each request (a read, the
	// registration): an etcd that does not answer within it fails the
	// join with ErrEtcdUnreachable. If zero, DefaultDialTimeout.
	DialTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.CASecret == "" {
		o.CASecret = DefaultCASecret
	}
	if o.EtcdSecret == "" {
		o.EtcdSecret = DefaultEtcdSecret
	}
	if o.Etcd.DialTimeout == 0 {
		o.Etcd.DialTimeout = DefaultDialTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate checks o, with its defaults applied.
func (o *Options) Validate() error {
	switch {
	case !names.IsDNSLabel(o.Cluster):
		return fmt.Errorf("--cluster %q: want a DNS label", o.Cluster)
	case o.Out == "":
		return errors.New("--out is required")
	case len(o.Etcd.Endpoints) == 0:
		return errors.New("--etcd: at least one endpoint is required")
	case !names.IsDNSLabel(o.Namespace):
		return fmt.Errorf("--namespace %q: want a DNS label", o.Namespace)
	case (o.Etcd.CertFile == "") != (o.Etcd.KeyFile == ""):
		return errors.New("--etcd-cert and --etcd-key go together")
	case (o.Etcd.Username == "") != (o.Etcd.PasswordFile == ""):
		return errors.New("--etcd-username and --etcd-password-file go together")
	case o.Etcd.DialTimeout < 0:
		return errors.New("--etcd-dial-timeout must be positive")
	case o.CALifetime < 0:
		return errors.New("--ca-lifetime must be positive")
	}
	for _, s := range []string{o.CASecret, o.EtcdSecret} {
		if !names.IsDNSLabel(s) {
			return fmt.Errorf("secret name %q: want a DNS label", s)
		}
	}
	for _, a := range o.Advertise {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" || strings.ContainsAny(a, " \t") {
			return fmt.Errorf("--advertise %q: want host:port", a)
		}
	}
	return nil
}
