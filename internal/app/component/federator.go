package component

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/kube"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/admin"
	"github.com/causeway-mesh/causeway/internal/lib/rungroup"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
)

// federatorCertLifetime is the lifetime of the federator's own serving
// certificate, issued from the cluster CA in process.
const federatorCertLifetime = 24 * time.Hour

// FederatorListeners are the listeners a federator serves on; the caller
// owns them until RunFederatorOn returns, which closes them.
type FederatorListeners struct {
	// GRPC serves Catalog and Admin (mutual TLS); Bootstrap serves
	// Certs.Sign; HTTP serves metrics and health.
	GRPC, Bootstrap, HTTP net.Listener
}

// Close closes every listener that is set.
func (l FederatorListeners) Close() {
	for _, ln := range []net.Listener{l.GRPC, l.Bootstrap, l.HTTP} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// ListenFederator binds the listeners of c, so that a port in use fails
// the start with its address before anything starts.
func ListenFederator(c *FederatorConfig) (FederatorListeners, error) {
	var l FederatorListeners
	var err error
	if l.GRPC, err = listenTCP(c.Listen.GRPC, "federator gRPC"); err != nil {
		return l, err
	}
	if l.Bootstrap, err = listenTCP(c.Listen.Bootstrap, "federator bootstrap (Certs.Sign)"); err != nil {
		l.Close()
		return l, err
	}
	if l.HTTP, err = listenTCP(c.Listen.HTTP, "federator HTTP (metrics, health)"); err != nil {
		l.Close()
		return l, err
	}
	return l, nil
}

// RunFederator runs a federator replica until ctx ends, on listeners bound
// to c's addresses (ListenFederator) once its local files are checked.
func RunFederator(ctx context.Context, c *FederatorConfig, log *slog.Logger) error {
	cas, err := c.loadLocal()
	if err != nil {
		return err
	}
	ls, err := ListenFederator(c)
	if err != nil {
		return err
	}
	return c.run(ctx, log, ls, cas)
}

// RunFederatorOn runs a federator replica on ls until ctx ends: the export
// source and import sink of the configuration, leader election, the gRPC
// servers (Catalog and Admin over mutual TLS; Certs.Sign on the bootstrap
// listener) and the HTTP endpoints. It closes ls when it returns.
func RunFederatorOn(ctx context.Context, c *FederatorConfig, log *slog.Logger, ls FederatorListeners) error {
	cas, err := c.loadLocal()
	if err != nil {
		ls.Close()
		return err
	}
	return c.run(ctx, log, ls, cas)
}

// loadLocal loads the CA directory and checks every local input, before
// the first etcd write (register): a refused start leaves nothing of the
// cluster in etcd.
func (c *FederatorConfig) loadLocal() (*certs.CASet, error) {
	cas, err := certs.LoadCASet(c.CADir)
	if err != nil {
		return nil, caDirError(c, err)
	}
	if td := cas.TrustDomain(); td != c.TrustDomain() {
		return nil, fmt.Errorf("CA directory %s is of trust domain %s, not %s (cluster %s, domain %s)",
			c.CADir, td, c.TrustDomain(), c.Cluster, c.Domain)
	}
	return cas, c.validateLocalFiles()
}

func (c *FederatorConfig) run(ctx context.Context, log *slog.Logger, ls FederatorListeners, cas *certs.CASet) error {
	defer ls.Close()
	log = log.With("cluster", c.Cluster)
	logDeprecations(log, c.Deprecations)
	reg := newRegistry()
	cli, err := NewEtcdClient(c.Etcd)
	if err != nil {
		return err
	}
	defer cli.Close()
	parts, err := c.federatorParts(cas, store.New(cli, store.Options{Logger: log, Registerer: reg}), log, reg)
	if err != nil {
		return err
	}

	g := rungroup.New(ctx)
	g.Go("ca directory", (&certs.CADirWatcher{Dir: c.CADir, Set: cas, Interval: c.CAReloadInterval.Duration, Logger: log}).Run)
	cert, err := federatorCertificate(ctx, g, c, cas, log, reg)
	if err != nil {
		_ = g.Stop()
		return err
	}
	g.Go("federator", func(ctx context.Context) error { return parts.fed.Run(ctx, parts.src) })
	if err := c.serveFederatorGRPC(g, ls, parts, cas, cert, reg); err != nil {
		_ = g.Stop()
		return err
	}
	serveAdmin(g, ls.HTTP, admin.New(reg, map[string]admin.Check{"federator": parts.fed.Ready}))
	log.Info("federator started", "grpc", ls.GRPC.Addr().String(), "bootstrap", ls.Bootstrap.Addr().String(),
		"http", ls.HTTP.Addr().String(), "trustDomain", c.TrustDomain())
	return g.Wait()
}

// federatorParts are the pieces a federator process is made of, before
// anything runs.
type federatorParts struct {
	fed      *federator.Federator
	src      federator.ExportSource
	certsSrv *federator.CertsServer
}

// federatorParts builds the federator over st with the configured export
// source and import sink, and the signing server.
func (c *FederatorConfig) federatorParts(cas *certs.CASet, st *store.Store, log *slog.Logger, reg prometheus.Registerer) (federatorParts, error) {
	var p federatorParts
	vips, _ := c.vipRanges() // validated
	fcfg := federator.Config{
		Cluster: c.Cluster, Region: c.Region, Zone: c.Zone, VIPRanges: vips,
		TrustDomain: c.TrustDomain(), CAs: cas, Instance: c.Instance, LeaderTTL: c.LeaderTTL.Duration,
		TrustPins: c.TrustPins, Logger: log, Registerer: reg,
	}
	var (
		kubeCS kubernetes.Interface
		mcs    mcsclient.Interface
		err    error
	)
	k := c.Exports.Kubernetes
	if k != nil {
		if kubeCS, mcs, err = kubeClients(k.Kubeconfig); err != nil {
			return p, err
		}
		sink, err := kube.NewSink(kube.SinkConfig{Cluster: c.Cluster, Kube: kubeCS, MCS: mcs, GatewayService: k.GatewayService, Logger: log})
		if err != nil {
			return p, err
		}
		fcfg.Sink = sink
		fcfg.EgressPorts, _ = parsePortRange(k.EgressPorts) // validated
	}
	if p.fed, err = federator.New(fcfg, st); err != nil {
		return p, err
	}
	if k != nil {
		if p.src, err = kube.NewSource(kube.SourceConfig{Cluster: c.Cluster, DefaultZone: k.DefaultZone, Kube: kubeCS, MCS: mcs,
			Feed: p.fed.Feed(), Logger: log}); err != nil {
			return p, err
		}
	} else {
		p.src = &static.Source{Path: c.Exports.Static, Cluster: c.Cluster, DefaultZone: c.Zone, Logger: log}
	}
	auth, err := c.authenticator(kubeCS)
	if err != nil {
		return p, err
	}
	p.certsSrv, err = federator.NewCertsServer(federator.CertsServerConfig{
		Cluster: c.Cluster, TrustDomain: c.TrustDomain(), CA: cas, Components: c.Signing.Components,
		Lifetime: c.Signing.Lifetime.Duration, Authenticator: auth, Logger: log, Registerer: reg,
	})
	return p, err
}

// federatorCertificate issues the federator's own serving certificate from
// the cluster CA in process and keeps it renewed in g.
func federatorCertificate(ctx context.Context, g *rungroup.Group, c *FederatorConfig, cas *certs.CASet, log *slog.Logger, reg prometheus.Registerer) (*certs.Rotator, error) {
	fedID, err := certs.NewID(c.TrustDomain(), "federator")
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cert, err := certs.NewRotator(ictx, certs.RotatorConfig{ID: fedID, Logger: log, Renew: cas.Changed,
		Signer: &certs.LocalSigner{CA: cas, Lifetime: federatorCertLifetime}})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("issue the federator's certificate: %w", err)
	}
	g.Go("federator certificate", cert.Run)
	return cert, certs.RegisterExpiry(reg, "federator", cert)
}

