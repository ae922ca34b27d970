package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/causeway-mesh/causeway/internal/lib/names"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcd identities of a clusterset.
const (
	// RootUser is etcd's superuser; enabling auth needs it to exist.
	RootUser = "root"
	// ClustersetAdminUser does the cross-cluster writes (drain or remove
	// another cluster, join and join --force). It holds the root role,
	// because creating users and roles needs it, and is distinct from
	// every cluster's user.
	ClustersetAdminUser = "causeway-clusterset-admin"
	// clusterUserPrefix + cluster names both the user and the role of a
	// cluster's federator.
	clusterUserPrefix = "causeway-"
)

// ClusterUser is the etcd user, and role, of cluster's federator.
func ClusterUser(cluster string) string { return clusterUserPrefix + cluster }

// Permission is one etcd permission of a role: Key alone is one exact
// key; with RangeEnd, the range [Key, RangeEnd).
type Permission struct {
	Key, RangeEnd string
	Type          clientv3.PermissionType
}

// String is "read|readwrite KEY", with "*" after a prefix.
func (p Permission) String() string {
	t := "read"
	if p.Type == clientv3.PermissionType(clientv3.PermReadWrite) {
		t = "readwrite"
	}
	if p.RangeEnd == "" {
		return t + " " + p.Key
	}
	return t + " " + p.Key + "*"
}

func prefixPerm(prefix string, t clientv3.PermissionType) Permission {
	return Permission{Key: prefix, RangeEnd: clientv3.GetPrefixRangeEnd(prefix), Type: t}
}

// ClusterRolePermissions returns the permissions of cluster's etcd role:
// read on everything under Prefix, readwrite on the cluster's own keys
// only. Every own key is either exact (clusters/<c>, bundles/<c>,
// drain/<c>) or under a prefix ending in "/<c>/", so cluster "east" never
// covers "eastern"'s keys.
func ClusterRolePermissions(cluster string) []Permission {
	rw := clientv3.PermissionType(clientv3.PermReadWrite)
	perms := []Permission{prefixPerm(Prefix, clientv3.PermissionType(clientv3.PermRead))}
	for _, key := range []string{ClusterKey(cluster), BundleKey(cluster), DrainKey(cluster, "", "")} {
		perms = append(perms, Permission{Key: key, Type: rw})
	}
	for _, kind := range []string{KindDrain, KindGateways, KindExports, KindImports, KindVIPs, KindLeaders, KindTrust} {
		perms = append(perms, prefixPerm(Prefix+kind+"/"+cluster+"/", rw))
	}
	return perms
}

// EnsureClusterRole creates (or completes) cluster's etcd role and user
// with password: the role gets exactly ClusterRolePermissions, the user
// only that role. An existing user's password is set to password. It is
// idempotent, and needs a client with the root role (ClustersetAdminUser).
func EnsureClusterRole(ctx context.Context, cli *clientv3.Client, cluster, password string) error {
	if !names.IsDNSLabel(cluster) {
		return fmt.Errorf("create etcd role of cluster %q: not a DNS label", cluster)
	}
	name := ClusterUser(cluster)
	if err := ensureRole(ctx, cli, name, ClusterRolePermissions(cluster)); err != nil {
		return err
	}
	return ensureUser(ctx, cli, name, password, name)
}

