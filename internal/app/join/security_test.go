package join

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// secureOptions are join options against s as user c.
func secureOptions(c secureetcd.Creds, cluster, out string) Options {
	return Options{Cluster: cluster, Out: out, Etcd: EtcdOptions{Endpoints: []string{c.Endpoint}, CAFile: c.CAFile,
		ServerName: c.ServerName, Username: c.Username, PasswordFile: c.PasswordFile}}
}

// TestSecurityF1_JoinForceRefusesLiveCluster: on etcd with auth and TLS,
// join needs the clusterset admin (a cluster's credentials are refused and
// leave nothing behind); the credentials it writes are the new cluster's
// own, confined to its keys; and `join --force` of a cluster that runs (a
// gateway on a live lease) is refused, where it used to replace
// the live cluster's CA (F1, probe 1h). Once the cluster stopped, --force
// re-registers it.
func TestSecurityF1_JoinForceRefusesLiveCluster(t *testing.T) {
	s := secureetcd.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A cluster's credentials cannot join another cluster.
	_, err := Run(ctx, secureOptions(s.ClusterCreds(t, "west"), "south", filepath.Join(t.TempDir(), "x")))
	require.Error(t, err)
	require.Contains(t, err.Error(), "clusterset-admin")
	resp, err := s.Admin.Get(ctx, store.ClusterKey("south"), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count)

	out := filepath.Join(t.TempDir(), "south")
	r, err := Run(ctx, secureOptions(s.AdminCreds, "south", out))
	require.NoError(t, err)
	pw, err := os.ReadFile(r.EtcdPasswordFile)
	require.NoError(t, err)
	south, err := s.Server.ClientAs(r.EtcdUser, strings.TrimSpace(string(pw)))
	require.NoError(t, err)
	defer south.Close()
	_, err = south.Put(ctx, store.ExportKeyOf("south", "demo", "x"), "v")
	require.NoError(t, err)
	_, err = south.Put(ctx, store.BundleKey("west"), "v")
	require.True(t, errors.Is(err, rpctypes.ErrPermissionDenied), "%v", err)
	_, bundle := registered(t, s.Admin, "south")
	before := bundle.GetX509Authorities()

	// south runs: a gateway record on a live lease.
	sess, err := concurrency.NewSession(south, concurrency.WithTTL(30))
	require.NoError(t, err)
	_, err = south.Put(ctx, store.GatewayKey("south", "gw-0"), "x", clientv3.WithLease(sess.Lease()))
	require.NoError(t, err)
	force := secureOptions(s.AdminCreds, "south", filepath.Join(t.TempDir(), "south2"))
	force.Force = true
	_, err = Run(ctx, force)
	require.ErrorIs(t, err, ErrLive)
	require.ErrorContains(t, err, "1 gateway(s) with a live lease")
	_, bundle = registered(t, s.Admin, "south")
	require.Equal(t, before, bundle.GetX509Authorities(), "the live cluster's CA was replaced")

	// Stopped: --force replaces the registration (and resets the password).
	require.NoError(t, sess.Close())
	r2, err := Run(ctx, force)
	require.NoError(t, err)
	require.True(t, r2.Replaced)
	_, bundle = registered(t, s.Admin, "south")
	require.NotEqual(t, before, bundle.GetX509Authorities())
}
