package federator

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// requireReservedImports checks that every clusterset IP of cluster's
// imports in etcd is reserved for that import's service, and that no two
// imports share one.
func requireReservedImports(t *testing.T, cli *clientv3.Client, cluster string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, store.Prefix+store.KindImports+"/"+cluster+"/", clientv3.WithPrefix())
	require.NoError(t, err)
	byIP := map[string]string{}
	for _, kv := range resp.Kvs {
		e, err := store.DecodeEntry(string(kv.Key), kv.Value)
		require.NoError(t, err)
		imp := e.GetImport()
		svc := imp.GetNamespace() + "/" + imp.GetName()
		for _, ip := range imp.GetIps() {
			require.NotContains(t, byIP, ip, "%s and %s share %s", byIP[ip], svc, ip)
			byIP[ip] = svc
			r, err := cli.Get(ctx, store.VIPKey(cluster, ip))
			require.NoError(t, err)
			require.Len(t, r.Kvs, 1, "import %s carries %s with no reservation", svc, ip)
			a := &causewayv1.VIPAllocation{}
			require.NoError(t, proto.Unmarshal(r.Kvs[0].Value, a))
			require.Equal(t, svc, a.GetNamespace()+"/"+a.GetName(), "import %s carries %s reserved by another service", svc, ip)
		}
	}
	return byIP
}

const westFourExports = `version: 1
services:
- {namespace: demo, name: a, ports: [{name: http, port: 80}], endpoints: [{address: 10.2.0.1}]}
- {namespace: demo, name: b, ports: [{name: http, port: 80}], endpoints: [{address: 10.2.0.2}]}
`

// F5: after a forced removal of a live east (imports and reservations
// deleted under its running federator), then a restart of east's
// federator with a new service, and after someone deletes east's
// reservations outright, every import of east still has an address of
// its own, reserved for it, and no two share one. On the old code the
// running federator rewrote imports from its cache with no reservation
// behind them, and the restarted one handed the same address out again.
func TestSecurityF5_NoVIPCollisionAfterForcedRemoval(t *testing.T) {
	secure := secureetcd.Start(t)
	cli := secure.Admin // the attacker: anyone who can write etcd
	fast := func(c *Config) { c.HealInterval = 300 * time.Millisecond }
	east := startRecordsCluster(t, cli, "east", 1, adminEchoExports, fast)
	west := startRecordsCluster(t, cli, "west", 2, westFourExports, nil)
	importsOf := func(n int) func(v *catalog.View) bool {
		return func(v *catalog.View) bool {
			ok := len(v.Imports("east")) == n
			for _, imp := range v.Imports("east") {
				ok = ok && len(imp.GetIps()) == 1
			}
			return ok
		}
	}
	adminWaitView(t, east.fed, "east imports a, b, echo", importsOf(3))
	requireReservedImports(t, cli, "east")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := store.New(cli, store.Options{}).RemoveCluster(ctx, "east")
	require.NoError(t, err)
	waitImportsInEtcd(t, cli, "east", 3)
	requireReservedImports(t, cli, "east")

	// East restarts (nothing cached) while west exports a new service.
	east.stop()
	require.NoError(t, os.WriteFile(west.path, []byte(westFourExports+
		"- {namespace: demo, name: c, ports: [{name: http, port: 80}], endpoints: [{address: 10.2.0.3}]}\n"), 0o644))
	cfg := east.fed.cfg
	east.start(t, cli, cfg)
	adminWaitView(t, east.fed, "east imports c too", importsOf(4))
	before := requireReservedImports(t, cli, "east")

	// Someone deletes east's reservations; west exports one more service.
	// The imports keep their addresses, the new one gets another.
	rawDelete(t, cli, store.VIPKey("east", ""), clientv3.WithPrefix())
	require.NoError(t, os.WriteFile(west.path, []byte(westFourExports+
		"- {namespace: demo, name: c, ports: [{name: http, port: 80}], endpoints: [{address: 10.2.0.3}]}\n"+
		"- {namespace: demo, name: d, ports: [{name: http, port: 80}], endpoints: [{address: 10.2.0.4}]}\n"), 0o644))
	adminWaitView(t, east.fed, "east imports d too", importsOf(5))
	deadline := time.Now().Add(healWithin)
	for {
		v := east.fed.Feed().View()
		seen := map[string]bool{}
		for _, imp := range v.Imports("east") {
			require.False(t, seen[imp.GetIps()[0]], "two imports share %s", imp.GetIps()[0])
			seen[imp.GetIps()[0]] = true
		}
		if reservedAll(t, cli, "east", v) {
			break
		}
		require.True(t, time.Now().Before(deadline), "reservations not restored within %s", healWithin)
		time.Sleep(100 * time.Millisecond) // polling etcd; bounded by deadline
	}
	after := requireReservedImports(t, cli, "east")
	for ip, svc := range before {
		require.Equal(t, svc, after[ip], "%s moved off %s", svc, ip)
	}
}

