package store_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestSetupAuthIdempotent: setting up auth again on an etcd with auth on
// (as the clusterset admin) succeeds, sets the given passwords, and leaves
// every cluster role with exactly its permissions, even one an operator
// widened by hand.
func TestSetupAuthIdempotent(t *testing.T) {
	s := secureetcd.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = s.ClusterCreds(t, "east")
	// Widen east's role by hand: SetupAuth must take it back.
	_, err := s.Admin.RoleGrantPermission(ctx, store.ClusterUser("east"), store.Prefix, clientv3.GetPrefixRangeEnd(store.Prefix),
		clientv3.PermissionType(clientv3.PermReadWrite))
	require.NoError(t, err)
	adminPW := readPassword(t, s.AdminCreds.PasswordFile) // cli's own user keeps its password
	eastPW := secureetcd.Password(t)
	for range 2 {
		require.NoError(t, store.SetupAuth(ctx, s.Admin, store.AuthSetup{
			RootPassword: secureetcd.Password(t), AdminPassword: adminPW,
			Clusters: map[string]string{"east": eastPW, "west": secureetcd.Password(t)},
		}))
	}
	role, err := s.Admin.RoleGet(ctx, store.ClusterUser("east"))
	require.NoError(t, err)
	require.Len(t, role.Perm, len(store.ClusterRolePermissions("east")))

	east, err := s.Server.ClientAs(store.ClusterUser("east"), eastPW)
	require.NoError(t, err)
	defer east.Close()
	_, err = east.Put(ctx, store.ClusterKey("east"), "x")
	require.NoError(t, err)
	_, err = east.Put(ctx, store.ClusterKey("west"), "x")
	require.Error(t, err)
	admin, err := s.Server.ClientAs(store.ClustersetAdminUser, adminPW)
	require.NoError(t, err)
	defer admin.Close()
	_, err = admin.Put(ctx, store.ClusterKey("west"), "x")
	require.NoError(t, err)
}

func readPassword(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}
