package devenv

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/dnsshim"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/internal/app/component"
	"github.com/causeway-mesh/causeway/internal/lib/admin"
	"github.com/causeway-mesh/causeway/internal/lib/rungroup"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"sigs.k8s.io/yaml"
)

// cluster is one dev cluster: its listeners, identity and components.
type cluster struct {
	spec ClusterSpec
	idx  int
	ip   netip.Addr
	td   string
	ca   *certs.CA
	// pins are the other clusters' CA fingerprints: dev trusts its own
	// clusters' bundles itself (the operator step of a real deployment).
	pins map[string]string

	dnsUDP   net.PacketConn
	dnsTCP   net.Listener
	gwUDP    *net.UDPConn
	fedLn    net.Listener
	bootLn   net.Listener // Certs.Sign, as a federator's bootstrap port
	adminLn  net.Listener
	backends map[string]net.Listener // by service name

	gwCatalog  *catalog.Client
	dnsCatalog *catalog.Client
	gw         *gateway.Gateway
	admin      adminCreds // the CLI's credentials for the federator's Admin API
	reg        prometheus.Registerer
}

// listen binds every listener of the cluster, so that an address in use is
// reported before anything starts.
func (c *cluster) listen(cfg Config, svcs []demoService) (err error) {
	ip := c.ip.String()
	addr := func(port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	if c.dnsUDP, err = net.ListenPacket("udp", addr(cfg.DNSPort)); err != nil {
		return bindError(addr(cfg.DNSPort), "DNS (udp)", err)
	}
	if c.dnsTCP, err = net.Listen("tcp", addr(cfg.DNSPort)); err != nil {
		return bindError(addr(cfg.DNSPort), "DNS (tcp)", err)
	}
	udpAddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.ip, uint16(cfg.GatewayPort)))
	if c.gwUDP, err = net.ListenUDP("udp", udpAddr); err != nil {
		return bindError(udpAddr.String(), "gateway (udp)", err)
	}
	if c.fedLn, err = net.Listen("tcp", addr(cfg.FederatorPort)); err != nil {
		return bindError(addr(cfg.FederatorPort), "federator", err)
	}
	if c.bootLn, err = net.Listen("tcp", addr(cfg.FederatorPort+1)); err != nil {
		return bindError(addr(cfg.FederatorPort+1), "federator bootstrap (Certs.Sign)", err)
	}
	if c.adminLn, err = net.Listen("tcp", addr(cfg.AdminPort)); err != nil {
		return bindError(addr(cfg.AdminPort), "admin", err)
	}
	c.backends = map[string]net.Listener{}
	for _, s := range svcs {
		if !exportedBy(s, c.idx) {
			continue
		}
		ln, err := net.Listen("tcp", addr(0))
		if err != nil {
			return bindError(addr(0), "demo backend "+s.Name, err)
		}
		c.backends[s.Name] = ln
	}
	return nil
}

func bindError(addr, what string, err error) error {
	return fmt.Errorf("listen on %s for %s: %w", addr, what, err)
}

