package federator

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/static"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// With the federation etcd down, federators keep their last catalog,
// report degraded readiness and delete nothing; when it returns they
// reconcile without rewriting unchanged records.
func TestFailStaticEtcdOutage(t *testing.T) {
	ec := etcdtest.StartCluster(t, 1)
	dir := t.TempDir()
	const echo = "version: 1\nservices:\n- namespace: demo\n  name: echo\n  ports: [{name: http, port: 8080}]\n  endpoints: [{address: 10.1.0.5}]\n"
	start := func(name, exports string, idx int) (*Federator, string) {
		path := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(exports), 0o644))
		f, err := New(Config{Cluster: name, TrustDomain: name + ".clusterset.local", Authorities: [][]byte{{1}},
			LeaderTTL: 2 * time.Second, Instance: name + "-0",
			VIPRanges: []netip.Prefix{netip.MustParsePrefix("10.0." + string(rune('0'+idx)) + ".0/24")}},
			store.New(ec.NewClient(), store.Options{}))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx, &static.Source{Path: path, Cluster: name, Interval: 20 * time.Millisecond}) }()
		t.Cleanup(func() { cancel(); <-done })
		return f, path
	}
	east, _ := start("east", echo, 1)
	west, westPath := start("west", "version: 1\nservices: []\n", 2)
	key := catalog.ServiceKey{Namespace: "demo", Name: "echo"}
	imported := func(f *Federator) func() bool {
		return func() bool {
			imp, ok := f.Feed().View().Import(f.cfg.Cluster, key)
			return ok && len(imp.GetIps()) == 1
		}
	}
	require.Eventually(t, imported(east), 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, imported(west), 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return east.Ready() == nil && west.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	before := modRevisions(t, ec.Client())

	ec.StopMember(0)
	for _, f := range []*Federator{east, west} {
		require.Eventually(t, func() bool { return errors.Is(f.Ready(), ErrEtcdUnreachable) }, 10*time.Second, 20*time.Millisecond,
			"%s does not report etcd unreachable", f.cfg.Cluster)
	}
	// Past the leader lease: writers stopped, the last catalog still served.
	require.Eventually(t, func() bool { return !east.IsLeader() && !west.IsLeader() }, 10*time.Second, 20*time.Millisecond)
	require.True(t, imported(west)(), "west lost its import while etcd was down")
	_, ok := west.Feed().View().Export(key, "east")
	require.True(t, ok, "west lost east's export while etcd was down")

	ec.RestartMember(0)
	require.Eventually(t, func() bool { return east.Ready() == nil && west.Ready() == nil }, 20*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return east.IsLeader() && west.IsLeader() }, 20*time.Second, 20*time.Millisecond)
	// A change after recovery proves both sides reconciled again...
	require.NoError(t, os.WriteFile(westPath, []byte("version: 1\nservices:\n- namespace: demo\n  name: web\n  ports: [{port: 80}]\n  endpoints: [{address: 10.2.0.5}]\n"), 0o644))
	web := catalog.ServiceKey{Namespace: "demo", Name: "web"}
	require.Eventually(t, func() bool { _, ok := east.Feed().View().Import("east", web); return ok }, 20*time.Second, 20*time.Millisecond)
	// ...and nothing that was unchanged was rewritten.
	after := modRevisions(t, ec.Client())
	for k, rev := range before {
		require.Equal(t, rev, after[k], "%s rewritten after the outage", k)
	}
}

// modRevisions maps every export, import and VIP key to its ModRevision.
func modRevisions(t *testing.T, cli *clientv3.Client) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, kind := range []string{store.KindExports, store.KindImports, store.KindVIPs} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Get(ctx, store.Prefix+kind+"/", clientv3.WithPrefix())
		cancel()
		require.NoError(t, err)
		for _, kv := range resp.Kvs {
			out[string(kv.Key)] = kv.ModRevision
		}
	}
	require.NotEmpty(t, out)
	return out
}
