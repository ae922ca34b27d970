package devenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	"github.com/causeway-mesh/causeway/internal/lib/rungroup"
)

// Run starts the clusterset, calls onReady (if set) with its State once
// every cluster serves every demo service, and runs until ctx ends. It
// returns nil after a clean shutdown, also when ctx ends during start-up,
// or the first component's error.
func Run(ctx context.Context, cfg Config, onReady func(*State)) error {
	err := run(ctx, cfg, onReady)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrBadConfig) {
		return nil // interrupted (SIGINT/SIGTERM): a clean stop, whatever was starting
	}
	return err
}

func run(ctx context.Context, cfg Config, onReady func(*State)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if cfg.StateFile != "" {
		if err := checkWritable(cfg.StateFile); err != nil {
			return err
		}
	}

	dir, cleanup, err := dataDir(&cfg)
	if err != nil {
		return err
	}
	defer cleanup()

	svcs := demoServices(len(cfg.Clusters))
	clusters := make([]*cluster, len(cfg.Clusters))
	defer func() {
		for _, c := range clusters {
			if c != nil {
				c.closeListeners()
			}
		}
	}()
	if err := newClusters(cfg, dir, svcs, clusters); err != nil {
		return err
	}

	etcd, closeEtcd, err := startEtcd(ctx, cfg, dir, clusters)
	if err != nil {
		return err
	}
	defer closeEtcd()

	g := rungroup.New(ctx)
	for _, c := range clusters {
		if err := c.start(g, cfg, etcd, svcs); err != nil {
			_ = g.Stop()
			return err
		}
	}

	state, err := waitReady(g.Context(), cfg, clusters, svcs, etcd)
	if state != nil {
		state.File = cfg.StateFile
	}
	if err != nil {
		if stopErr := g.Stop(); stopErr != nil {
			return stopErr
		}
		if ctx.Err() != nil {
			return nil // interrupted during start-up
		}
		return err
	}
	if onReady != nil {
		onReady(state)
	}
	// The state file comes last: whoever waits for it finds everything,
	// the printed guide included, already done.
	if cfg.StateFile != "" {
		if err := writeState(cfg.StateFile, state); err != nil {
			_ = g.Stop()
			return err
		}
	}
	<-g.Context().Done()
	err = g.Stop()
	if cfg.StateFile != "" {
		_ = os.Remove(cfg.StateFile)
	}
	return err
}

// dataDir is the data directory of the run: cfg.DataDir, or a fresh
// temporary one (removed by cleanup) after removing those of runs that are
// no longer running. It also defaults cfg.StateFile into it.
func dataDir(cfg *Config) (dir string, cleanup func(), err error) {
	cleanup = func() {}
	dir = cfg.DataDir
	if dir == "" {
		for _, d := range removeStaleDataDirs(os.TempDir()) {
			cfg.Logger.Info("removed the data directory of a causeway dev that is no longer running", "dir", d)
		}
		tmp, err := makeDataDir(os.TempDir())
		if err != nil {
			return "", cleanup, err
		}
		dir, cleanup = tmp, func() { _ = os.RemoveAll(tmp) }
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", cleanup, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	if cfg.StateFile == "" {
		// Always a state file, so that the guide can offer one.
		cfg.StateFile = filepath.Join(dir, "state.json")
	}
	return dir, cleanup, nil
}

// newClusters fills clusters: each binds its listeners and gets a CA
// directory in its directory of dir, and pins every other cluster's CA
// (what an operator does in a deployment).
func newClusters(cfg Config, dir string, svcs []demoService, clusters []*cluster) error {
	for i, spec := range cfg.Clusters {
		c := &cluster{spec: spec, idx: i, ip: cfg.clusterIP(i), td: certs.TrustDomainFor(spec.Name, cfg.Domain),
			dir: filepath.Join(dir, "clusters", spec.Name)}
		clusters[i] = c
		if err := c.listen(cfg, svcs); err != nil {
			return err
		}
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return fmt.Errorf("create directory of %s: %w", spec.Name, err)
		}
		if err := c.initCA(); err != nil {
			return err
		}
	}
	for _, c := range clusters {
		c.pins = map[string]string{}
		for _, peer := range clusters {
			if peer != c {
				c.pins[peer.spec.Name] = certs.Fingerprint(peer.ca.Cert)
			}
		}
	}
	return nil
}

