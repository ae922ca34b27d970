package join

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/causeway-mesh/causeway/federator/store"
)

// ErrLive is returned by a forced join of a cluster that still runs.
var ErrLive = errors.New("join: cluster is live")

// newPassword returns 32 random bytes, base64url-encoded.
func newPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("join: random etcd password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// createClusterUser creates (or resets) the cluster's etcd user and role
// (store.ClusterRolePermissions) with a new random password, and returns
// the password. It needs the clusterset admin's credentials.
func createClusterUser(ctx context.Context, cli *etcdConn, cluster string) (string, error) {
	pw, err := newPassword()
	if err != nil {
		return "", err
	}
	err = cli.do(ctx, "create etcd user "+store.ClusterUser(cluster), func(ctx context.Context) error {
		return store.EnsureClusterRole(ctx, cli.cli, cluster, pw)
	})
	if err != nil {
		return "", fmt.Errorf("%w (join runs with the clusterset-admin etcd credentials: --etcd-username %s)", err, store.ClustersetAdminUser)
	}
	return pw, nil
}

// checkNotLive fails with ErrLive when the cluster has gateways on live
// leases or a federator holding its election key: a forced join would
// replace a running cluster's CA and cut it off (F1).
func checkNotLive(ctx context.Context, cli *etcdConn, cluster string) error {
	var l store.Liveness
	err := cli.do(ctx, "read liveness of "+cluster, func(ctx context.Context) (err error) {
		l, err = store.New(cli.cli, store.Options{}).Liveness(ctx, cluster)
		return err
	})
	if err != nil {
		return err
	}
	if l.Live() {
		return fmt.Errorf("%w: %s has %s; --force replaces only a cluster that is stopped: stop its federator and gateways first",
			ErrLive, cluster, l)
	}
	return nil
}
