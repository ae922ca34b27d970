package dnsshim

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestAnswersFollowTheFederation runs the real path: east's federator
// publishes exports from a static file into etcd, west's federator mirrors
// them and serves Catalog.Watch, west's catalog client feeds west's shim.
// Every change must show in DNS answers within the propagation time.
// Over 80 lines: one scenario whose steps share the servers it starts.
func TestAnswersFollowTheFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two federators")
	}
	_, cli := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	var stops []chan error

	startFederator := func(name, vips, exports string) (*federator.Federator, string) {
		path := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(exports), 0o644))
		f, err := federator.New(federator.Config{Cluster: name, TrustDomain: name + ".clusterset.local",
			VIPRanges: []netip.Prefix{netip.MustParsePrefix(vips)}, Authorities: [][]byte{{1}}},
			store.New(cli, store.Options{}))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			done <- f.Run(ctx, &static.Source{Path: path, Cluster: name, DefaultZone: "z", Interval: 20 * time.Millisecond})
		}()
		stops = append(stops, done)
		return f, path
	}
	_, eastFile := startFederator("east", "10.1.0.0/24", "version: 1\nservices: []\n")
	west, _ := startFederator("west", "10.2.0.0/24", "version: 1\nservices: []\n")
	// east's gateway, announced as Federator.AnnounceGateway does (a record
	// on a 5 s lease), by hand so the test can let the lease expire.
	st := store.New(cli, store.Options{})
	announce := func() *concurrency.Session {
		sess, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
		require.NoError(t, err)
		require.NoError(t, st.RegisterGateway(ctx, sess, &causewayv1.GatewayRecord{Cluster: "east", Instance: "gw-0", Addresses: []string{"127.0.0.1:1"}}))
		t.Cleanup(func() { _ = sess.Close() })
		return sess
	}
	gw := announce()

	// west's catalog over real gRPC.
	gs := grpc.NewServer()
	causewayv1.RegisterCatalogServer(gs, west.CatalogServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	cat := catalog.NewClient(causewayv1.NewCatalogClient(conn), catalog.Options{Cluster: "west"})
	catDone := make(chan error, 1)
	go func() { catDone <- cat.Run(ctx) }()
	stops = append(stops, catDone)
	t.Cleanup(func() {
		cancel()
		for _, s := range stops {
			<-s
		}
		_ = conn.Close()
		gs.Stop()
	})
	addr, _, _ := startServer(t, cat)

	lookup := func(name string) (int, []string) {
		r := query(t, addr, "udp", name, dns.TypeA, false)
		var ips []string
		for _, rr := range r.Answer {
			ips = append(ips, rr.(*dns.A).A.String())
		}
		slices.Sort(ips)
		return r.Rcode, ips
	}
	// eventually polls DNS until the answer matches, within the propagation
	// time (a static-file reload, an etcd write and a catalog delta).
	eventually := func(what, name string, rcode int, ips []string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			changed := cat.Changed()
			gotRcode, gotIPs := lookup(name)
			if gotRcode == rcode && slices.Equal(gotIPs, ips) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s answers %s %v, want %s %v", what, name,
					dns.RcodeToString[gotRcode], gotIPs, dns.RcodeToString[rcode], ips)
			}
			select {
			case <-changed:
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	const echo = "echo.demo.svc.clusterset.local."
	const db = "db.demo.svc.clusterset.local."
	eventually("nothing exported", echo, dns.RcodeNameError, nil)

	write := func(doc string) { require.NoError(t, os.WriteFile(eastFile, []byte(doc), 0o644)) }
	write(`version: 1
services:
- {namespace: demo, name: echo, ports: [{name: http, port: 80}], endpoints: [{address: 10.8.0.1}]}
- namespace: demo
  name: db
  type: Headless
  ports: [{name: pg, port: 5432}]
  endpoints: [{address: 10.8.1.1}, {address: 10.8.1.2}]
`)
	eventually("export added", echo, dns.RcodeSuccess, []string{"10.2.0.1"})
	eventually("headless endpoints", db, dns.RcodeSuccess, []string{"10.8.1.1", "10.8.1.2"})

	write(`version: 1
services:
- {namespace: demo, name: echo, ports: [{name: http, port: 80}], endpoints: [{address: 10.8.0.1}]}
- namespace: demo
  name: db
  type: Headless
  ports: [{name: pg, port: 5432}]
  endpoints: [{address: 10.8.1.1, ready: false}, {address: 10.8.1.2}]
`)
	eventually("endpoint unready", db, dns.RcodeSuccess, []string{"10.8.1.2"})

	require.NoError(t, st.PutDrain(ctx, &causewayv1.DrainRecord{Cluster: "east", Reason: "test"}))
	eventually("east drained", db, dns.RcodeNameError, nil)
	require.NoError(t, st.DeleteDrain(ctx, "east", "", ""))
	eventually("east undrained", db, dns.RcodeSuccess, []string{"10.8.1.2"})

	// east's gateway dies without revoking its lease (a crash, a partition):
	// its headless endpoints leave the answers once the 5 s lease expires,
	// plus the propagation time. The ClusterSetIP answer stays: it is west's
	// own VIP, and west's gateway routes around the dead cluster.
	gw.Orphan()
	dead := time.Now()
	eventually("east's gateway lease expired", db, dns.RcodeNameError, nil)
	require.Less(t, time.Since(dead), 5*time.Second+3*time.Second, "dropped within the lease TTL and the propagation time")
	eventually("ClusterSetIP kept", echo, dns.RcodeSuccess, []string{"10.2.0.1"})
	announce()
	eventually("east's gateway back", db, dns.RcodeSuccess, []string{"10.8.1.2"})

	write("version: 1\nservices: []\n")
	eventually("export removed", echo, dns.RcodeNameError, nil)
	eventually("headless removed", db, dns.RcodeNameError, nil)
}
