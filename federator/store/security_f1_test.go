package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// foreignKeys are keys of every kind in docs/etcd-schema.md that belong to
// another cluster than east, including names that merely start with
// "east" and the old export layout.
func foreignKeys() []string {
	p := store.Prefix
	var keys []string
	for _, other := range []string{"west", "eastern", "eas", "east-2"} {
		keys = append(keys,
			store.ClusterKey(other), store.BundleKey(other), store.DrainKey(other, "", ""),
			store.DrainKey(other, "demo", "echo"), store.GatewayKey(other, "gw-0"),
			store.ExportKeyOf(other, "demo", "echo"), store.ImportKey(other, "demo", "echo"),
			store.VIPKey(other, "10.0.0.1"), store.ElectionPrefix(other)+"/694d7a",
			p+"trust/"+other+"/east",
		)
	}
	return append(keys,
		p+"exports/demo/echo/east",              // the old layout: names east last
		p+"clusters/east/x", p+"bundles/east/x", // no such own keys
		p+"drain/eastx", p+"gateways/eastgw-0", p+"exports/east", p+"leaders/east",
		p+"layout", p+"unknown/east/x", "/other/east", "/causeway/v2/clusters/east",
	)
}

// ownKeys are east's keys of every kind.
func ownKeys() []string {
	return []string{
		store.ClusterKey("east"), store.BundleKey("east"), store.DrainKey("east", "", ""),
		store.DrainKey("east", "demo", "echo"), store.GatewayKey("east", "gw-0"),
		store.ExportKeyOf("east", "demo", "echo"), store.ImportKey("east", "demo", "echo"),
		store.VIPKey("east", "10.0.0.1"), store.ElectionPrefix("east") + "/694d7a",
		store.Prefix + "trust/east/west",
	}
}

// TestSecurityF1_ClusterCredentialsConfined: with etcd auth on, east's
// federator credentials (its own user and store.ClusterRolePermissions)
// are refused every put and delete of a key that is not east's, under
// every prefix of the schema, and allowed on east's own keys. Before
// per-cluster roles every federator could write every key (F1).
func TestSecurityF1_ClusterCredentialsConfined(t *testing.T) {
	s := secureetcd.Start(t)
	east := s.ClusterClient(t, "east")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// Seed every foreign key, so a delete would have something to delete.
	for _, k := range foreignKeys() {
		_, err := s.Admin.Put(ctx, k, "seed")
		require.NoError(t, err, k)
	}
	for _, k := range foreignKeys() {
		_, err := east.Put(ctx, k, "forged")
		requireDenied(t, err, "put "+k)
		_, err = east.Delete(ctx, k)
		requireDenied(t, err, "delete "+k)
		resp, err := s.Admin.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, "seed", string(resp.Kvs[0].Value), k)
	}
	// Range deletes that would reach past east's own prefixes.
	for _, prefix := range []string{store.Prefix, store.Prefix + "exports/", store.Prefix + "drain/east", store.Prefix + "gateways/east"} {
		_, err := east.Delete(ctx, prefix, clientv3.WithPrefix())
		requireDenied(t, err, "delete prefix "+prefix)
	}
	// A transaction mixing an own and a foreign write is refused whole.
	_, err := east.Txn(ctx).Then(clientv3.OpPut(store.ClusterKey("east"), "x"), clientv3.OpPut(store.ClusterKey("west"), "x")).Commit()
	requireDenied(t, err, "txn own+foreign")

	// East's own keys: put, read back, delete.
	for _, k := range ownKeys() {
		_, err := east.Put(ctx, k, "mine")
		require.NoError(t, err, "put "+k)
		resp, err := east.Get(ctx, k)
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1, k)
		_, err = east.Delete(ctx, k)
		require.NoError(t, err, "delete "+k)
	}
	// East reads everything (its federator mirrors the whole federation).
	resp, err := east.Get(ctx, store.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Positive(t, resp.Count)
	// ... but cannot create users or grant itself more.
	_, err = east.UserAdd(ctx, "mallory", "pw")
	require.Error(t, err)
	_, err = east.RoleGrantPermission(ctx, store.ClusterUser("east"), store.Prefix, clientv3.GetPrefixRangeEnd(store.Prefix), clientv3.PermissionType(clientv3.PermReadWrite))
	require.Error(t, err)
}

func requireDenied(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, what)
	require.True(t, errors.Is(err, rpctypes.ErrPermissionDenied), "%s: %v", what, err)
}
