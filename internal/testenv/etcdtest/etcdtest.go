package etcdtest

import (
	"context"
	"testing"

	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Start starts a single member in t.TempDir() on 127.0.0.1 and returns it
// with a client; both are closed by t.Cleanup.
func Start(t testing.TB) (*embedetcd.Server, *clientv3.Client) {
	t.Helper()
	s, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(s.Close)
	cli, err := s.Client()
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return s, cli
}