// startEtcd starts the embedded etcd with TLS and auth on, with a user per
// cluster; closeEtcd stops it.
func startEtcd(ctx context.Context, cfg Config, dir string, clusters []*cluster) (etcd *devEtcd, closeEtcd func(), err error) {
	etcdAddr := net.JoinHostPort(cfg.etcdIP().String(), strconv.Itoa(cfg.EtcdPort))
	etcdPeer := net.JoinHostPort(cfg.etcdIP().String(), strconv.Itoa(cfg.EtcdPort+1))
	for _, a := range []string{etcdAddr, etcdPeer} {
		if err := probeFree(a); err != nil {
			return nil, nil, bindError(a, "etcd", err)
		}
	}
	etcdTLS, err := newEtcdTLS(dir, cfg.etcdIP().String())
	if err != nil {
		return nil, nil, err
	}
	srv, err := embedetcd.Start(ctx, embedetcd.Config{Dir: dir + "/etcd", ClientAddr: etcdAddr, PeerAddr: etcdPeer, TLS: etcdTLS,
		BcryptCost: devBcryptCost})
	if err != nil {
		return nil, nil, err
	}
	etcd = &devEtcd{srv: srv, dir: filepath.Join(dir, etcdAuthDir)}
	names := make([]string, len(clusters))
	for i, c := range clusters {
		names[i] = c.spec.Name
	}
	if err := etcd.setupAuth(ctx, names); err != nil {
		srv.Close()
		return nil, nil, err
	}
	cfg.Logger.Info("etcd started (TLS, auth on)", "endpoint", srv.Endpoint(), "data", dir)
	return etcd, srv.Close, nil
}

// probeFree fails when addr's TCP port is taken.
func probeFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// buildState is the State of the running clusterset; vips are the DNS
// shims' answers by cluster.
func buildState(cfg Config, clusters []*cluster, svcs []demoService, etcd *devEtcd, vips map[string]map[string]string) *State {
	st := &State{Etcd: etcd.srv.Endpoint(), Domain: cfg.Domain, ClustersetAdmin: etcd.adminCredentials(), RoutesFile: cfg.RoutesFile}
	for _, c := range clusters {
		cs := ClusterState{
			Name: c.spec.Name, Region: c.spec.Region, Zone: c.spec.Zone,
			DNS:           c.dns.UDP.LocalAddr().String(),
			Gateway:       c.gw.QUIC.LocalAddr().String(),
			Federator:     c.fed.GRPC.Addr().String(),
			HTTP:          c.gw.HTTP.Addr().String(),
			FederatorHTTP: c.fed.HTTP.Addr().String(),
			DNSHTTP:       c.dns.HTTP.Addr().String(),
			Dir:           c.dir,
			AdminCert:     c.admin.Cert,
			AdminKey:      c.admin.Key,
			CAFile:        c.admin.CA,
			EtcdUser:      store.ClusterUser(c.spec.Name),
			VIPs:          vips[c.spec.Name],
		}
		cs.EtcdPasswordFile = etcd.passwordFile(cs.EtcdUser)
		st.Clusters = append(st.Clusters, cs)
	}
	for _, s := range svcs {
		ss := ServiceState{Namespace: s.Namespace, Name: s.Name, Port: s.Port, Backends: map[string]string{}}
		for _, p := range s.ports() {
			ss.Ports = append(ss.Ports, PortState{Name: p.Name, Port: p.Port, AppProtocol: p.AppProtocol})
		}
		for _, i := range s.ExportedBy {
			c := clusters[i]
			ss.ExportedBy = append(ss.ExportedBy, c.spec.Name)
			ss.Backends[c.spec.Name] = c.backends[s.Name].Addr().String()
		}
		st.Services = append(st.Services, ss)
	}
	return st
}
