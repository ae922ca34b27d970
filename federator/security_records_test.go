package federator

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// The catalog client checks records against the schema version the store
// writes.
func TestCatalogReadsTheStoreSchemaVersion(t *testing.T) {
	require.Equal(t, store.SchemaVersion, catalog.SchemaVersion)
}

// F8: an etcd writer puts 10 garbage bytes at west's cluster record, a
// bundle of a future schema version at west's bundle and a future export
// at west's export (west's federator is stopped, so nothing heals them).
// East's federator, a reader, keeps west's last good values: west stays a
// member with its bundle and export, and the bad values are counted. On
// the old code they counted as deletions and west vanished.
func TestSecurityF8_UndecodableRecordKeepsLastGood(t *testing.T) {
	secure := secureetcd.Start(t)
	cli := secure.Admin // the attacker: anyone who can write etcd
	east := startSecureAdminCluster(t, secure, "east", 1, adminEchoExports)
	west := startSecureAdminCluster(t, secure, "west", 2, adminEchoClockExports)
	trustEachOther(t, east, west)
	echo := catalog.ServiceKey{Namespace: "demo", Name: "echo"}
	adminWaitView(t, east.fed, "west's records", func(v *catalog.View) bool {
		_, c := v.Cluster("west")
		_, b := v.Bundles()["west"]
		_, x := v.Export(echo, "west")
		return c && b && x
	})
	west.stop()

	rawPut(t, cli, store.ClusterKey("west"), "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff")
	rawPut(t, cli, store.BundleKey("west"), marshalRaw(t, &causewayv1.TrustBundle{SchemaVersion: 2, Cluster: "west", TrustDomain: west.td}))
	rawPut(t, cli, store.ExportKeyOf("west", "demo", "echo"), marshalRaw(t, &causewayv1.ExportRecord{SchemaVersion: 2, Namespace: "demo", Name: "echo", Cluster: "west"}))
	// A marker written after the bad values: once east sees it, it has
	// seen them too.
	rawPut(t, cli, store.ClusterKey("marker"), marshalRaw(t, &causewayv1.ClusterRecord{SchemaVersion: 1, Name: "marker"}))
	adminWaitView(t, east.fed, "the marker", func(v *catalog.View) bool { _, ok := v.Cluster("marker"); return ok })

	v := east.fed.Feed().View()
	c, ok := v.Cluster("west")
	require.True(t, ok, "an undecodable cluster record removed west")
	require.Equal(t, "r-west", c.GetRegion())
	require.Contains(t, v.Bundles(), "west", "a bundle of an unknown version removed west's bundle")
	x, ok := v.Export(echo, "west")
	require.True(t, ok, "an export of an unknown version removed west's export")
	require.NotEmpty(t, x.GetEndpoints())
	_, ok = v.Import("east", echo)
	require.True(t, ok)
}

