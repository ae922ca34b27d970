package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
)

// TestJoinCommand runs `causeway join` end to end against an embedded etcd:
// the flags reach join.Run, the cluster is registered, and the table tells
// the operator what to apply next.
func TestJoinCommand(t *testing.T) {
	srv, cli := etcdtest.Start(t)
	out := filepath.Join(t.TempDir(), "east")
	join := func(args ...string) (string, error) {
		root := newRoot()
		var stdout bytes.Buffer
		root.SetOut(&stdout)
		root.SetArgs(append([]string{"join", "--cluster", "east", "--etcd", "http://" + srv.Endpoint(), "--out", out}, args...))
		err := root.ExecuteContext(context.Background())
		return stdout.String(), err
	}
	stdout, err := join("--region", "us-east", "--zone", "us-east-1a", "--advertise", "gw.east.example:4433")
	require.NoError(t, err)
	require.Contains(t, stdout, "cluster east registered")
	require.Contains(t, stdout, "kubectl apply -f "+filepath.Join(out, "ca-secret.yaml"))
	resp, err := cli.Get(context.Background(), store.BundleKey("east"))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)

	// Again: refused, without --force.
	_, err = join()
	require.ErrorContains(t, err, "--force")
}
