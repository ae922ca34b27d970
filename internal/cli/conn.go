package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/certs"
)

// Environment variables read when the matching flag is not given.
const (
	EnvAdmin     = "CAUSEWAY_ADMIN"
	EnvCert      = "CAUSEWAY_CERT"
	EnvKey       = "CAUSEWAY_KEY"
	EnvCA        = "CAUSEWAY_CA"
	EnvStateFile = "CAUSEWAY_STATE_FILE"
)

// DefaultTimeout bounds connecting plus one call when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Options says how to reach an admin API, as given on the command line.
// Empty fields fall back to the environment, then to the state file.
type Options struct {
	// Admin is the federator's gRPC host:port.
	Admin string
	// Cert, Key and CA are PEM files: the admin client certificate, its
	// private key, and the cluster's CA certificate(s).
	Cert, Key, CA string
	// StateFile is the JSON state file of a running `causeway dev`.
	StateFile string
	// Cluster picks the state file's cluster. If empty, the first.
	Cluster string
	// Timeout bounds connecting plus each call. If zero, DefaultTimeout.
	Timeout time.Duration
}

// Target is a resolved admin API address and the credentials for it.
type Target struct {
	Addr, Cert, Key, CA string
	Timeout             time.Duration
}

// Resolve fills every field: flag first, then its environment variable
// (read with getenv), then the state file's cluster entry.
func (o Options) Resolve(getenv func(string) string) (Target, error) {
	pick := func(flag, env string) string {
		if flag != "" {
			return flag
		}
		return getenv(env)
	}
	t := Target{Addr: pick(o.Admin, EnvAdmin), Cert: pick(o.Cert, EnvCert), Key: pick(o.Key, EnvKey), CA: pick(o.CA, EnvCA),
		Timeout: o.Timeout}
	if t.Timeout == 0 {
		t.Timeout = DefaultTimeout
	}
	if t.Timeout < 0 {
		return Target{}, fmt.Errorf("--timeout %s is negative", t.Timeout)
	}
	if path := pick(o.StateFile, EnvStateFile); path != "" && (t.Addr == "" || t.Cert == "" || t.Key == "" || t.CA == "") {
		c, err := readStateCluster(path, o.Cluster)
		if err != nil {
			return Target{}, err
		}
		for _, f := range []struct {
			dst *string
			src string
		}{
			{&t.Addr, c.AdminAPI}, {&t.Cert, c.AdminCert}, {&t.Key, c.AdminKey}, {&t.CA, c.CAFile},
		} {
			if *f.dst == "" {
				*f.dst = f.src
			}
		}
	}
	switch {
	case t.Addr == "":
		return Target{}, fmt.Errorf("no admin API address: give --admin (or %s), or --state-file (or %s) of a running causeway dev",
			EnvAdmin, EnvStateFile)
	case t.Cert == "":
		return Target{}, fmt.Errorf("no admin client certificate: give --cert (or %s)", EnvCert)
	case t.Key == "":
		return Target{}, fmt.Errorf("no admin client key: give --key (or %s)", EnvKey)
	case t.CA == "":
		return Target{}, fmt.Errorf("no CA certificate of the cluster: give --ca (or %s)", EnvCA)
	}
	return t, nil
}

// stateCluster is what the CLI reads of a cluster in the `causeway dev`
// state file (devenv.ClusterState).
type stateCluster struct {
	Name      string `json:"name"`
	AdminAPI  string `json:"adminAPI"`
	AdminCert string `json:"adminCert"`
	AdminKey  string `json:"adminKey"`
	CAFile    string `json:"caFile"`
}

// readStateCluster returns the named cluster of a state file, or its first.
func readStateCluster(path, cluster string) (stateCluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return stateCluster{}, fmt.Errorf("read state file: %w", err)
	}
	var st struct {
		Clusters []stateCluster `json:"clusters"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return stateCluster{}, fmt.Errorf("read state file %s: %w", path, err)
	}
	if len(st.Clusters) == 0 {
		return stateCluster{}, fmt.Errorf("state file %s lists no cluster", path)
	}
	if cluster == "" {
		return st.Clusters[0], nil
	}
	known := make([]string, 0, len(st.Clusters))
	for _, c := range st.Clusters {
		if c.Name == cluster {
			return c, nil
		}
		known = append(known, c.Name)
	}
	return stateCluster{}, fmt.Errorf("cluster %q is not in state file %s (it has %s)", cluster, path, strings.Join(known, ", "))
}

// clientTLS loads the target's credentials into a TLS configuration that
// presents the admin certificate and accepts only the federator of the CA
// file's trust domain.
func clientTLS(t Target) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("load admin certificate %s and key %s: %w", t.Cert, t.Key, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("load admin certificate %s: %w", t.Cert, err)
	}
	id, err := certs.IDFromCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("load admin certificate %s: %w", t.Cert, err)
	}
	cas, td, err := loadCAs(t.CA)
	if err != nil {
		return nil, err
	}
	if id.TrustDomain != td {
		return nil, fmt.Errorf("admin certificate %s is of trust domain %s, CA file %s of %s", t.Cert, id.TrustDomain, t.CA, td)
	}
	fedID, err := certs.NewID(td, "federator")
	if err != nil {
		return nil, err
	}
	bundles := certs.NewBundleSet()
	bundles.Set(td, cas)
	return certs.ClientConfig(certs.TLSOptions{
		Source: certs.NewStaticSource(&pair), Bundles: bundles, Authorize: certs.AuthorizeID(fedID), NextProtos: []string{"h2"},
	}), nil
}

// loadCAs reads the PEM CA certificates of one trust domain from path.
func loadCAs(path string) ([]*x509.Certificate, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read CA file: %w", err)
	}
	var der [][]byte
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			der = append(der, blk.Bytes)
		}
	}
	if len(der) == 0 {
		return nil, "", fmt.Errorf("read CA file %s: no PEM certificate", path)
	}
	cas, err := certs.ParseAuthorities(der)
	if err != nil {
		return nil, "", fmt.Errorf("read CA file %s: %w", path, err)
	}
	td := ""
	for _, c := range cas {
		ctd, err := caTrustDomain(c)
		if err != nil {
			return nil, "", fmt.Errorf("read CA file %s: %w", path, err)
		}
		if td != "" && ctd != td {
			return nil, "", fmt.Errorf("read CA file %s: CAs of two trust domains, %s and %s", path, td, ctd)
		}
		td = ctd
	}
	return cas, td, nil
}

// caTrustDomain returns the trust domain named by a CA's "spiffe://<td>" URI SAN.
func caTrustDomain(c *x509.Certificate) (string, error) {
	if len(c.URIs) != 1 || c.URIs[0] == nil || c.URIs[0].Scheme != "spiffe" || c.URIs[0].Host == "" ||
		(c.URIs[0].Path != "" && c.URIs[0].Path != "/") {
		return "", errors.New("CA certificate does not name a SPIFFE trust domain")
	}
	return c.URIs[0].Host, nil
}
