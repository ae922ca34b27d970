package devenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// State tells users and tests where everything listens. It is the JSON of
// --state-file.
type State struct {
	// Etcd is the embedded etcd's host:port. It serves TLS only, with auth
	// on: see ClustersetAdmin.
	Etcd   string `json:"etcd"`
	Domain string `json:"domain"`
	// ClustersetAdmin are the clusterset admin's etcd credentials; the
	// causeway CLI uses them for writes about another cluster than the
	// asked federator's (drain, undrain, clusters remove) and `etcd` verbs.
	ClustersetAdmin *EtcdCredentials `json:"clustersetAdmin,omitempty"`
	Clusters        []ClusterState   `json:"clusters"`
	Services        []ServiceState   `json:"services"`
	// RoutesFile is the static routes file every gateway loads (--routes),
	// if any.
	RoutesFile string `json:"routesFile,omitempty"`
	// File is where the state is written; not part of the JSON.
	File string `json:"-"`
}

// EtcdCredentials are what a client needs to reach the dev etcd as one
// user (the etcd.* fields of a component configuration).
type EtcdCredentials struct {
	Endpoints []string `json:"endpoints"`
	// CAFile verifies etcd; ServerName is the name its certificate is
	// verified against (it names no relay or tunnel address).
	CAFile     string `json:"caFile"`
	ServerName string `json:"serverName"`
	// Username and PasswordFile (0600, in the data dir) authenticate.
	Username     string `json:"username"`
	PasswordFile string `json:"passwordFile"`
}

// ClusterState describes one dev cluster.
type ClusterState struct {
	Name    string `json:"name"`
	Region  string `json:"region"`
	Zone    string `json:"zone"`
	DNS     string `json:"dns"`
	Gateway string `json:"gateway"`
	// Federator is the federator API: the federator's gRPC address (the
	// causeway CLI's --federator).
	Federator string `json:"federator"`
	// HTTP is the gateway's HTTP endpoint: /metrics, /healthz, /readyz and
	// /explain (explain's --gateway-http). FederatorHTTP and DNSHTTP are
	// the federator's and DNS shim's (/metrics, /healthz, /readyz).
	HTTP          string `json:"http"`
	FederatorHTTP string `json:"federatorHTTP"`
	DNSHTTP       string `json:"dnsHTTP"`
	// Dir holds the cluster's files: its CA directory (ca/), the
	// components' configuration files (federator.yaml, gateway.yaml,
	// dnsshim.yaml), static exports, join tokens and admin credentials.
	Dir string `json:"dir"`
	// AdminCert, AdminKey and CAFile are the PEM files of the cluster's
	// admin identity and CA (--cert, --key, --ca).
	AdminCert string `json:"adminCert"`
	AdminKey  string `json:"adminKey"`
	CAFile    string `json:"caFile"`
	// EtcdUser and EtcdPasswordFile are the cluster federator's own etcd
	// user (it writes only the cluster's keys) and its password file.
	EtcdUser         string `json:"etcdUser"`
	EtcdPasswordFile string `json:"etcdPasswordFile"`
	// VIPs maps "namespace/name" to this cluster's clusterset IP.
	VIPs map[string]string `json:"vips"`
}

// ServiceState describes one demo service.
type ServiceState struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Port is the L4 port (the first of Ports).
	Port int `json:"port"`
	// Ports are every port of the service: "tcp" (L4) and "http"
	// (appProtocol http, served at L7).
	Ports      []PortState `json:"ports"`
	ExportedBy []string    `json:"exportedBy"`
	// Backends maps an exporting cluster to its backend's ip:port.
	Backends map[string]string `json:"backends"`
}

// PortState is one port of a demo service.
type PortState struct {
	Name string `json:"name"`
	Port int    `json:"port"`
	// AppProtocol "http" means the port is served at L7: each request is
	// balanced and routed on its own. Empty: L4.
	AppProtocol string `json:"appProtocol,omitempty"`
}

// L7Port returns the service's first port served at L7, or 0.
func (s ServiceState) L7Port() int {
	for _, p := range s.Ports {
		if p.AppProtocol != "" {
			return p.Port
		}
	}
	return 0
}

// checkWritable fails early, with the path in the message, when path's
// directory cannot take a file.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".causeway-state-*")
	if err != nil {
		return fmt.Errorf("state file %s is not writable: %w", path, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// writeState writes s to path atomically (temp file + rename).
func writeState(path string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".causeway-state-*")
	if err != nil {
		return fmt.Errorf("write state file %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write state file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write state file %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write state file %s: %w", path, err)
	}
	return nil
}
