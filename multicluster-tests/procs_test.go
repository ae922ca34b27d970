package multicluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/causeway-mesh/causeway/internal/testenv/proctest"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// This file is the harness of the process-level scenarios: a federation
// etcd in the test process (TLS and auth on, as in production: each
// federator writes with its cluster's own etcd user), and per cluster the causeway federator,
// gateway and DNS shim as real processes of the built binary, configured
// with the files an operator writes (docs/components.md), plus demo HTTP
// backends in the test process.

// proc is one running causeway component process.
type proc struct {
	*proctest.Process
	name string
	out  *syncBuffer
}

// startProcIn starts the causeway binary with args in network namespace
// ns ("" = the test's). Cleanup stops it with SIGTERM (SIGKILL after
// 10 s) and logs its output when the test failed.
func startProcIn(t *testing.T, ns, name string, args ...string) *proc {
	t.Helper()
	cmd := netnsCommand(ns, causewayBinary(t), args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	pp, err := proctest.Start(cmd)
	require.NoError(t, err, "start %s", name)
	p := &proc{Process: pp, name: name, out: out}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out)
		}
	})
	return p
}

// pcluster is one cluster of a process-level clusterset.
type pcluster struct {
	name, region, zone string
	ip                 string // every listener of the cluster binds this address
	backendIP          string // where its demo backends listen (ip, or the hub's side of its veth)
	netns              string // the namespace its processes run in ("" = the test's)
	dir, caDir         string
	vipRange           string
	fedReplicas        int
	leafLifetime       string
	kube               *kubetest.Cluster
	relay              *udpRelay // in front of the gateway when the spec asks for one
	wantRelay          bool
	kubeRoutes         bool // the gateway reads HTTPRoutes and GRPCRoutes from kube

	backendsMu sync.Mutex
	backends   map[string]*http.Server // by service name
	backendLn  map[string]net.Listener
	unready    map[string]bool // services whose endpoint the exports file marks not ready

	fed, gw, dns *proc
	feds         []*proc // every federator replica; fed is feds[0]
	gwConfig     string
	adminCreds   string // directory of admin.crt, admin.key, ca.crt
}

func (c *pcluster) addr(port int) string { return net.JoinHostPort(c.ip, strconv.Itoa(port)) }

