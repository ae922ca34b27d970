package devenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestDevEtcdTLSAndAuth: the dev etcd speaks TLS only and has auth on;
// without a user nothing is written; each cluster's federator user writes
// only its cluster's keys; the credentials are 0600 files in a 0700
// directory; setting up again on the same data dir (a kept --data-dir)
// works with the kept passwords.
func TestDevEtcdTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	tlsFiles, err := newEtcdTLS(dir, "127.0.0.1")
	require.NoError(t, err)
	start := func() *devEtcd {
		srv, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: filepath.Join(dir, "etcd"), TLS: tlsFiles, BcryptCost: devBcryptCost})
		require.NoError(t, err)
		t.Cleanup(srv.Close)
		return &devEtcd{srv: srv, dir: filepath.Join(dir, etcdAuthDir)}
	}
	e := start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, e.setupAuth(ctx, []string{"east", "west"}))

	// Plain HTTP/2: no answer.
	plain, err := clientv3.New(clientv3.Config{Endpoints: []string{e.srv.Endpoint()}, DialTimeout: time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	_, err = plain.Put(pctx, store.ClusterKey("west"), "x")
	pcancel()
	require.Error(t, err)
	_ = plain.Close()
	// TLS without a user: refused.
	anon, err := e.srv.Client()
	require.NoError(t, err)
	_, err = anon.Put(ctx, store.ClusterKey("west"), "x")
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty)
	_ = anon.Close()
	// east's federator user: its own keys only.
	east, err := e.clusterClient("east")
	require.NoError(t, err)
	_, err = east.Put(ctx, store.ClusterKey("east"), "x")
	require.NoError(t, err)
	_, err = east.Put(ctx, store.ClusterKey("west"), "x")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_ = east.Close()

	st, err := os.Stat(e.dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	files, err := os.ReadDir(e.dir)
	require.NoError(t, err)
	require.Len(t, files, 7) // CA, server cert and key; root, admin, east, west passwords
	for _, f := range files {
		fi, err := f.Info()
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f.Name())
	}

	// Again, on the same data (auth already on): the kept admin password.
	e.srv.Close()
	e = start()
	require.NoError(t, e.setupAuth(ctx, []string{"east", "west", "north"}))
	north, err := e.clusterClient("north")
	require.NoError(t, err)
	_, err = north.Put(ctx, store.ClusterKey("north"), "x")
	require.NoError(t, err)
	_ = north.Close()
}
