package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/certs"
)

// Environment variables read when the matching flag is not given.
const (
	EnvFederator = "CAUSEWAY_FEDERATOR"
	EnvCert      = "CAUSEWAY_CERT"
	EnvKey       = "CAUSEWAY_KEY"
	EnvCA        = "CAUSEWAY_CA"
	EnvStateFile = "CAUSEWAY_STATE_FILE"
	// EnvAdmin is the deprecated name of EnvFederator, still read when
	// EnvFederator is unset.
	EnvAdmin = "CAUSEWAY_ADMIN"
)

// DefaultTimeout bounds connecting plus one call when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// DefaultFederatorPort is the port of a federator API address given
// without one.
const DefaultFederatorPort = "7443"

// Options says how to reach a federator API, as given on the command line.
// Empty fields fall back to the environment, then to the state file.
type Options struct {
	// Federator is the federator API's host:port (the federator's gRPC
	// port, 7443 by default). A bare host gets DefaultFederatorPort.
	Federator string
	// Cert, Key and CA are PEM files: the admin client certificate, its
	// private key, and the cluster's CA certificate(s).
	Cert, Key, CA string
	// StateFile is the JSON state file of a running `causeway dev`.
	StateFile string
	// Cluster picks the state file's cluster. If empty, the first. Without
	// a state file it is an error, unless ClusterIsTarget.
	Cluster string
	// ClusterIsTarget says that Cluster also names what the verb asks
	// about (imports), so it is valid without a state file.
	ClusterIsTarget bool
	// Timeout bounds connecting plus each call. If zero, DefaultTimeout.
	Timeout time.Duration
}

// Target is a resolved federator API address and the credentials for it.
type Target struct {
	Addr, Cert, Key, CA string
	Timeout             time.Duration
	// Deprecated lists the deprecated names the values came from, with
	// the name to use instead, for a notice on stderr.
	Deprecated []string
}

// ErrClusterWithoutState is returned by Resolve for --cluster without a state file.
var ErrClusterWithoutState = errors.New("--cluster needs a state file (--state-file or " + EnvStateFile +
	"); with --federator/--cert/--key/--ca the cluster is the one you connect to")

// Resolve fills every field: flag first, then its environment variable
// (read with getenv), then the state file's cluster entry. An explicit
// Cluster makes the state file's entry beat the environment (never a flag),
// so the answer comes from the cluster asked for.
func (o Options) Resolve(getenv func(string) string) (Target, error) {
	t := Target{Timeout: o.Timeout}
	if t.Timeout == 0 {
		t.Timeout = DefaultTimeout
	}
	if t.Timeout < 0 {
		return Target{}, fmt.Errorf("--timeout %s is negative", t.Timeout)
	}
	stateFile := o.StateFile
	if stateFile == "" {
		stateFile = getenv(EnvStateFile)
	}
	if o.Cluster != "" && stateFile == "" && !o.ClusterIsTarget {
		return Target{}, ErrClusterWithoutState
	}
	// Values from flags, then from the environment unless --cluster picks
	// a state file entry.
	t.Addr, t.Cert, t.Key, t.CA = o.Federator, o.Cert, o.Key, o.CA
	useEnv := o.Cluster == "" || stateFile == ""
	if useEnv {
		env := func(dst *string, name string) {
			if *dst == "" {
				*dst = getenv(name)
			}
		}
		env(&t.Addr, EnvFederator)
		if t.Addr == "" {
			if t.Addr = getenv(EnvAdmin); t.Addr != "" {
				t.Deprecated = append(t.Deprecated, EnvAdmin+" is deprecated, use "+EnvFederator)
			}
		}
		env(&t.Cert, EnvCert)
		env(&t.Key, EnvKey)
		env(&t.CA, EnvCA)
	}
	if stateFile != "" && (t.Addr == "" || t.Cert == "" || t.Key == "" || t.CA == "") {
		c, err := readStateCluster(stateFile, o.Cluster)
		if err != nil {
			return Target{}, err
		}
		for _, f := range []struct {
			dst *string
			src string
		}{
			{&t.Addr, c.federator()}, {&t.Cert, c.AdminCert}, {&t.Key, c.AdminKey}, {&t.CA, c.CAFile},
		} {
			if *f.dst == "" {
				*f.dst = f.src
			}
		}
	}
	switch {
	case t.Addr == "":
		return Target{}, fmt.Errorf("no federator API address: give --federator (or %s), or --state-file (or %s) of a running causeway dev",
			EnvFederator, EnvStateFile)
	case t.Cert == "":
		return Target{}, fmt.Errorf("no admin client certificate: give --cert (or %s)", EnvCert)
	case t.Key == "":
		return Target{}, fmt.Errorf("no admin client key: give --key (or %s)", EnvKey)
	case t.CA == "":
		return Target{}, fmt.Errorf("no CA certificate of the cluster: give --ca (or %s)", EnvCA)
	}
	addr, err := FederatorAddr(t.Addr)
	if err != nil {
		return Target{}, err
	}
	t.Addr = addr
	return t, nil
}

// FederatorAddr checks a federator API address and gives a bare host the
// default port 7443.
func FederatorAddr(s string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("federator API address %q: %s; want host:port, like 10.0.0.5:%s", s, why, DefaultFederatorPort)
	}
	if strings.Contains(s, "://") {
		return "", bad("no URL scheme")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// A bare host name or IP (an IPv6 address only in brackets or alone).
		h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		if h == "" || strings.ContainsAny(h, "/ ") || (strings.Contains(h, ":") && net.ParseIP(h) == nil) {
			return "", bad("not a host or host:port")
		}
		return net.JoinHostPort(h, DefaultFederatorPort), nil
	}
	if host == "" {
		return "", bad("no host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", bad("port " + strconv.Quote(port) + " is not a number in 1-65535")
	}
	return s, nil
}

// notTLSHint is appended to a handshake error when the address answered
// with something that is not TLS, typically the HTTP endpoint (:9090).
func notTLSHint(addr, msg string) string {
	if !strings.Contains(msg, "first record does not look like a TLS handshake") {
		return msg
	}
	return msg + "; is " + addr + " the HTTP endpoint? the federator API listens on :" + DefaultFederatorPort + " by default"
}

// stateCluster is what the CLI reads of a cluster in the `causeway dev`
// state file (devenv.ClusterState). AdminAPI is the key older state files
// used for the federator API; it is read when Federator is empty.
type stateCluster struct {
	Name      string `json:"name"`
	Federator string `json:"federator"`
	AdminAPI  string `json:"adminAPI,omitempty"`
	AdminCert string `json:"adminCert"`
	AdminKey  string `json:"adminKey"`
	CAFile    string `json:"caFile"`
	// HTTP is the gateway's HTTP endpoint (explain); Admin the key older
	// state files used for it.
	HTTP  string `json:"http,omitempty"`
	Admin string `json:"admin,omitempty"`
}

func (c stateCluster) federator() string {
	if c.Federator != "" {
		return c.Federator
	}
	return c.AdminAPI
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

// Cluster is the cluster whose admin the target's certificate names: the
// first label of its trust domain (<cluster>.<domain>).
func (t Target) Cluster() (string, error) {
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return "", fmt.Errorf("load admin certificate %s and key %s: %w", t.Cert, t.Key, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return "", fmt.Errorf("load admin certificate %s: %w", t.Cert, err)
	}
	id, err := certs.IDFromCertificate(leaf)
	if err != nil {
		return "", fmt.Errorf("load admin certificate %s: %w", t.Cert, err)
	}
	cluster, _, _ := strings.Cut(id.TrustDomain, ".")
	return cluster, nil
}