// serveFederatorGRPC serves Catalog and Admin over mutual TLS on ls.GRPC
// and Certs.Sign on ls.Bootstrap, in g.
func (c *FederatorConfig) serveFederatorGRPC(g *rungroup.Group, ls FederatorListeners, p federatorParts, cas *certs.CASet, cert *certs.Rotator, reg prometheus.Registerer) error {
	watchLimit, err := federator.NewWatchLimiter(federator.WatchLimitConfig{PerIdentity: c.Limits.WatchStreamsPerIdentity, Registerer: reg})
	if err != nil {
		return err
	}
	mtls := grpc.NewServer(append(c.Limits.grpcServerOptions(), grpc.StreamInterceptor(watchLimit.StreamInterceptor()),
		grpc.Creds(credentials.NewTLS(certs.ServerConfig(certs.TLSOptions{
			Source: cert, Bundles: cas, Authorize: certs.AuthorizeTrustDomain(c.TrustDomain()), NextProtos: []string{"h2"},
		}))))...)
	causewayv1.RegisterCatalogServer(mtls, p.fed.CatalogServer())
	causewayv1.RegisterAdminServer(mtls, p.fed.AdminServer(federator.AdminOptions{}))
	g.Go("grpc", func(ctx context.Context) error { return serveGRPC(ctx, mtls, ls.GRPC) })

	boot := grpc.NewServer(append(c.Limits.grpcServerOptions(), grpc.Creds(credentials.NewTLS(certs.BootstrapServerConfig(certs.TLSOptions{
		Source: cert, NextProtos: []string{"h2"},
	}))))...)
	causewayv1.RegisterCertsServer(boot, p.certsSrv)
	g.Go("bootstrap grpc", func(ctx context.Context) error { return serveGRPC(ctx, boot, ls.Bootstrap) })
	return nil
}