// ensureRole creates role with exactly perms, revoking any other.
func ensureRole(ctx context.Context, cli *clientv3.Client, role string, perms []Permission) error {
	if _, err := cli.RoleAdd(ctx, role); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return fmt.Errorf("create etcd role %s: %w", role, err)
	}
	got, err := cli.RoleGet(ctx, role)
	if err != nil {
		return fmt.Errorf("read etcd role %s: %w", role, err)
	}
	want := map[Permission]bool{}
	for _, p := range perms {
		want[p] = true
	}
	have := map[Permission]bool{}
	for _, p := range got.Perm {
		hp := Permission{Key: string(p.Key), RangeEnd: string(p.RangeEnd), Type: clientv3.PermissionType(p.PermType)}
		if want[hp] {
			have[hp] = true
			continue
		}
		if _, err := cli.RoleRevokePermission(ctx, role, hp.Key, hp.RangeEnd); err != nil {
			return fmt.Errorf("revoke %s from etcd role %s: %w", hp, role, err)
		}
	}
	for _, p := range perms {
		if have[p] {
			continue
		}
		if _, err := cli.RoleGrantPermission(ctx, role, p.Key, p.RangeEnd, p.Type); err != nil {
			return fmt.Errorf("grant %s to etcd role %s: %w", p, role, err)
		}
	}
	return nil
}

// ensureUser creates user with password, or sets the password of an
// existing one, and makes role its only role. The user cli authenticates
// as keeps its password: changing it would cut cli off.
func ensureUser(ctx context.Context, cli *clientv3.Client, user, password, role string) error {
	if password == "" {
		return fmt.Errorf("create etcd user %s: empty password", user)
	}
	_, err := cli.UserAdd(ctx, user, password)
	switch {
	case errors.Is(err, rpctypes.ErrUserAlreadyExist) && user == cli.Username:
	case errors.Is(err, rpctypes.ErrUserAlreadyExist):
		if _, err := cli.UserChangePassword(ctx, user, password); err != nil {
			return fmt.Errorf("set password of etcd user %s: %w", user, err)
		}
	case err != nil:
		return fmt.Errorf("create etcd user %s: %w", user, err)
	}
	got, err := cli.UserGet(ctx, user)
	if err != nil {
		return fmt.Errorf("read etcd user %s: %w", user, err)
	}
	for _, r := range got.Roles {
		if r == role {
			continue
		}
		if _, err := cli.UserRevokeRole(ctx, user, r); err != nil {
			return fmt.Errorf("revoke role %s from etcd user %s: %w", r, user, err)
		}
	}
	if !slices.Contains(got.Roles, role) {
		if _, err := cli.UserGrantRole(ctx, user, role); err != nil {
			return fmt.Errorf("grant role %s to etcd user %s: %w", role, user, err)
		}
	}
	return nil
}

// AuthSetup is what SetupAuth creates.
type AuthSetup struct {
	// RootPassword is the password of etcd's root user. Required: root
	// must exist before etcd lets auth be enabled; keep it offline.
	RootPassword string
	// AdminPassword is the password of ClustersetAdminUser. Required.
	AdminPassword string
	// Clusters maps each cluster to its federator's password.
	Clusters map[string]string
}

// SetupAuth prepares etcd auth for a clusterset and enables it: the root
// user, the clusterset-admin user (root role), and each cluster's user and
// role (EnsureClusterRole). It is idempotent: on an etcd with auth on, cli
// must authenticate as root or ClustersetAdminUser; existing users get the
// given passwords, except the one cli authenticates as.
func SetupAuth(ctx context.Context, cli *clientv3.Client, a AuthSetup) error {
	if a.RootPassword == "" || a.AdminPassword == "" {
		return errors.New("set up etcd auth: root and clusterset-admin passwords are required")
	}
	if _, err := cli.RoleAdd(ctx, RootUser); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return fmt.Errorf("set up etcd auth: create role root: %w", err)
	}
	if err := ensureUser(ctx, cli, RootUser, a.RootPassword, RootUser); err != nil {
		return fmt.Errorf("set up etcd auth: %w", err)
	}
	if err := ensureUser(ctx, cli, ClustersetAdminUser, a.AdminPassword, RootUser); err != nil {
		return fmt.Errorf("set up etcd auth: %w", err)
	}
	for _, c := range sortedNames(a.Clusters) {
		if err := EnsureClusterRole(ctx, cli, c, a.Clusters[c]); err != nil {
			return fmt.Errorf("set up etcd auth: %w", err)
		}
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("set up etcd auth: enable auth: %w", err)
	}
	return nil
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
