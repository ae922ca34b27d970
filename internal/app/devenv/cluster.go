package devenv

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/internal/app/component"
	"sigs.k8s.io/yaml"
)

// devCALifetime is the lifetime of each dev cluster's CA, made afresh by
// every run.
const devCALifetime = 24 * time.Hour

// cluster is one dev cluster: its addresses, CA directory and the
// listeners its components are started on.
type cluster struct {
	spec ClusterSpec
	idx  int
	ip   netip.Addr
	td   string
	dir  string // its directory of the data dir: CA, configs, tokens, admin credentials
	ca   *certs.CA
	// pins are the other clusters' CA fingerprints: dev trusts its own
	// clusters' bundles itself (the operator step of a real deployment).
	pins map[string]string

	fed      component.FederatorListeners
	gw       component.GatewayListeners
	dns      component.DNSShimListeners
	backends map[string]net.Listener // by service name
	admin    adminCreds              // the CLI's credentials for the federator's Admin API
}

// HTTP ports of a cluster's components, from --http-port: the same order
// as a deployment's defaults (9090, 9091, 9092).
func federatorHTTPPort(cfg Config) int { return cfg.AdminPort }
func gatewayHTTPPort(cfg Config) int   { return cfg.AdminPort + 1 }
func dnsHTTPPort(cfg Config) int       { return cfg.AdminPort + 2 }

// listen binds every listener of the cluster, so that an address in use is
// reported before anything starts.
func (c *cluster) listen(cfg Config, svcs []demoService) (err error) {
	ip := c.ip.String()
	addr := func(port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	tcp := func(port int, what string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr(port))
		if err != nil {
			return nil, bindError(addr(port), what, err)
		}
		return ln, nil
	}
	if c.dns.UDP, err = net.ListenPacket("udp", addr(cfg.DNSPort)); err != nil {
		return bindError(addr(cfg.DNSPort), "DNS (udp)", err)
	}
	if c.dns.TCP, err = tcp(cfg.DNSPort, "DNS (tcp)"); err != nil {
		return err
	}
	if c.dns.HTTP, err = tcp(dnsHTTPPort(cfg), "DNS shim HTTP (metrics, health)"); err != nil {
		return err
	}
	udpAddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.ip, uint16(cfg.GatewayPort)))
	if c.gw.QUIC, err = net.ListenUDP("udp", udpAddr); err != nil {
		return bindError(udpAddr.String(), "gateway (udp)", err)
	}
	if c.gw.HTTP, err = tcp(gatewayHTTPPort(cfg), "gateway HTTP (metrics, health, explain)"); err != nil {
		return err
	}
	if c.fed.GRPC, err = tcp(cfg.FederatorPort, "federator"); err != nil {
		return err
	}
	if c.fed.Bootstrap, err = tcp(cfg.FederatorPort+1, "federator bootstrap (Certs.Sign)"); err != nil {
		return err
	}
	if c.fed.HTTP, err = tcp(federatorHTTPPort(cfg), "federator HTTP (metrics, health)"); err != nil {
		return err
	}
	c.backends = map[string]net.Listener{}
	for _, s := range svcs {
		if !exportedBy(s, c.idx) {
			continue
		}
		if c.backends[s.Name], err = tcp(0, "demo backend "+s.Name); err != nil {
			return err
		}
	}
	return nil
}

func bindError(addr, what string, err error) error {
	return fmt.Errorf("listen on %s for %s: %w", addr, what, err)
}

// closeListeners closes what the components did not take over (they close
// their listeners when they return; closing twice is harmless).
func (c *cluster) closeListeners() {
	c.fed.Close()
	c.gw.Close()
	c.dns.Close()
	for _, ln := range c.backends {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

func exportedBy(s demoService, idx int) bool {
	for _, i := range s.ExportedBy {
		if i == idx {
			return true
		}
	}
	return false
}

// initCA makes the cluster's CA directory (certs.InitCADir, as `causeway
// certs init` does), which its federator loads and watches.
func (c *cluster) initCA() error {
	ca, err := certs.InitCADir(c.caDir(), c.td, devCALifetime, time.Now(), true)
	if err != nil {
		return fmt.Errorf("CA of %s: %w", c.spec.Name, err)
	}
	c.ca = ca
	return nil
}

func (c *cluster) caDir() string { return filepath.Join(c.dir, "ca") }

// writeExports writes the cluster's static exports file and returns its
// path.
func (c *cluster) writeExports(svcs []demoService) (string, error) {
	f := static.File{Version: static.FormatVersion}
	for _, s := range svcs {
		ln, ok := c.backends[s.Name]
		if !ok {
			continue
		}
		backend := uint32(ln.Addr().(*net.TCPAddr).Port)
		svc := static.Service{Namespace: s.Namespace, Name: s.Name, Endpoints: []static.Endpoint{{
			Address: c.ip.String(), Hostname: s.Name + "-0", Zone: c.spec.Zone, TargetPorts: map[string]uint32{},
		}}}
		for _, p := range s.ports() { // every port to the one backend listener
			svc.Ports = append(svc.Ports, static.Port{Name: p.Name, Port: uint32(p.Port), Protocol: "TCP", AppProtocol: p.AppProtocol})
			svc.Endpoints[0].TargetPorts[p.Name] = backend
		}
		f.Services = append(f.Services, svc)
	}
	return c.writeYAML("exports.yaml", f, 0o644)
}

// writeYAML writes v as YAML to the cluster's file name and returns its path.
func (c *cluster) writeYAML(name string, v any, perm os.FileMode) (string, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s of %s: %w", name, c.spec.Name, err)
	}
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, b, perm); err != nil {
		return "", fmt.Errorf("write %s of %s: %w", name, c.spec.Name, err)
	}
	return path, nil
}