// waitImportsInEtcd waits, at most healWithin, until etcd holds n
// imports of cluster with an address each.
func waitImportsInEtcd(t *testing.T, cli *clientv3.Client, cluster string, n int) {
	t.Helper()
	deadline := time.Now().Add(healWithin)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := cli.Get(ctx, store.Prefix+store.KindImports+"/"+cluster+"/", clientv3.WithPrefix())
		cancel()
		got := 0
		if err != nil {
			resp = &clientv3.GetResponse{}
		}
		for _, kv := range resp.Kvs {
			if e, err := store.DecodeEntry(string(kv.Key), kv.Value); err == nil && len(e.GetImport().GetIps()) == 1 {
				got++
			}
		}
		if err == nil && got == n {
			return
		}
		require.True(t, time.Now().Before(deadline), "%d imports of %s in etcd, want %d", got, cluster, n)
		time.Sleep(50 * time.Millisecond) // polling etcd; bounded by deadline
	}
}

// reservedAll reports whether every import address of cluster in v has
// its reservation.
func reservedAll(t *testing.T, cli *clientv3.Client, cluster string, v *catalog.View) bool {
	t.Helper()
	for _, imp := range v.Imports(cluster) {
		for _, ip := range imp.GetIps() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, err := cli.Get(ctx, store.VIPKey(cluster, ip))
			cancel()
			if err != nil || len(r.Kvs) == 0 {
				return false
			}
		}
	}
	return true
}

// F7: east's gateway gw-0 announces itself; another east gateway
// credential (same SPIFFE ID, another key) announcing gw-0 with its own
// address is refused and the record stays gw-0's, also after the
// intruder's call ends. While gw-0's call lasts, a deleted record comes
// back; once it ends, the name is free for another key.
func TestSecurityF7_AnnounceBoundToIdentity(t *testing.T) {
	secure := secureetcd.Start(t)
	cli := secure.Admin // the attacker: anyone who can write etcd
	east := startSecureAdminCluster(t, secure, "east", 1, adminEchoExports)
	addr := east.serve(t, AdminOptions{})
	gw0 := causewayv1.NewCatalogClient(east.dial(t, addr, east.ca, "gateway"))
	intruder := causewayv1.NewCatalogClient(east.dial(t, addr, east.ca, "gateway"))
	key := store.GatewayKey("east", "gw-0")
	hasAddr := func(a string) func([]byte, int64) bool {
		return func(v []byte, lease int64) bool {
			e := decodes(key)(v)
			return e != nil && lease != 0 && len(e.GetGateway().GetAddresses()) == 1 && e.GetGateway().GetAddresses()[0] == a
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := gw0.AnnounceGateway(ctx, &causewayv1.AnnounceGatewayRequest{Instance: "gw-0", Addresses: []string{"127.0.0.1:4443"}})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err)
	waitEtcd(t, cli, key, healWithin, "gw-0 announced", hasAddr("127.0.0.1:4443"))

	ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer icancel()
	is, err := intruder.AnnounceGateway(ictx, &causewayv1.AnnounceGatewayRequest{Instance: "gw-0", Addresses: []string{"127.0.0.9:4443"}})
	require.NoError(t, err)
	_, err = is.Recv()
	require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)
	icancel()
	// The intruder's call has ended (its lease, if any, revoked): gw-0's
	// record is untouched.
	waitEtcd(t, cli, key, healWithin, "gw-0 still announced", hasAddr("127.0.0.1:4443"))

	// Deleted while gw-0's call lasts: it comes back.
	rawDelete(t, cli, key)
	waitEtcd(t, cli, key, healWithin, "gw-0 put back", hasAddr("127.0.0.1:4443"))

	// gw-0 goes away: the record goes, and another key may take the name.
	cancel()
	waitEtcd(t, cli, key, healWithin, "gw-0 withdrawn", func(v []byte, _ int64) bool { return v == nil })
	is, err = intruder.AnnounceGateway(context.Background(), &causewayv1.AnnounceGatewayRequest{Instance: "gw-0", Addresses: []string{"127.0.0.9:4443"}})
	require.NoError(t, err)
	_, err = is.Recv()
	require.NoError(t, err)
	waitEtcd(t, cli, key, healWithin, "the new gw-0", hasAddr("127.0.0.9:4443"))
}

