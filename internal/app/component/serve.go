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
	"slices"
	"strings"
	"sync/atomic"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/lib/admin"
	"github.com/causeway-mesh/causeway/internal/lib/rungroup"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// grpcStopGrace is how long in-flight calls get on shutdown before the
// server closes them (long-lived watches never end on their own).
const grpcStopGrace = time.Second

// serveGRPC serves srv on ln until ctx ends, then stops it gracefully
// within a second.
func serveGRPC(ctx context.Context, srv *grpc.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve grpc on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	t := time.NewTimer(grpcStopGrace)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		srv.Stop()
		<-stopped
	}
	<-errc
	return nil
}

// DialFederator opens a gRPC connection to a federator with a component's
// certificate, accepting only the federator identity fedID verified
// against bundles. addr may list several replicas separated by commas:
// the connection uses the first that answers and moves to another when it
// fails.
func DialFederator(addr string, cert certs.Source, bundles certs.BundleSource, fedID certs.ID) (*grpc.ClientConn, error) {
	creds := credentials.NewTLS(certs.ClientConfig(certs.TLSOptions{
		Source: cert, Bundles: bundles, Authorize: certs.AuthorizeID(fedID), NextProtos: []string{"h2"},
	}))
	return dialReplicas(addr, grpc.WithTransportCredentials(creds))
}

// dialReplicas connects to one address, or to any of a comma-separated
// list (pick-first over a static resolver).
func dialReplicas(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	target := addr
	if addrs := splitAddrs(addr); len(addrs) > 1 {
		r := manual.NewBuilderWithScheme("causeway-replicas")
		state := resolver.State{}
		for _, a := range addrs {
			state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
		}
		r.InitialState(state)
		target = r.Scheme() + ":///federator"
		opts = append(opts, grpc.WithResolvers(r))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to federator %s: %w", addr, err)
	}
	return conn, nil
}

// splitAddrs splits a comma-separated address list, dropping blanks.
func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// newRegistry is a component's metrics registry with the Go and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// listenTCP binds addr, naming what it is for in the error.
func listenTCP(addr, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for %s: %w", addr, what, err)
	}
	return ln, nil
}

// serveAdmin runs the admin HTTP server of a component in g.
func serveAdmin(g *rungroup.Group, ln net.Listener, adm *admin.Server) {
	g.Go("admin", func(ctx context.Context) error { return adm.Serve(ctx, ln) })
}

// catalogReady is a readiness check: the catalog has its first snapshot.
func catalogReady(c *catalog.Client) admin.Check {
	return func() error {
		if !c.IsReady() {
			return fmt.Errorf("no catalog snapshot yet")
		}
		return nil
	}
}

// clientIdentity is a gateway's or DNS shim's certificate, obtained from
// its federator's Certs.Sign and renewed at two thirds of its lifetime,
// and the trust it places in its own cluster's CA.
type clientIdentity struct {
	cfg   *ClientConfig
	id    certs.ID
	fedID certs.ID
	own   *certs.BundleSet // this cluster's CA: the federator is verified against it
	// pinned are caFile's CAs: always in own, whatever the federator serves.
	pinned []*x509.Certificate
	cert   *certs.Rotator
	boot   *grpc.ClientConn
	log    *slog.Logger
}