func (c *cluster) closeListeners() {
	if c.dnsUDP != nil {
		_ = c.dnsUDP.Close()
	}
	if c.dnsTCP != nil {
		_ = c.dnsTCP.Close()
	}
	if c.gwUDP != nil {
		_ = c.gwUDP.Close()
	}
	if c.fedLn != nil {
		_ = c.fedLn.Close()
	}
	if c.bootLn != nil {
		_ = c.bootLn.Close()
	}
	if c.adminLn != nil {
		_ = c.adminLn.Close()
	}
	for _, ln := range c.backends {
		_ = ln.Close()
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

// writeExports writes the cluster's static exports file and returns its path.
func (c *cluster) writeExports(dir string, svcs []demoService) (string, error) {
	f := static.File{Version: static.FormatVersion}
	for _, s := range svcs {
		ln, ok := c.backends[s.Name]
		if !ok {
			continue
		}
		port := uint32(ln.Addr().(*net.TCPAddr).Port)
		f.Services = append(f.Services, static.Service{
			Namespace: s.Namespace, Name: s.Name,
			Ports: []static.Port{{Name: "http", Port: uint32(s.Port), Protocol: "TCP"}},
			Endpoints: []static.Endpoint{{
				Address: c.ip.String(), Hostname: s.Name + "-0", Zone: c.spec.Zone,
				TargetPorts: map[string]uint32{"http": port},
			}},
		})
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("encode exports of %s: %w", c.spec.Name, err)
	}
	path := filepath.Join(dir, c.spec.Name+"-exports.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", fmt.Errorf("write exports of %s: %w", c.spec.Name, err)
	}
	return path, nil
}

// leaf gives a component of the cluster a certificate from the cluster CA
// that renews itself at 2/3 of lifetime, for as long as g runs.
func (c *cluster) leaf(g *rungroup.Group, component string, lifetime time.Duration, log *slog.Logger) (*certs.Rotator, certs.ID, error) {
	id, err := certs.NewID(c.td, component)
	if err != nil {
		return nil, certs.ID{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := certs.NewRotator(ctx, certs.RotatorConfig{ID: id, Logger: log,
		Signer: &certs.LocalSigner{CA: c.ca, Lifetime: lifetime}})
	if err != nil {
		return nil, certs.ID{}, fmt.Errorf("issue %s certificate of %s: %w", component, c.spec.Name, err)
	}
	g.Go(c.spec.Name+" "+component+" certificate", r.Run)
	if c.reg != nil {
		if err := certs.RegisterExpiry(c.reg, component, r); err != nil {
			return nil, certs.ID{}, err
		}
	}
	return r, id, nil
}

// start launches the cluster's components in g.
func (c *cluster) start(g *rungroup.Group, cfg Config, etcd *devEtcd, dir string, svcs []demoService) error {
	log := cfg.Logger.With("cluster", c.spec.Name) // the one owner of the attribute in this process
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.reg = reg
	fed, tokens, err := c.startFederator(g, cfg, etcd, dir, svcs, log, reg)
	if err != nil {
		return err
	}
	if err := c.startGateway(g, cfg, tokens["gateway"], log, reg); err != nil {
		return err
	}
	// DNS shim.
	_, dnsCatalog, _, err := c.component(g, "dnsshim", cfg, tokens["dnsshim"], log, reg)
	if err != nil {
		return err
	}
	c.dnsCatalog = dnsCatalog
	shim, err := dnsshim.New(dnsshim.Config{Zone: cfg.Domain + ".", Cluster: c.spec.Name, Logger: log, Registerer: reg}, c.dnsCatalog)
	if err != nil {
		return err
	}
	g.Go(c.spec.Name+" dnsshim", func(ctx context.Context) error {
		return shim.Serve(ctx, c.dnsUDP, c.dnsTCP)
	})

	// Demo backends.
	for _, s := range svcs {
		if ln, ok := c.backends[s.Name]; ok {
			h := backendHandler(c.spec.Name, s)
			g.Go(c.spec.Name+" backend "+s.Name, func(ctx context.Context) error {
				return serveBackend(ctx, ln, h)
			})
		}
	}

	// Admin endpoints for the whole cluster.
	adm := admin.New(reg, map[string]admin.Check{
		"federator":       fed.Ready,
		"gateway catalog": component.CatalogReady(c.gwCatalog),
		"dnsshim catalog": component.CatalogReady(c.dnsCatalog),
	})
	adm.Handle("GET /explain", c.gw.ExplainHandler())
	g.Go(c.spec.Name+" admin", func(ctx context.Context) error { return adm.Serve(ctx, c.adminLn) })
	return nil
}

// startFederator runs the cluster's federator with its own etcd client and
// etcd user, as a separate process would have (it may write only this
// cluster's keys), its Catalog and Admin API and its Certs.Sign; it
// returns the federator and the components' join token files.
func (c *cluster) startFederator(g *rungroup.Group, cfg Config, etcd *devEtcd, dir string, svcs []demoService,
	log *slog.Logger, reg prometheus.Registerer) (*federator.Federator, map[string]string, error) {
	ownBundle := certs.NewBundleSet()
	ownBundle.Set(c.td, []*x509.Certificate{c.ca.Cert})
	cli, err := etcd.clusterClient(c.spec.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s federator to etcd: %w", c.spec.Name, err)
	}
	st := store.New(cli, store.Options{Logger: log, Registerer: reg})
	cas, err := certs.NewCASet(c.ca, nil)
	if err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("CA set of %s: %w", c.spec.Name, err)
	}
	fed, err := federator.New(federator.Config{
		Cluster: c.spec.Name, Region: c.spec.Region, Zone: c.spec.Zone,
		VIPRanges: []netip.Prefix{cfg.vipRange(c.idx)}, TrustDomain: c.td,
		CAs: cas, TrustPins: c.pins, Logger: log, Registerer: reg,
	}, st)
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	exportsPath, err := c.writeExports(dir, svcs)
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	src := &static.Source{Path: exportsPath, Cluster: c.spec.Name, DefaultZone: c.spec.Zone, Logger: log}
	g.Go(c.spec.Name+" federator", func(ctx context.Context) error {
		defer cli.Close()
		return fed.Run(ctx, src)
	})

	fedCert, _, err := c.leaf(g, "federator", cfg.LeafLifetime, log)
	if err != nil {
		return nil, nil, err
	}
	grpcSrv := grpc.NewServer(grpc.Creds(credentials.NewTLS(certs.ServerConfig(certs.TLSOptions{
		Source: fedCert, Bundles: ownBundle, Authorize: certs.AuthorizeTrustDomain(c.td), NextProtos: []string{"h2"},
	}))))
	causewayv1.RegisterCatalogServer(grpcSrv, fed.CatalogServer())
	causewayv1.RegisterAdminServer(grpcSrv, fed.AdminServer(federator.AdminOptions{}))
	if c.admin, err = c.writeAdminCreds(dir, cfg.LeafLifetime); err != nil {
		return nil, nil, err
	}
	g.Go(c.spec.Name+" federator grpc", func(ctx context.Context) error {
		return component.ServeGRPC(ctx, grpcSrv, c.fedLn)
	})
	tokens, err := c.serveSigning(g, dir, cfg, cas, fedCert, log, reg)
	return fed, tokens, err
}

// startGateway runs the cluster's gateway: identity from Certs.Sign,
// catalog from the federator, and its record held by its own
// Catalog.AnnounceGateway call once it serves.
func (c *cluster) startGateway(g *rungroup.Group, cfg Config, tokenFile string, log *slog.Logger, reg prometheus.Registerer) error {
	gwCert, gwCatalog, gwConn, err := c.component(g, "gateway", cfg, tokenFile, log, reg)
	if err != nil {
		return err
	}
	c.gwCatalog = gwCatalog
	c.gw, err = gateway.New(gateway.Config{Cluster: c.spec.Name, Logger: log, Registerer: reg}, c.gwCatalog, gwCert)
	if err != nil {
		return err
	}
	g.Go(c.spec.Name+" gateway", func(ctx context.Context) error {
		select { // serve egress only from a synced catalog
		case <-ctx.Done():
			return nil
		case <-c.gwCatalog.Ready():
		}
		return c.gw.Run(ctx, c.gwUDP, gateway.DefaultListen)
	})
	gwAddr := c.gwUDP.LocalAddr().String()
	g.Go(c.spec.Name+" gateway announcement", func(ctx context.Context) error {
		select { // announce only once the gateway serves, as a deployed gateway does
		case <-ctx.Done():
			return nil
		case <-c.gw.Ready():
		}
		// Over the gateway's own connection, with its identity: the record
		// is bound to its key, as in a deployment.
		component.Announce(ctx, gwConn, "gw-0", []string{gwAddr}, log)
		return nil
	})
	return nil
}

// component obtains a component's certificate as a deployed gateway or
// DNS shim does (Certs.Sign on the cluster's bootstrap listener, with a
// join token; the federator verified against the cluster's CA file) and
// starts its catalog client over a connection with that identity, which
// also follows the cluster's own bundle; the connection lasts as long as
// the client runs.
func (c *cluster) component(g *rungroup.Group, name string, cfg Config, tokenFile string,
	log *slog.Logger, reg prometheus.Registerer) (*certs.Rotator, *catalog.Client, *grpc.ClientConn, error) {
	cc := &component.ClientConfig{Identity: component.Identity{Cluster: c.spec.Name, Domain: cfg.Domain},
		Federator: c.fedLn.Addr().String(), Bootstrap: c.bootLn.Addr().String(), CAFile: c.admin.CA, TokenFile: tokenFile}
	ctx, cancel := context.WithTimeout(g.Context(), 30*time.Second)
	ident, err := component.NewClientIdentity(ctx, cc, name, log)
	cancel()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s certificate of %s: %w", name, c.spec.Name, err)
	}
	g.Go(c.spec.Name+" "+name+" certificate", ident.Run)
	if err := certs.RegisterExpiry(reg, name, ident.Cert()); err != nil {
		return nil, nil, nil, err
	}
	client, conn, err := ident.Catalog(g, name, reg)
	if err != nil {
		return nil, nil, nil, err
	}
	return ident.Cert(), client, conn, nil
}

// serveSigning serves Certs.Sign on the cluster's bootstrap listener, as a
// federator does, with one join token per component written to a 0600
// file of the data directory; it returns the token files by component.
func (c *cluster) serveSigning(g *rungroup.Group, dir string, cfg Config, cas *certs.CASet, fedCert *certs.Rotator,
	log *slog.Logger, reg prometheus.Registerer) (map[string]string, error) {
	tokens, files := map[string]string{}, map[string]string{}
	for _, name := range []string{"gateway", "dnsshim"} {
		tok, err := federator.NewJoinToken()
		if err != nil {
			return nil, err
		}
		tokens[tok] = name
		files[name] = filepath.Join(dir, "clusters", c.spec.Name, name+".token")
		if err := os.WriteFile(files[name], []byte(tok+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write %s join token of %s: %w", name, c.spec.Name, err)
		}
	}
	auth, err := federator.NewJoinTokenAuthenticator(tokens)
	if err != nil {
		return nil, err
	}
	srv, err := federator.NewCertsServer(federator.CertsServerConfig{Cluster: c.spec.Name, TrustDomain: c.td, CA: cas,
		Lifetime: cfg.LeafLifetime, Authenticator: auth, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	boot := grpc.NewServer(grpc.Creds(credentials.NewTLS(certs.BootstrapServerConfig(certs.TLSOptions{
		Source: fedCert, NextProtos: []string{"h2"},
	}))))
	causewayv1.RegisterCertsServer(boot, srv)
	g.Go(c.spec.Name+" federator bootstrap grpc", func(ctx context.Context) error {
		return component.ServeGRPC(ctx, boot, c.bootLn)
	})
	return files, nil
}
