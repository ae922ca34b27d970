package etcdtest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestStartServes(t *testing.T) {
	s, cli := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cli.Put(ctx, "k", "v")
	require.NoError(t, err)
	resp, err := cli.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(resp.Kvs[0].Value))
	require.NotContains(t, s.Endpoint(), ":0")
}

// Stopping the leader hands leadership to a survivor and writes through
// the all-endpoints client keep working; the restarted member comes back
// on the same address with everything committed while it was down.
func TestClusterStopAndRestartMember(t *testing.T) {
	c := StartCluster(t, 3)
	require.Equal(t, 3, c.Size())
	eps := c.Endpoints()
	require.Len(t, eps, 3)
	require.Len(t, map[string]bool{eps[0]: true, eps[1]: true, eps[2]: true}, 3, "members share an endpoint")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Client().Put(ctx, "before", "1")
	require.NoError(t, err)

	old := c.WaitLeader()
	c.StopMember(old)
	require.False(t, c.Running(old))
	leader := c.WaitLeader()
	require.NotEqual(t, old, leader)
	_, err = c.Client().Put(ctx, "during", "2")
	require.NoError(t, err)

	c.RestartMember(old)
	require.True(t, c.Running(old))
	// A serializable read is served from the member's own state: it has
	// applied what was committed while it was down.
	only := c.NewClient(c.Endpoint(old))
	resp, err := only.Get(ctx, "during", clientv3.WithSerializable())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, "2", string(resp.Kvs[0].Value))
	require.GreaterOrEqual(t, c.WaitLeader(), 0)
}

func TestClusterOfOne(t *testing.T) {
	c := StartCluster(t, 1)
	require.Equal(t, 0, c.WaitLeader())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Client().Put(ctx, "k", "v")
	require.NoError(t, err)
	c.StopMember(0)
	require.Equal(t, -1, c.Leader())
	c.RestartMember(0)
	resp, err := c.Client().Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
}