// F8/F4: every record east's federator owns comes back within seconds
// when an etcd writer deletes it, corrupts it, writes a future schema
// version or changes what it says: the cluster record, the trust bundle,
// an export (and a forged extra export is deleted), and the gateway
// record (also when replaced by a lease-less one).
// Over 80 lines: a table of cases, each a few lines.
func TestSecurityF8_OwnRecordsHeal(t *testing.T) {
	secure := secureetcd.Start(t)
	cli := secure.Admin // the attacker: anyone who can write etcd
	east := startSecureAdminCluster(t, secure, "east", 1, adminEchoExports)
	east.announceGateway(t, "127.0.0.1:4443")
	adminWaitView(t, east.fed, "east registered with a gateway and an export", func(v *catalog.View) bool {
		_, x := v.Export(catalog.ServiceKey{Namespace: "demo", Name: "echo"}, "east")
		return len(v.Gateways("east")) == 1 && x
	})
	clusterKey, bundleKey := store.ClusterKey("east"), store.BundleKey("east")
	exportKey, gatewayKey := store.ExportKeyOf("east", "demo", "echo"), store.GatewayKey("east", "gw-0")
	goodCluster := func(v []byte, _ int64) bool {
		e := decodes(clusterKey)(v)
		return e != nil && e.GetCluster().GetRegion() == "r-east"
	}
	goodBundle := func(v []byte, _ int64) bool {
		e := decodes(bundleKey)(v)
		return e != nil && len(e.GetBundle().GetX509Authorities()) == 1 &&
			bytes.Equal(e.GetBundle().GetX509Authorities()[0], east.ca.Cert.Raw)
	}
	goodExport := func(v []byte, _ int64) bool {
		e := decodes(exportKey)(v)
		eps := e.GetExport().GetEndpoints()
		return e != nil && len(eps) == 1 && eps[0].GetAddress() == "10.2.0.5"
	}
	goodGateway := func(v []byte, lease int64) bool {
		e := decodes(gatewayKey)(v)
		return e != nil && lease != 0 && proto.Equal(e.GetGateway(), &causewayv1.GatewayRecord{SchemaVersion: 1,
			Cluster: "east", Instance: "gw-0", Addresses: []string{"127.0.0.1:4443"},
			AnnouncerKeySha256: e.GetGateway().GetAnnouncerKeySha256()}) && len(e.GetGateway().GetAnnouncerKeySha256()) == 32
	}
	otherCA := marshalRaw(t, &causewayv1.TrustBundle{SchemaVersion: 1, Cluster: "east", TrustDomain: east.td,
		X509Authorities: [][]byte{east.ca.Cert.Raw, []byte("forged CA")}})
	forgedExport := marshalRaw(t, &causewayv1.ExportRecord{SchemaVersion: 1, Namespace: "demo", Name: "echo", Cluster: "east",
		Ports:     []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
		Endpoints: []*causewayv1.Endpoint{{Address: "127.0.0.1", Ready: true}}})
	leaseless := marshalRaw(t, &causewayv1.GatewayRecord{SchemaVersion: 1, Cluster: "east", Instance: "gw-0", Addresses: []string{"127.0.0.9:4443"}})
	future := func(m proto.Message) string { return marshalRaw(t, m) }
	const onLease = "on-lease:"

	for _, tc := range []struct {
		name  string
		key   string
		write string // "" deletes
		good  func([]byte, int64) bool
	}{
		{"cluster deleted", clusterKey, "", goodCluster},
		{"cluster garbage", clusterKey, "\xff\xff\xff", goodCluster},
		{"cluster future version", clusterKey, future(&causewayv1.ClusterRecord{SchemaVersion: 2, Name: "east"}), goodCluster},
		{"cluster changed", clusterKey, future(&causewayv1.ClusterRecord{SchemaVersion: 1, Name: "east", Region: "elsewhere", TrustDomain: east.td}), goodCluster},
		{"bundle deleted", bundleKey, "", goodBundle},
		{"bundle garbage", bundleKey, "\x0a", goodBundle},
		{"bundle future version", bundleKey, future(&causewayv1.TrustBundle{SchemaVersion: 2, Cluster: "east"}), goodBundle},
		{"bundle with a forged CA", bundleKey, otherCA, goodBundle},
		{"export deleted", exportKey, "", goodExport},
		{"export garbage", exportKey, "\xff", goodExport},
		{"export future version", exportKey, future(&causewayv1.ExportRecord{SchemaVersion: 2, Namespace: "demo", Name: "echo", Cluster: "east"}), goodExport},
		{"export forged endpoint", exportKey, forgedExport, goodExport},
		{"gateway deleted", gatewayKey, "", goodGateway},
		{"gateway lease-less", gatewayKey, leaseless, goodGateway},
		{"gateway garbage", gatewayKey, "\xff", goodGateway},
		{"gateway forged on its own lease", gatewayKey, onLease + leaseless, goodGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waitEtcd(t, cli, tc.key, healWithin, "good before", tc.good)
			switch value, ok := strings.CutPrefix(tc.write, onLease); {
			case tc.write == "":
				rawDelete(t, cli, tc.key)
			case ok: // keep the key's lease: only the value changes
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := cli.Put(ctx, tc.key, value, clientv3.WithIgnoreLease())
				cancel()
				require.NoError(t, err)
			default:
				rawPut(t, cli, tc.key, tc.write)
			}
			waitEtcd(t, cli, tc.key, healWithin, "put back", tc.good)
		})
	}

	// A forger copying the record's announcer key onto its own lease, with
	// its own address: put back too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cur, err := cli.Get(ctx, gatewayKey)
	require.NoError(t, err)
	require.Len(t, cur.Kvs, 1)
	stolen := decodes(gatewayKey)(cur.Kvs[0].Value).GetGateway()
	forged := proto.Clone(stolen).(*causewayv1.GatewayRecord)
	forged.Addresses = []string{"127.0.0.9:4443"}
	_, err = cli.Put(ctx, gatewayKey, marshalRaw(t, forged), clientv3.WithIgnoreLease())
	require.NoError(t, err)
	waitEtcd(t, cli, gatewayKey, healWithin, "gateway with a copied key put back", goodGateway)

	// An export east's source does not list, written under east's name,
	// is deleted.
	ssrf := store.ExportKeyOf("east", "demo", "ssrf")
	rawPut(t, cli, ssrf, marshalRaw(t, &causewayv1.ExportRecord{SchemaVersion: 1, Namespace: "demo", Name: "ssrf", Cluster: "east",
		Ports: []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: causewayv1.Protocol_PROTOCOL_TCP}}}))
	waitEtcd(t, cli, ssrf, healWithin, "forged export deleted", func(v []byte, _ int64) bool { return v == nil })
}

