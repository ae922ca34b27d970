package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/embedetcd"
	"github.com/stretchr/testify/require"
)

// TestJoinCommand runs `causeway join` end to end against an embedded etcd:
// the flags reach join.Run, the cluster is registered, and the table tells
// the operator what to apply next.
func TestJoinCommand(t *testing.T) {
	srv, cli := embedetcd.StartForTest(t)
	out := filepath.Join(t.TempDir(), "east")
	root := newRoot()
	var stdout bytes.Buffer
	root.SetOut(&stdout)
	root.SetArgs([]string{"join", "--cluster", "east", "--region", "us-east", "--zone", "us-east-1a",
		"--etcd", "http://" + srv.Endpoint(), "--advertise", "gw.east.example:4433", "--out", out})
	require.NoError(t, root.ExecuteContext(context.Background()))
	require.Contains(t, stdout.String(), "cluster east registered")
	require.Contains(t, stdout.String(), "kubectl apply -f "+filepath.Join(out, "ca-secret.yaml"))
	resp, err := cli.Get(context.Background(), store.BundleKey("east"))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)

	// Again: refused, without --force.
	root = newRoot()
	root.SetOut(&stdout)
	root.SetArgs([]string{"join", "--cluster", "east", "--etcd", "http://" + srv.Endpoint(), "--out", out})
	require.ErrorContains(t, root.ExecuteContext(context.Background()), "--force")
}
