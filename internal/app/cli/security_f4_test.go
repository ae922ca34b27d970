package cli

import (
	"context"
	"crypto/x509"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// f4Cluster is a running federator of one cluster, on its own etcd user.
type f4Cluster struct {
	fed  *federator.Federator
	addr string // its mutual-TLS gRPC address (Catalog and Admin)
	tg   Target // its admin's CLI target
	stop func()
}

// startF4Cluster runs cluster's federator with its own etcd credentials,
// exporting demo/echo, and serves its Admin API.
func startF4Cluster(t *testing.T, s *secureetcd.Secure, name string, idx int) *f4Cluster {
	t.Helper()
	td := certs.TrustDomainFor(name, "clusterset.local")
	ca, tg := pki(t, td)
	exports := filepath.Join(t.TempDir(), "exports.yaml")
	require.NoError(t, os.WriteFile(exports, []byte("version: 1\nservices:\n- namespace: demo\n  name: echo\n  ports: [{name: http, port: 8080}]\n  endpoints: [{address: 10.9.0.5}]\n"), 0o644))
	f, err := federator.New(federator.Config{Cluster: name, TrustDomain: td, Instance: name + "-0", LeaderTTL: 2 * time.Second,
		VIPRanges:   []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 8, byte(idx), 0}), 24)},
		Authorities: certs.AuthoritiesDER([]*x509.Certificate{ca.Cert})}, store.New(s.ClusterClient(t, name), store.Options{}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx, &static.Source{Path: exports, Cluster: name, Interval: 50 * time.Millisecond})
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)

	cert, err := ca.NewLeafKeyPair("federator", time.Hour, time.Now())
	require.NoError(t, err)
	own := certs.NewBundleSet()
	own.Set(td, []*x509.Certificate{ca.Cert})
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(certs.ServerConfig(certs.TLSOptions{
		Source: certs.NewStaticSource(cert), Bundles: own, Authorize: certs.AuthorizeTrustDomain(td), NextProtos: []string{"h2"},
	}))))
	causewayv1.RegisterAdminServer(srv, f.AdminServer(federator.AdminOptions{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-served })
	tg.Addr = ln.Addr().String()
	return &f4Cluster{fed: f, addr: tg.Addr, tg: tg, stop: stop}
}

// TestSecurityF4_AdminCannotTouchOtherCluster: east's admin, through
// east's federator, can no longer drain, undrain or remove west (F4: it
// could); east's etcd user cannot write west's drain or delete its records
// either. The clusterset admin, directly in etcd, can: drain, undrain, and
// remove west once it stopped (a live west is refused without --force).
// Over 80 lines: one scenario whose steps share the federators and etcd it starts.
func TestSecurityF4_AdminCannotTouchOtherCluster(t *testing.T) {
	s := secureetcd.Start(t)
	east := startF4Cluster(t, s, "east", 1)
	west := startF4Cluster(t, s, "west", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		resp, err := s.Admin.Get(ctx, store.ExportKeyOf("west", "demo", "echo"), clientv3.WithCountOnly())
		l, lerr := store.New(s.Admin, store.Options{}).Liveness(ctx, "west")
		return err == nil && resp.Count == 1 && lerr == nil && l.Leader
	}, 15*time.Second, 20*time.Millisecond, "west never registered and led")

	c, err := Dial(east.tg)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Drain(ctx, "west", "", "attack")
	require.ErrorContains(t, err, "refused the call")
	require.ErrorContains(t, err, "clusterset-admin")
	_, err = c.Drain(ctx, "west", "demo/echo", "attack")
	require.ErrorContains(t, err, "refused the call")
	_, err = c.Undrain(ctx, "west", "")
	require.ErrorContains(t, err, "refused the call")
	_, err = c.RemoveCluster(ctx, "west", true)
	require.ErrorContains(t, err, "refused the call")
	// East's own cluster it still administers.
	d, err := c.Drain(ctx, "east", "", "maintenance")
	require.NoError(t, err)
	require.True(t, d.Changed)

	// Nor can east's federator credentials do it behind the API's back.
	eastCli := s.ClusterClient(t, "east")
	_, err = eastCli.Put(ctx, store.DrainKey("west", "", ""), "x")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = store.New(eastCli, store.Options{}).RemoveCluster(ctx, "west")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	for _, k := range []string{store.ClusterKey("west"), store.BundleKey("west"), store.ExportKeyOf("west", "demo", "echo")} {
		resp, err := s.Admin.Get(ctx, k, clientv3.WithCountOnly())
		require.NoError(t, err)
		require.Equal(t, int64(1), resp.Count, "%s survived", k)
	}
	resp, err := s.Admin.Get(ctx, store.DrainKey("west", "", ""), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count, "west not drained")

	// The clusterset admin can, directly in etcd.
	ca := s.AdminCreds
	adm, err := DialEtcd(EtcdOptions{Endpoints: []string{ca.Endpoint}, CAFile: ca.CAFile, ServerName: ca.ServerName,
		Username: ca.Username, PasswordFile: ca.PasswordFile})
	require.NoError(t, err)
	defer adm.Close()
	d, err = adm.Drain(ctx, "west", "", "clusterset maintenance")
	require.NoError(t, err)
	require.True(t, d.Changed)
	require.Eventually(t, func() bool {
		_, ok := east.fed.Feed().View().Entries()[store.RelativeKey(store.DrainKey("west", "", ""))]
		return ok
	}, 10*time.Second, 20*time.Millisecond, "east never saw west drained")
	u, err := adm.Undrain(ctx, "west", "")
	require.NoError(t, err)
	require.True(t, u.Changed)
	// East's user, used as if it were the clusterset admin, is refused.
	ec := s.ClusterCreds(t, "east")
	impostor, err := DialEtcd(EtcdOptions{Endpoints: []string{ec.Endpoint}, CAFile: ec.CAFile, ServerName: ec.ServerName,
		Username: ec.Username, PasswordFile: ec.PasswordFile})
	require.NoError(t, err)
	defer impostor.Close()
	_, err = impostor.Drain(ctx, "west", "", "attack")
	require.ErrorContains(t, err, "refused it for user \"causeway-east\"")
	_, err = impostor.RemoveCluster(ctx, "west", true)
	require.ErrorContains(t, err, "refused it for user")

	_, err = adm.RemoveCluster(ctx, "west", false)
	require.ErrorIs(t, err, ErrLive)
	west.stop()
	require.Eventually(t, func() bool {
		l, err := store.New(s.Admin, store.Options{}).Liveness(ctx, "west")
		return err == nil && !l.Live()
	}, 10*time.Second, 20*time.Millisecond)
	rm, err := adm.RemoveCluster(ctx, "west", false)
	require.NoError(t, err)
	require.Equal(t, 1, rm.Deleted.Clusters)
	require.Equal(t, 1, rm.Deleted.Exports)

}