// F2: an etcd writer forges east's export of demo/echo to point at an
// address east's source never listed and adds a demo/ssrf export under
// east's name. East's gateway reads its catalog from east's federator
// (a real catalog client over mutual TLS, as the gateway does): no view it
// ever receives lists a forged address for east, so the gateway never
// dials one. In etcd the forgeries are undone within seconds.
func TestSecurityF2_ForgedExportNotDialed(t *testing.T) {
	secure := secureetcd.Start(t)
	cli := secure.Admin // the attacker: anyone who can write etcd
	east := startSecureAdminCluster(t, secure, "east", 1, adminEchoExports)
	addr := east.serve(t, AdminOptions{})
	client := catalog.NewClient(causewayv1.NewCatalogClient(east.dial(t, addr, east.ca, "gateway")), catalog.Options{Cluster: "east", Component: "gateway"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { _ = client.Run(ctx) })

	// Record every own-export address any view of the gateway lists.
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	watching := make(chan struct{})
	wg.Go(func() {
		close(watching)
		for {
			changed := client.Changed()
			v := client.View()
			mu.Lock()
			for _, k := range v.ExportedServices() {
				if x, ok := v.Export(k, "east"); ok {
					seen[k.String()] = true
					for _, e := range x.GetEndpoints() {
						seen[k.String()+" "+e.GetAddress()] = true
					}
				}
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	})
	<-watching
	select {
	case <-client.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("gateway catalog not ready")
	}

	port := []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: causewayv1.Protocol_PROTOCOL_TCP}}
	trap := []*causewayv1.Endpoint{{Address: "127.0.0.1", Ready: true, TargetPorts: map[string]uint32{"http": 2379}}}
	echoKey, ssrfKey := store.ExportKeyOf("east", "demo", "echo"), store.ExportKeyOf("east", "demo", "ssrf")
	rawPut(t, cli, echoKey, marshalRaw(t, &causewayv1.ExportRecord{SchemaVersion: 1, Namespace: "demo", Name: "echo", Cluster: "east",
		Ports: port, Endpoints: trap}))
	rawPut(t, cli, ssrfKey, marshalRaw(t, &causewayv1.ExportRecord{SchemaVersion: 1, Namespace: "demo", Name: "ssrf", Cluster: "east",
		Ports: port, Endpoints: trap}))

	waitEtcd(t, cli, ssrfKey, healWithin, "forged ssrf export deleted", func(v []byte, _ int64) bool { return v == nil })
	waitEtcd(t, cli, echoKey, healWithin, "echo export put back", func(v []byte, _ int64) bool {
		e := decodes(echoKey)(v)
		return e != nil && len(e.GetExport().GetEndpoints()) == 1 && e.GetExport().GetEndpoints()[0].GetAddress() == "10.2.0.5"
	})
	// Everything the gateway was sent up to a later write has been seen.
	rawPut(t, cli, store.ClusterKey("marker"), marshalRaw(t, &causewayv1.ClusterRecord{SchemaVersion: 1, Name: "marker"}))
	waitCatalog(t, client, func(v *catalog.View) bool { _, ok := v.Cluster("marker"); return ok })
	mu.Lock()
	defer mu.Unlock()
	require.False(t, seen["demo/ssrf"], "the gateway was told east exports demo/ssrf")
	require.False(t, seen["demo/echo 127.0.0.1"], "the gateway was told to dial 127.0.0.1 for demo/echo")
	require.True(t, seen["demo/echo 10.2.0.5"])
}

// waitCatalog waits until cond holds for a catalog client's view.
func waitCatalog(t *testing.T, c *catalog.Client, cond func(*catalog.View) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch := c.Changed()
		if cond(c.View()) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("timed out waiting for the catalog")
		}
	}
}