// F1 (lease-less records): a gateway record written without a lease is
// not a live instance: no federator's view (so no gateway) has it.
func TestSecurityF1_LeaselessGatewayRecordIgnored(t *testing.T) {
	secure := secureetcd.Start(t)
	cli := secure.Admin // the attacker: anyone who can write etcd
	east := startSecureAdminCluster(t, secure, "east", 1, adminEchoExports)
	west := startSecureAdminCluster(t, secure, "west", 2, adminEchoExports)
	west.announceGateway(t, "127.0.0.1:4443")
	adminWaitView(t, east.fed, "west's gateway", func(v *catalog.View) bool { return len(v.Gateways("west")) == 1 })

	rawPut(t, cli, store.GatewayKey("west", "gw-evil"), marshalRaw(t, &causewayv1.GatewayRecord{SchemaVersion: 1,
		Cluster: "west", Instance: "gw-evil", Addresses: []string{"127.0.0.9:4443"}}))
	rawPut(t, cli, store.ClusterKey("marker"), marshalRaw(t, &causewayv1.ClusterRecord{SchemaVersion: 1, Name: "marker"}))
	adminWaitView(t, east.fed, "the marker", func(v *catalog.View) bool { _, ok := v.Cluster("marker"); return ok })
	for _, gw := range east.fed.Feed().View().Gateways("west") {
		require.NotEqual(t, "gw-evil", gw.GetInstance(), "a lease-less record was taken for a live gateway")
	}
	// A federator started now (a fresh list, not a watch) ignores it too.
	north := startSecureAdminCluster(t, secure, "north", 3, adminEchoExports)
	adminWaitView(t, north.fed, "synced", func(v *catalog.View) bool { _, ok := v.Cluster("marker"); return ok })
	require.Len(t, north.fed.Feed().View().Gateways("west"), 1)
	require.Equal(t, "gw-0", north.fed.Feed().View().Gateways("west")[0].GetInstance())
}

// F4: a clusterset admin removes east while it is live (as `clusters
// remove --force` does, straight in etcd). East's running federator and
// gateway put everything back by themselves within seconds: cluster
// record, bundle, export, gateway record, and east is whole again in
// west's view.
func TestSecurityF4_RemovedLiveClusterComesBack(t *testing.T) {
	secure := secureetcd.Start(t)
	cli := secure.Admin // the attacker: anyone who can write etcd
	east := startSecureAdminCluster(t, secure, "east", 1, adminEchoClockExports)
	west := startSecureAdminCluster(t, secure, "west", 2, adminEchoExports)
	trustEachOther(t, east, west)
	east.announceGateway(t, "127.0.0.1:4443")
	echo := catalog.ServiceKey{Namespace: "demo", Name: "echo"}
	whole := func(v *catalog.View) bool {
		_, c := v.Cluster("east")
		_, b := v.Bundles()["east"]
		_, x := v.Export(echo, "east")
		_, i := v.Import("east", echo)
		return c && b && x && i && len(v.Gateways("east")) == 1
	}
	adminWaitView(t, west.fed, "east whole", whole)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	removed, err := store.New(cli, store.Options{}).RemoveCluster(ctx, "east")
	require.NoError(t, err)
	require.Equal(t, 1, removed.Clusters)
	require.Equal(t, 1, removed.Gateways)
	require.Contains(t, []int{1, 2}, removed.Bundles, "its bundle, and its trust state of west once persisted")
	require.Equal(t, 2, removed.Exports)

	for _, key := range []string{store.ClusterKey("east"), store.BundleKey("east"), store.ExportKeyOf("east", "demo", "echo"),
		store.ExportKeyOf("east", "demo", "clock"), store.GatewayKey("east", "gw-0"), store.ImportKey("east", "demo", "echo")} {
		waitEtcd(t, cli, key, healWithin, key+" back", func(v []byte, _ int64) bool { return decodes(key)(v) != nil })
	}
	adminWaitView(t, west.fed, "east whole again", whole)
	requireReservedImports(t, cli, "east")
}
