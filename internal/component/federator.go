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
	"github.com/causeway-mesh/causeway/internal/admin"
	"github.com/causeway-mesh/causeway/internal/rungroup"
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

// RunFederator runs a federator replica until ctx ends: the export source
// and import sink of the configuration, leader election, the gRPC servers
// (Catalog and Admin over mutual TLS; Certs.Sign on the bootstrap
// listener) and the admin HTTP endpoints. Every listener is bound before
// anything starts, so a port in use fails the start with its address.
func RunFederator(ctx context.Context, c *FederatorConfig, log *slog.Logger) error {
	log = log.With("cluster", c.Cluster)
	logDeprecations(log, c.Deprecations)
	cas, err := certs.LoadCASet(c.CADir)
	if err != nil {
		return caDirError(c, err)
	}
	if td := cas.TrustDomain(); td != c.TrustDomain() {
		return fmt.Errorf("CA directory %s is of trust domain %s, not %s (cluster %s, domain %s)",
			c.CADir, td, c.TrustDomain(), c.Cluster, c.Domain)
	}
	// Every local input is checked before the first etcd write (register):
	// a refused start leaves nothing of the cluster in etcd.
	if err := c.validateLocalFiles(); err != nil {
		return err
	}
	vips, _ := c.vipRanges() // validated
	reg := newRegistry()

	grpcLn, err := listenTCP(c.Listen.GRPC, "federator gRPC")
	if err != nil {
		return err
	}
	defer grpcLn.Close()
	bootLn, err := listenTCP(c.Listen.Bootstrap, "federator bootstrap (Certs.Sign)")
	if err != nil {
		return err
	}
	defer bootLn.Close()
	adminLn, err := listenTCP(c.Listen.HTTP, "federator HTTP (metrics, health)")
	if err != nil {
		return err
	}
	defer adminLn.Close()

	cli, err := NewEtcdClient(c.Etcd)
	if err != nil {
		return err
	}
	defer cli.Close()
	st := store.New(cli, store.Options{Logger: log, Registerer: reg})

	fcfg := federator.Config{
		Cluster: c.Cluster, Region: c.Region, Zone: c.Zone, VIPRanges: vips,
		TrustDomain: c.TrustDomain(), CAs: cas, Instance: c.Instance, LeaderTTL: c.LeaderTTL.Duration,
		TrustPins: c.TrustPins, Logger: log, Registerer: reg,
	}
	var (
		kubeCS kubernetes.Interface
		mcs    mcsclient.Interface
	)
	if k := c.Exports.Kubernetes; k != nil {
		if kubeCS, mcs, err = kubeClients(k.Kubeconfig); err != nil {
			return err
		}
		sink, err := kube.NewSink(kube.SinkConfig{Cluster: c.Cluster, Kube: kubeCS, MCS: mcs, GatewayService: k.GatewayService, Logger: log})
		if err != nil {
			return err
		}
		fcfg.Sink = sink
		fcfg.EgressPorts, _ = parsePortRange(k.EgressPorts) // validated
	}
	fed, err := federator.New(fcfg, st)
	if err != nil {
		return err
	}
	var src federator.ExportSource
	if k := c.Exports.Kubernetes; k != nil {
		if src, err = kube.NewSource(kube.SourceConfig{Cluster: c.Cluster, DefaultZone: k.DefaultZone, Kube: kubeCS, MCS: mcs,
			Feed: fed.Feed(), Logger: log}); err != nil {
			return err
		}
	} else {
		src = &static.Source{Path: c.Exports.Static, Cluster: c.Cluster, DefaultZone: c.Zone, Logger: log}
	}
	auth, err := c.authenticator(kubeCS)
	if err != nil {
		return err
	}
	certsSrv, err := federator.NewCertsServer(federator.CertsServerConfig{
		Cluster: c.Cluster, TrustDomain: c.TrustDomain(), CA: cas, Components: c.Signing.Components,
		Lifetime: c.Signing.Lifetime.Duration, Authenticator: auth, Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}

	g := rungroup.New(ctx)
	g.Go("ca directory", (&certs.CADirWatcher{Dir: c.CADir, Set: cas, Interval: c.CAReloadInterval.Duration, Logger: log}).Run)
	fedID, err := certs.NewID(c.TrustDomain(), "federator")
	if err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cert, err := certs.NewRotator(ictx, certs.RotatorConfig{ID: fedID, Logger: log, Renew: cas.Changed,
		Signer: &certs.LocalSigner{CA: cas, Lifetime: federatorCertLifetime}})
	cancel()
	if err != nil {
		_ = g.Stop()
		return fmt.Errorf("issue the federator's certificate: %w", err)
	}
	g.Go("federator certificate", cert.Run)
	if err := certs.RegisterExpiry(reg, "federator", cert); err != nil {
		_ = g.Stop()
		return err
	}
	g.Go("federator", func(ctx context.Context) error { return fed.Run(ctx, src) })

	watchLimit, err := federator.NewWatchLimiter(federator.WatchLimitConfig{PerIdentity: c.Limits.WatchStreamsPerIdentity, Registerer: reg})
	if err != nil {
		_ = g.Stop()
		return err
	}
	mtls := grpc.NewServer(append(c.Limits.grpcServerOptions(), grpc.StreamInterceptor(watchLimit.StreamInterceptor()),
		grpc.Creds(credentials.NewTLS(certs.ServerConfig(certs.TLSOptions{
			Source: cert, Bundles: cas, Authorize: certs.AuthorizeTrustDomain(c.TrustDomain()), NextProtos: []string{"h2"},
		}))))...)
	causewayv1.RegisterCatalogServer(mtls, fed.CatalogServer())
	causewayv1.RegisterAdminServer(mtls, fed.AdminServer(federator.AdminOptions{}))
	g.Go("grpc", func(ctx context.Context) error { return ServeGRPC(ctx, mtls, grpcLn) })

	boot := grpc.NewServer(append(c.Limits.grpcServerOptions(), grpc.Creds(credentials.NewTLS(certs.BootstrapServerConfig(certs.TLSOptions{
		Source: cert, NextProtos: []string{"h2"},
	}))))...)
	causewayv1.RegisterCertsServer(boot, certsSrv)
	g.Go("bootstrap grpc", func(ctx context.Context) error { return ServeGRPC(ctx, boot, bootLn) })

	serveAdmin(g, adminLn, admin.New(reg, map[string]admin.Check{"federator": fed.Ready}))
	log.Info("federator started", "grpc", grpcLn.Addr().String(), "bootstrap", bootLn.Addr().String(),
		"http", adminLn.Addr().String(), "trustDomain", c.TrustDomain())
	return g.Wait()
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
		return nil, nil, fmt.Errorf("kubernetes client config: %w", err)
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