// replicaAddr is federator replica r's address on port (replica 0 is on
// the cluster's address, replica r on the next ones).
func (c *pcluster) replicaAddr(r, port int) string {
	ip := net.ParseIP(c.ip).To4()
	ip[3] += byte(r)
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

// replicaAddrs lists every federator replica's address on port.
func (c *pcluster) replicaAddrs(port int) string {
	addrs := make([]string, c.fedReplicas)
	for r := range addrs {
		addrs[r] = c.replicaAddr(r, port)
	}
	return strings.Join(addrs, ",")
}

// Fixed ports on each cluster's own loopback address.
const (
	pFedGRPC  = 7443
	pFedBoot  = 7444
	pFedAdmin = 9090
	pGateway  = 4433
	pGwAdmin  = 9091
	pDNS      = 5353
	pDNSAdmin = 9092
)

// pclusterSpec places a cluster.
type pclusterSpec struct {
	name, region, zone string
	exports            []string // names of services (namespace demo, port 8080) it exports
	fedReplicas        int      // federator replicas (default 1)
	leafLifetime       string   // of the leaves Certs.Sign issues (default 1h)
	// relay puts a UDP relay (udpRelay) in front of the cluster's gateway
	// and advertises it, so a test can partition the gateway from one peer.
	relay bool
	// kube, when set, is the cluster's apiserver: the federator reads
	// ServiceExports and writes imports there (no static exports), and
	// the gateway listens on egress ports.
	kube *kubetest.Cluster
	// kubeRoutes, with kube, gives the gateway `kubernetesRoutes`: its L7
	// routes are kube's HTTPRoutes and GRPCRoutes (their CRDs installed).
	kubeRoutes bool
}

// pset is a process-level clusterset.
type pset struct {
	t        *testing.T
	domain   string
	etcd     *secureetcd.Cluster // TLS and auth on; its Client is the clusterset admin
	clusters map[string]*pcluster
}

// startPSet starts a federation etcd of etcdMembers members and, for each spec, a cluster's federator, gateway
// and DNS shim; octet is the second octet of 127.N.0.0/16 the clusterset
// lives in (distinct per test, so tests may run in parallel). It returns
// once every component is ready.
func startPSet(t *testing.T, octet, etcdMembers int, specs []pclusterSpec) *pset {
	t.Helper()
	l := &netLayout{EtcdHost: "127.0.0.1"}
	for i, sp := range specs {
		ip := fmt.Sprintf("127.%d.%d.1", octet, i+1)
		l.Clusters = append(l.Clusters, netCluster{Name: sp.name, IP: ip, HubIP: ip,
			VIPRange: fmt.Sprintf("127.%d.%d.128/25", octet, i+1)})
	}
	return startPSetIn(t, l, etcdMembers, specs)
}

// startPSetIn is startPSet with the clusters placed by l (see runInNetns).
func startPSetIn(t *testing.T, l *netLayout, etcdMembers int, specs []pclusterSpec) *pset {
	t.Helper()
	ec := secureetcd.StartClusterOn(t, etcdMembers, l.EtcdHost)
	s := &pset{t: t, domain: "clusterset.local", etcd: ec, clusters: map[string]*pcluster{}}
	for _, sp := range specs {
		nc := l.cluster(sp.name)
		c := &pcluster{
			name: sp.name, region: sp.region, zone: sp.zone,
			ip: nc.IP, backendIP: nc.HubIP, netns: nc.Netns, vipRange: nc.VIPRange,
			dir:      filepath.Join(t.TempDir(), sp.name),
			backends: map[string]*http.Server{}, backendLn: map[string]net.Listener{},
			fedReplicas: max(sp.fedReplicas, 1), leafLifetime: sp.leafLifetime, kube: sp.kube,
			wantRelay: sp.relay, kubeRoutes: sp.kubeRoutes && sp.kube != nil,
		}
		if c.leafLifetime == "" {
			c.leafLifetime = "1h"
		}
		require.NoError(t, os.MkdirAll(c.dir, 0o700))
		c.caDir = filepath.Join(c.dir, "ca")
		mustCLI(t, nil, "certs", "init", "--cluster", c.name, "--out", c.caDir)
		c.adminCreds = filepath.Join(c.dir, "admin")
		mustCLI(t, nil, "certs", "admin", "--ca-dir", c.caDir, "--out", c.adminCreds)
		for _, svc := range sp.exports {
			c.startBackend(t, svc)
		}
		c.writeExports(t)
		s.clusters[c.name] = c
	}
	for _, sp := range specs { // every CA exists: each federator pins its peers'
		s.startFederator(s.clusters[sp.name])
	}
	for _, c := range s.clusters {
		s.startGateway(c)
		s.startDNS(c)
	}
	for _, c := range s.clusters {
		for _, p := range []struct {
			proc *proc
			port int
		}{{c.gw, pGwAdmin}, {c.dns, pDNSAdmin}} {
			waitReady(t, p.proc, "http://"+c.addr(p.port)+"/readyz", 60*time.Second)
		}
		for r, f := range c.feds {
			waitReady(t, f, "http://"+c.replicaAddr(r, pFedAdmin)+"/readyz", 60*time.Second)
		}
	}
	return s
}

// startBackend serves the demo reply {cluster, service} for svc on an
// ephemeral port of the cluster's address.
func (c *pcluster) startBackend(t *testing.T, svc string) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(c.backendIP, "0"))
	require.NoError(t, err)
	c.serveBackend(t, svc, ln)
}

func (c *pcluster) serveBackend(t *testing.T, svc string, ln net.Listener) {
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(backendReply{Cluster: c.name, Service: svc})
	})}
	c.backendsMu.Lock()
	c.backends[svc], c.backendLn[svc] = srv, ln
	c.backendsMu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// stopBackend closes svc's backend: its listener refuses connections.
func (c *pcluster) stopBackend(svc string) string {
	c.backendsMu.Lock()
	defer c.backendsMu.Unlock()
	addr := c.backendLn[svc].Addr().String()
	_ = c.backends[svc].Close()
	return addr
}

// restartBackend serves svc again on the address it had.
func (c *pcluster) restartBackend(t *testing.T, svc, addr string) {
	t.Helper()
	var ln net.Listener
	require.Eventually(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond, "re-listen on %s", addr)
	c.serveBackend(t, svc, ln)
}

