package component

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/testenv/secureetcd"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// relay forwards TCP from a listener on 127.0.0.2 (an address etcd's
// certificate does not name) to target until the test ends.
func relay(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(s, c); _ = s.Close() })
			wg.Go(func() { _, _ = io.Copy(c, s); _ = c.Close() })
		}
	})
	return ln.Addr().String()
}

// TestEtcdClientServerName: etcd reached through an address its
// certificate does not name is verified against etcd.serverName (and
// refused without it), with the cluster's user and password.
func TestEtcdClientServerName(t *testing.T) {
	s := secureetcd.Start(t)
	c := s.ClusterCreds(t, "east")
	addr := relay(t, c.Endpoint)
	cfg := EtcdConfig{Endpoints: []string{addr}, CAFile: c.CAFile, Username: c.Username, PasswordFile: c.PasswordFile,
		DialTimeout: metav1.Duration{Duration: 2 * time.Second}}

	_, err := NewEtcdClient(cfg)
	require.Error(t, err, "the relay's address is not in etcd's certificate")

	cfg.ServerName = c.ServerName
	cli, err := NewEtcdClient(cfg)
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = cli.Put(ctx, "/causeway/v1/clusters/east", "x")
	require.NoError(t, err)
}