// authenticator is Certs.Sign's: join tokens, TokenReview, or both.
func (c *FederatorConfig) authenticator(kubeCS kubernetes.Interface) (federator.Authenticator, error) {
	var auths anyAuthenticator
	if c.Signing.JoinTokensFile != "" {
		a, err := c.joinTokenAuthenticator() // jointokens.go
		if err != nil {
			return nil, err
		}
		auths = append(auths, a)
	}
	if tr := c.Signing.TokenReview; tr != nil {
		a, err := federator.NewTokenReviewAuthenticator(federator.TokenReviewConfig{
			Client: kubeCS, Accounts: tr.Accounts, Audiences: tr.Audiences,
		})
		if err != nil {
			return nil, fmt.Errorf("signing.tokenReview: %w", err)
		}
		auths = append(auths, a)
	}
	return auths, nil
}

// anyAuthenticator accepts a token any of its authenticators accepts.
type anyAuthenticator []federator.Authenticator

func (as anyAuthenticator) Authenticate(ctx context.Context, token string) (federator.Principal, error) {
	var errs []error
	for _, a := range as {
		p, err := a.Authenticate(ctx, token)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	return federator.Principal{}, errors.Join(errs...)
}

// NewEtcdClient connects to the federation etcd as configured (TLS and
// user optional); `causeway federator` and `causeway join` share it.
func NewEtcdClient(e EtcdConfig) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: e.Endpoints, DialTimeout: e.DialTimeout.Duration, Logger: zap.NewNop(), Username: e.Username}
	if e.PasswordFile != "" {
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read etcd password: %w", err)
		}
		cfg.Password = strings.TrimSpace(string(b))
	}
	if e.CAFile != "" || e.CertFile != "" || e.ServerName != "" {
		t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: e.ServerName}
		if e.CAFile != "" {
			b, err := os.ReadFile(e.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read etcd CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("etcd CA %s: no PEM certificate", e.CAFile)
			}
			t.RootCAs = pool
		}
		if e.CertFile != "" {
			kp, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("load etcd client certificate: %w", err)
			}
			t.Certificates = []tls.Certificate{kp}
		}
		cfg.TLS = t
		if e.ServerName != "" {
			// gRPC verifies the server against the address it dials,
			// whatever tls.Config.ServerName says; a relay or tunnel
			// address is not in etcd's certificate.
			cfg.DialOptions = append(cfg.DialOptions,
				grpc.WithTransportCredentials(serverNameCreds{credentials.NewTLS(t), e.ServerName}))
		}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", e.Endpoints, err)
	}
	return cli, nil
}

// serverNameCreds are TLS credentials that verify the server as name,
// whichever address (authority) the connection was dialed for.
type serverNameCreds struct {
	credentials.TransportCredentials
	name string
}

func (c serverNameCreds) ClientHandshake(ctx context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.TransportCredentials.ClientHandshake(ctx, c.name, conn)
}

func (c serverNameCreds) Clone() credentials.TransportCredentials {
	return serverNameCreds{c.TransportCredentials.Clone(), c.name}
}

// kubeClients builds the clients of the cluster's apiserver.
func kubeClients(kubeconfig string) (kubernetes.Interface, mcsclient.Interface, error) {
	rc, err := restConfig(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	mc, err := mcsclient.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("mcs-api client: %w", err)
	}
	return kc, mc, nil
}

// restConfig is the client configuration of kubeconfig, or the
// in-cluster one when it is empty.
func restConfig(kubeconfig string) (*rest.Config, error) {
	var (
		rc  *rest.Config
		err error
	)
	if kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	return rc, nil
}

// caDirError says which configuration field names the CA directory that
// could not be loaded, and how to create one.
func caDirError(c *FederatorConfig, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		domain := ""
		if c.Domain != DefaultDomain {
			domain = " --domain " + c.Domain
		}
		return fmt.Errorf("caDir %s: no CA there (%w); create it with `causeway certs init --cluster %s%s --out %s`",
			c.CADir, err, c.Cluster, domain, c.CADir)
	}
	return fmt.Errorf("caDir %s: load the cluster CA: %w", c.CADir, err)
}