// writeExports writes the cluster's static exports file.
func (c *pcluster) writeExports(t *testing.T) {
	t.Helper()
	f := static.File{Version: static.FormatVersion}
	c.backendsMu.Lock()
	defer c.backendsMu.Unlock()
	for svc, ln := range c.backendLn {
		ready := !c.unready[svc]
		f.Services = append(f.Services, static.Service{
			Namespace: "demo", Name: svc,
			Ports: []static.Port{{Name: "http", Port: 8080, Protocol: "TCP"}},
			Endpoints: []static.Endpoint{{
				Address: c.backendIP, Hostname: svc + "-0", Zone: c.zone, Ready: &ready,
				TargetPorts: map[string]uint32{"http": uint32(ln.Addr().(*net.TCPAddr).Port)},
			}},
		})
	}
	b, err := yaml.Marshal(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "exports.yaml"), b, 0o644))
}

// setReady marks svc's endpoint ready or not in the cluster's exports
// file, as a readiness probe would; the federator re-reads the file.
func (c *pcluster) setReady(t *testing.T, svc string, ready bool) {
	t.Helper()
	c.backendsMu.Lock()
	if c.unready == nil {
		c.unready = map[string]bool{}
	}
	c.unready[svc] = !ready
	c.backendsMu.Unlock()
	c.writeExports(t)
}

// writeFile writes a file into the cluster's directory.
func (c *pcluster) writeFile(t *testing.T, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(c.dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), perm))
	return p
}

func (s *pset) startFederator(c *pcluster) {
	t := s.t
	gwTok, err := federator.NewJoinToken()
	require.NoError(t, err)
	dnsTok, err := federator.NewJoinToken()
	require.NoError(t, err)
	tokens := c.writeFile(t, "join-tokens.yaml", fmt.Sprintf("%s: gateway\n%s: dnsshim\n", gwTok, dnsTok), 0o600)
	c.writeFile(t, "gateway.token", gwTok+"\n", 0o600)
	c.writeFile(t, "dnsshim.token", dnsTok+"\n", 0o600)
	creds := s.etcd.ClusterCreds(t, c.name) // the cluster's own etcd user: writes only its keys
	for r := range c.fedReplicas {
		cfg := c.writeFile(t, fmt.Sprintf("federator-%d.yaml", r), fmt.Sprintf(`cluster: %s
domain: %s
region: %s
zone: %s
instance: %s-%d
leaderTTL: 2s
etcd:
  endpoints: [%s]
  caFile: %s
  serverName: %s
  username: %s
  passwordFile: %s
listen:
  grpc: %q
  bootstrap: %q
  http: %q
caDir: %s
caReloadInterval: 300ms
%s
signing:
  lifetime: %s
  joinTokensFile: %s
%s`, c.name, s.domain, c.region, c.zone, c.name, r, quoteList(s.etcd.Endpoints()), creds.CAFile, creds.ServerName, creds.Username, creds.PasswordFile, c.replicaAddr(r, pFedGRPC),
			c.replicaAddr(r, pFedBoot), c.replicaAddr(r, pFedAdmin), c.caDir, c.exportsConfig(), c.leafLifetime, tokens,
			s.trustPins(c)), 0o644)
		c.feds = append(c.feds, startProcIn(t, c.netns, fmt.Sprintf("%s federator-%d", c.name, r), "--log-level", "debug", "federator", "--config", cfg))
	}
	c.fed = c.feds[0]
}

// trustPins is the federator config's trustPins: the CA fingerprint of
// every other cluster of the set (what an operator copies from each
// cluster's `causeway join` output).
func (s *pset) trustPins(c *pcluster) string {
	var b strings.Builder
	for _, peer := range s.clusters {
		if peer == c {
			continue
		}
		cas, err := certs.ReadCertificatesFile(filepath.Join(peer.caDir, "ca.crt"))
		require.NoError(s.t, err)
		if b.Len() == 0 {
			b.WriteString("trustPins:\n")
		}
		fmt.Fprintf(&b, "  %s: %q\n", peer.name, certs.Fingerprint(cas[0]))
	}
	return b.String()
}

// exportsConfig is the federator's source (and VIP) configuration.
func (c *pcluster) exportsConfig() string {
	if c.kube != nil {
		return fmt.Sprintf(`exports:
  kubernetes:
    kubeconfig: %s
    defaultZone: %s
    gatewayService: causeway/causeway-gateway
    egressPorts: 30000-30999`, c.kube.Kubeconfig, c.zone)
	}
	return fmt.Sprintf(`vipRanges: [%q]
exports:
  static: %s`, c.vipRange, filepath.Join(c.dir, "exports.yaml"))
}

