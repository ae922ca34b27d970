package federator

import (
	"context"
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
	"go.uber.org/zap"
)

// Two replicas of one cluster: exactly one leads; when the leader dies
// without resigning (its etcd client vanishes), the standby takes over
// within the lease TTL and keeps the exports published.
func TestLeaderElectionFailover(t *testing.T) {
	srv, _ := etcdtest.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "east.yaml")
	const echo = "version: 1\nservices:\n- namespace: demo\n  name: echo\n  ports: [{name: http, port: 8080}]\n  endpoints: [{address: 10.1.0.5}]\n"
	require.NoError(t, os.WriteFile(path, []byte(echo), 0o644))
	const ttl = 2 * time.Second

	type replica struct {
		f      *Federator
		cli    *clientv3.Client
		cancel context.CancelFunc
		done   chan error
	}
	start := func(instance string) *replica {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		f, err := New(Config{Cluster: "east", TrustDomain: "east.clusterset.local", Instance: instance, LeaderTTL: ttl,
			VIPRanges: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}, Authorities: [][]byte{{1}}}, store.New(cli, store.Options{}))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{f: f, cli: cli, cancel: cancel, done: make(chan error, 1)}
		go func() {
			r.done <- f.Run(ctx, &static.Source{Path: path, Cluster: "east", Interval: 50 * time.Millisecond})
		}()
		t.Cleanup(func() { cancel(); <-r.done; _ = cli.Close() })
		return r
	}
	a, b := start("a"), start("b")

	oneLeader := func() *replica {
		t.Helper()
		var leader *replica
		require.Eventually(t, func() bool {
			n := 0
			for _, r := range []*replica{a, b} {
				if r.f.IsLeader() {
					n, leader = n+1, r
				}
			}
			return n == 1
		}, 10*time.Second, 10*time.Millisecond, "want exactly one leader")
		return leader
	}
	leader := oneLeader()
	standby := b
	if leader == b {
		standby = a
	}
	name, err := standby.f.Leader(context.Background())
	require.NoError(t, err)
	require.Equal(t, leader.f.cfg.Instance, name, "every replica can tell who leads")
	key := catalog.ServiceKey{Namespace: "demo", Name: "echo"}
	require.Eventually(t, func() bool { _, ok := standby.f.Feed().View().Export(key, "east"); return ok }, 10*time.Second, 10*time.Millisecond)

	// Kill the leader: its client disappears, its lease is not revoked.
	require.NoError(t, leader.cli.Close())
	killed := time.Now()
	require.Eventually(t, standby.f.IsLeader, ttl+3*time.Second, 10*time.Millisecond, "standby did not take over")
	t.Logf("standby led %s after the leader was killed (TTL %s)", time.Since(killed).Round(time.Millisecond), ttl)

	// The new leader keeps publishing: a changed file reaches etcd.
	require.NoError(t, os.WriteFile(path, []byte("version: 1\nservices: []\n"), 0o644))
	require.Eventually(t, func() bool { _, ok := standby.f.Feed().View().Export(key, "east"); return !ok }, 10*time.Second, 10*time.Millisecond)
}
