package main

import (
	"bytes"
	"context"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestEtcdMigrateCommand runs `causeway etcd migrate` against etcd with
// auth and TLS on: a cluster's credentials are refused, the clusterset
// admin's move the old-layout export, and a second run changes nothing.
func TestEtcdMigrateCommand(t *testing.T) {
	s := secureetcd.Start(t)
	ctx := context.Background()
	b, err := store.Encode(&causewayv1.ExportRecord{Namespace: "demo", Name: "echo", Cluster: "east"})
	require.NoError(t, err)
	old := store.Prefix + "exports/demo/echo/east"
	_, err = s.Admin.Put(ctx, old, string(b))
	require.NoError(t, err)
	migrate := func(c secureetcd.Creds) (string, error) {
		root := newRoot()
		var stdout bytes.Buffer
		root.SetOut(&stdout)
		root.SetArgs([]string{"etcd", "migrate", "--etcd", c.Endpoint, "--etcd-ca", c.CAFile, "--etcd-server-name", c.ServerName,
			"--etcd-username", c.Username, "--etcd-password-file", c.PasswordFile})
		err := root.ExecuteContext(ctx)
		return stdout.String(), err
	}
	_, err = migrate(s.ClusterCreds(t, "east"))
	require.ErrorContains(t, err, "clusterset-admin")

	out, err := migrate(s.AdminCreds)
	require.NoError(t, err)
	require.Contains(t, out, "moved 1 export records")
	resp, err := s.Admin.Get(ctx, store.ExportKeyOf("east", "demo", "echo"), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.Count)
	out, err = migrate(s.AdminCreds)
	require.NoError(t, err)
	require.Contains(t, out, "moved 0 export records")
}