// clientConfig is the part gateway and dnsshim configurations share.
func (s *pset) clientConfig(c *pcluster, component string) string {
	return fmt.Sprintf(`cluster: %s
domain: %s
federator: %q
bootstrap: %q
caFile: %s
tokenFile: %s
`, c.name, s.domain, c.replicaAddrs(pFedGRPC), c.replicaAddrs(pFedBoot), filepath.Join(c.caDir, "bundle.crt"),
		filepath.Join(c.dir, component+".token"))
}

func (s *pset) startGateway(c *pcluster) {
	t := s.t
	advertise := c.addr(pGateway)
	if c.wantRelay && c.relay == nil {
		c.relay = startUDPRelay(t, c.replicaAddr(1, pGateway), c.addr(pGateway))
	}
	if c.relay != nil {
		advertise = c.relay.addr()
	}
	c.gwConfig = c.writeFile(t, "gateway.yaml", s.clientConfig(c, "gateway")+fmt.Sprintf(`instance: gw-0
listen: %q
advertise: [%q]
http: %q
shutdownGrace: 2s
%s`, c.addr(pGateway), advertise, c.addr(pGwAdmin), c.egressConfig()), 0o644)
	c.gw = startProcIn(t, c.netns, c.name+" gateway", "--log-level", "debug", "gateway", "--config", c.gwConfig)
}

// egressConfig puts a Kubernetes cluster's gateway in ports mode on the
// cluster's address (the derived Services' ClusterIPs are not local),
// with its routes from the cluster's apiserver when the spec says so.
func (c *pcluster) egressConfig() string {
	if c.kube == nil {
		return ""
	}
	cfg := fmt.Sprintf("egress: {mode: ports, bind: %q}\n", c.ip)
	if c.kubeRoutes {
		cfg += fmt.Sprintf("kubernetesRoutes: {kubeconfig: %q}\n", c.kube.Kubeconfig)
	}
	return cfg
}

// restartGateway starts the gateway again with the same configuration.
func (s *pset) restartGateway(c *pcluster) {
	c.gw = startProcIn(s.t, c.netns, c.name+" gateway", "--log-level", "debug", "gateway", "--config", c.gwConfig)
	waitReady(s.t, c.gw, "http://"+c.addr(pGwAdmin)+"/readyz", 60*time.Second)
}

func (s *pset) startDNS(c *pcluster) {
	t := s.t
	cfg := c.writeFile(t, "dnsshim.yaml", s.clientConfig(c, "dnsshim")+fmt.Sprintf(`listen: %q
http: %q
`, c.addr(pDNS), c.addr(pDNSAdmin)), 0o644)
	c.dns = startProcIn(t, c.netns, c.name+" dnsshim", "dnsshim", "--config", cfg)
}

// adminArgs are the operator verbs' connection flags for cluster c.
func (s *pset) adminArgs(c *pcluster) []string {
	return []string{"--federator", c.addr(pFedGRPC), "--cert", filepath.Join(c.adminCreds, "admin.crt"),
		"--key", filepath.Join(c.adminCreds, "admin.key"), "--ca", filepath.Join(c.adminCreds, "ca.crt")}
}

// waitReady polls url until it answers 200, failing when p exits first.
func waitReady(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if !p.Running() {
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.Err(), p.out)
		}
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s after %s: %s", p.name, url, timeout, last)
}

// resolveVIP waits until cluster c's DNS shim answers name with an address.
func (s *pset) resolveVIP(c *pcluster, name string, timeout time.Duration) string {
	t := s.t
	t.Helper()
	var ip string
	require.Eventually(t, func() bool {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := (&dns.Client{Net: "udp", Timeout: time.Second}).Exchange(m, c.addr(pDNS))
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return false
		}
		a, ok := r.Answer[0].(*dns.A)
		if ok {
			ip = a.A.String()
		}
		return ok
	}, timeout, 50*time.Millisecond, "%s's DNS shim never answered %s", c.name, name)
	return ip
}

// quoteList renders strings as a YAML flow list's items.
func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// backendPort is the port svc's backend listens on.
func (c *pcluster) backendPort(svc string) int32 {
	c.backendsMu.Lock()
	defer c.backendsMu.Unlock()
	return int32(c.backendLn[svc].Addr().(*net.TCPAddr).Port)
}
