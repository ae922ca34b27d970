package federator

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMergeImport(t *testing.T) {
	old, young := timestamppb.New(time.Unix(100, 0)), timestamppb.New(time.Unix(200, 0))
	tcp := causewayv1.Protocol_PROTOCOL_TCP
	xs := []*causewayv1.ExportRecord{
		{Namespace: "demo", Name: "echo", Cluster: "west", Created: young, Type: causewayv1.ServiceType_SERVICE_TYPE_HEADLESS,
			Ports: []*causewayv1.ServicePort{{Name: "http", Port: 80, Protocol: tcp}, {Name: "metrics", Port: 9000, Protocol: tcp}}},
		{Namespace: "demo", Name: "echo", Cluster: "east", Created: old, Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			SessionAffinity: "None", Ports: []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: tcp}}},
		{Namespace: "demo", Name: "echo", Cluster: "alpha", Created: young,
			Ports: []*causewayv1.ServicePort{{Name: "grpc", Port: 8080, Protocol: tcp}}},
	}
	imp := MergeImport("north", xs)
	require.Equal(t, "north", imp.GetCluster())
	require.Equal(t, causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, imp.GetType(), "the oldest export wins")
	require.Equal(t, []string{"alpha", "east", "west"}, imp.GetClusters())
	var ports []string
	for _, p := range imp.GetPorts() {
		ports = append(ports, p.GetName())
	}
	// east (oldest) first; alpha's grpc/8080 clashes with http/8080 by
	// protocol+port; west's http is merged by name; metrics is new.
	require.Equal(t, []string{"http", "metrics"}, ports)
	require.Equal(t, uint32(8080), imp.GetPorts()[0].GetPort())
}

func TestFederatorsExportAndImport(t *testing.T) {
	_, cli := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()

	start := func(name string, idx int, exports string) (*Federator, string) {
		path := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(exports), 0o644))
		f, err := New(Config{Cluster: name, Region: "r", Zone: "z", TrustDomain: name + ".clusterset.local",
			VIPRanges:   []netip.Prefix{netip.MustParsePrefix("10.0." + string(rune('0'+idx)) + ".0/24")},
			Authorities: [][]byte{{1}}}, store.New(cli, store.Options{}))
		require.NoError(t, err)
		src := &static.Source{Path: path, Cluster: name, Interval: 20 * time.Millisecond}
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx, src) }()
		t.Cleanup(func() { cancel(); <-done })
		return f, path
	}
	const echo = "version: 1\nservices:\n- namespace: demo\n  name: echo\n  ports: [{name: http, port: 8080}]\n  endpoints: [{address: 10.1.0.5}]\n"
	east, eastPath := start("east", 1, echo)
	west, _ := start("west", 2, "version: 1\nservices: []\n")

	waitFor := func(f *Federator, what string, cond func(v *catalog.View) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			ch := f.Feed().Changed()
			if cond(f.Feed().View()) {
				return
			}
			select {
			case <-ch:
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	key := catalog.ServiceKey{Namespace: "demo", Name: "echo"}
	for _, f := range []*Federator{east, west} {
		own := f.cfg.Cluster
		waitFor(f, own+" import", func(v *catalog.View) bool {
			imp, ok := v.Import(own, key)
			return ok && len(imp.GetIps()) == 1
		})
	}
	westImp, _ := west.Feed().View().Import("west", key)
	require.True(t, netip.MustParsePrefix("10.0.2.0/24").Contains(netip.MustParseAddr(westImp.GetIps()[0])))
	require.Equal(t, []string{"east"}, westImp.GetClusters())

	// An invalid file keeps the last good exports.
	require.NoError(t, os.WriteFile(eastPath, []byte("version: 1\nservices:\n- namespace: Demo\n"), 0o644))
	require.Eventually(t, func() bool { return testutil.ToFloat64(east.metrics.sourceErrors) > 0 }, 10*time.Second, 10*time.Millisecond)
	_, ok := west.Feed().View().Import("west", key)
	require.True(t, ok, "a bad file withdrew the last good exports")
	xs, err := east.store.ListExportsOf(ctx, "east")
	require.NoError(t, err)
	require.Len(t, xs, 1)
	// A valid change is picked up.
	require.NoError(t, os.WriteFile(eastPath, []byte("version: 1\nservices: []\n"), 0o644))
	waitFor(west, "import removed", func(v *catalog.View) bool {
		_, ok := v.Import("west", key)
		return !ok
	})
}