// newClientIdentity returns once the first certificate is issued (it
// retries, with back-off, until ctx ends: the federator may start later).
func newClientIdentity(ctx context.Context, c *ClientConfig, component string, log *slog.Logger) (*clientIdentity, error) {
	td := c.TrustDomain()
	id, err := certs.NewID(td, component)
	if err != nil {
		return nil, err
	}
	fedID, err := certs.NewID(td, "federator")
	if err != nil {
		return nil, err
	}
	cas, err := certs.ReadCertificatesFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	own := certs.NewBundleSet()
	own.Set(td, cas)
	creds := credentials.NewTLS(certs.ClientConfig(certs.TLSOptions{
		Bundles: own, Authorize: certs.AuthorizeID(fedID), NextProtos: []string{"h2"},
	}))
	boot, err := dialReplicas(c.Bootstrap, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	log.Info("requesting certificate", "id", id.String(), "bootstrap", c.Bootstrap)
	// Renewals prove the current leaf, so they use none of a join token's
	// uses (only a start without a valid leaf does).
	var current atomic.Pointer[certs.Rotator]
	signer := certs.NewSignClient(boot, certs.TokenFile(c.TokenFile)).WithRenewalProof(func() *tls.Certificate {
		if r := current.Load(); r != nil {
			if cert, err := r.Certificate(); err == nil {
				return cert
			}
		}
		return nil
	})
	rot, err := certs.NewRotator(ctx, certs.RotatorConfig{
		ID: id, Signer: signer, Logger: log,
		Diagnose: func(err error) string { return diagnoseSignError(err, c, component) },
	})
	if err != nil {
		boot.Close()
		return nil, err
	}
	current.Store(rot)
	return &clientIdentity{cfg: c, id: id, fedID: fedID, own: own, pinned: cas, cert: rot, boot: boot, log: log}, nil
}

// Run renews the certificate until ctx ends.
func (ci *clientIdentity) Run(ctx context.Context) error {
	defer ci.boot.Close()
	return ci.cert.Run(ctx)
}

// Catalog connects to the federator with the identity and returns a
// catalog client; run it in g.
func (ci *clientIdentity) Catalog(g *rungroup.Group, component string, reg prometheus.Registerer) (*catalog.Client, *grpc.ClientConn, error) {
	conn, err := DialFederator(ci.cfg.Federator, ci.cert, ci.own, ci.fedID)
	if err != nil {
		return nil, nil, err
	}
	client := catalog.NewClient(causewayv1.NewCatalogClient(conn), catalog.Options{
		Cluster: ci.cfg.Cluster, Component: component, Logger: ci.log, Registerer: reg})
	g.Go(component+" catalog", func(ctx context.Context) error {
		defer conn.Close()
		return client.Run(ctx)
	})
	g.Go("own trust bundle", func(ctx context.Context) error {
		followOwnBundle(ctx, client, ci.cfg.Cluster, ci.own, ci.pinned, ci.log)
		return nil
	})
	return client, conn, nil
}

// followOwnBundle keeps own's entry for the cluster equal to the local
// caFile's CAs plus the cluster's bundle as its federator serves it, so
// that a CA rotation reaches the component without a restart. The bundle
// arrives over the catalog connection, which verified the federator
// against own itself, and the federator serves its own bundle from its CA
// directory, never from etcd; the caFile CAs stay in any case, so nothing
// written to etcd can lock the component out of its federator.
func followOwnBundle(ctx context.Context, c *catalog.Client, cluster string, own *certs.BundleSet, pinned []*x509.Certificate, log *slog.Logger) {
	for {
		changed := c.Changed()
		if b, ok := c.View().Bundles()[cluster]; ok {
			td, auth, err := certs.CheckPublishedBundle(cluster, b)
			if err != nil {
				log.Warn("ignoring own cluster's bundle from the federator", "err", err)
			} else {
				own.Set(td, append(slices.Clone(pinned), auth...))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// federatorLostBound is how long a component may go without its
// federator (serving its last catalog, fail static) before /readyz says so.
const federatorLostBound = 2 * time.Minute

// identityCheck is a readiness check of a gateway or DNS shim: it fails,
// with the reason, when its certificate is about to expire without having
// been renewed (less than a sixth of its lifetime left, so renewal has been
// failing since two thirds), or when its catalog has been cut off from the
// federator for longer than federatorLostBound.
func identityCheck(cert *certs.Rotator, c *catalog.Client, now func() time.Time) admin.Check {
	return identityReady(cert, func() time.Time { return c.View().StaleSince }, now)
}

// identityReady is IdentityReady with the catalog's staleness as a function.
func identityReady(cert *certs.Rotator, staleSince func() time.Time, now func() time.Time) admin.Check {
	return func() error {
		t := now()
		if cert != nil {
			notAfter, renewAt := cert.NotAfter(), cert.RenewAt()
			if t.After(renewAt) && notAfter.Sub(t) < notAfter.Sub(renewAt)/2 {
				return fmt.Errorf("certificate expires at %s and could not be renewed since %s: check the federator's bootstrap address, tokenFile and caFile (logs: \"renew certificate failed\")",
					notAfter.UTC().Format(time.RFC3339), renewAt.UTC().Format(time.RFC3339))
			}
		}
		if since := staleSince(); !since.IsZero() && t.Sub(since) > federatorLostBound {
			return fmt.Errorf("lost the federator since %s (serving the last catalog): check that it runs and that caFile verifies it",
				since.UTC().Format(time.RFC3339))
		}
		return nil
	}
}

// diagnoseSignError tells the permanent errors of a component's request
// for its certificate (errors retrying does not fix until the operator
// changes the token file or the CA file) from transient ones (federator
// unreachable, still starting), returning an operator's hint for the
// permanent ones and "" otherwise.
func diagnoseSignError(err error, c *ClientConfig, component string) string {
	var (
		unknownAuthority x509.UnknownAuthorityError
		certInvalid      x509.CertificateInvalidError
		hostname         x509.HostnameError
	)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("tokenFile %s cannot be read: it must hold a join token issued for component %s (or a ServiceAccount token)", c.TokenFile, component)
	case status.Code(err) == codes.Unauthenticated:
		return fmt.Sprintf("the federator rejected the token in tokenFile %s: it must hold a join token issued for component %s by this cluster's federator (or a ServiceAccount token it accepts)", c.TokenFile, component)
	case status.Code(err) == codes.PermissionDenied:
		return fmt.Sprintf("tokenFile %s holds a token of another component: it must hold a join token issued for component %s", c.TokenFile, component)
	case errors.As(err, &unknownAuthority), errors.As(err, &certInvalid), errors.As(err, &hostname),
		errors.Is(err, certs.ErrUnknownTrustDomain),
		strings.Contains(err.Error(), "certificate signed by unknown authority"), strings.Contains(err.Error(), "unknown trust domain"):
		// gRPC reports handshake failures as Unavailable with the TLS error
		// flattened to text: the text is all there is to check.
		return fmt.Sprintf("the federator at %s is not verified by caFile %s: caFile must be this cluster's bundle.crt / ca.crt (and bootstrap this cluster's federator)", c.Bootstrap, c.CAFile)
	}
	return ""
}
