package store

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func newStore(t *testing.T) (*Store, *clientv3.Client, *prometheus.Registry) {
	t.Helper()
	_, cli := etcdtest.Start(t)
	reg := prometheus.NewRegistry()
	return New(cli, Options{Registerer: reg}), cli, reg
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		key  string
		kind string
		ok   bool
	}{
		{ClusterKey("east"), KindClusters, true},
		{GatewayKey("east", "gw-0"), KindGateways, true},
		{ExportKeyOf("east", "demo", "echo"), KindExports, true},
		{ImportKey("west", "demo", "echo"), KindImports, true},
		{DrainKey("east", "", ""), KindDrain, true},
		{DrainKey("east", "demo", "echo"), KindDrain, true},
		{BundleKey("east"), KindBundles, true},
		{VIPKey("east", "127.0.0.1"), KindVIPs, true},
		{"/causeway/v1/exports/demo/echo", "", false},
		{"/causeway/v1/nope/x", "", false},
		{"/other/clusters/x", "", false},
		{"/causeway/v1/clusters/", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			kind, _, err := ParseKey(tc.key)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.kind, kind)
		})
	}
}

func TestDecodeRejectsUnknownVersionAndGarbage(t *testing.T) {
	future, err := proto.Marshal(&causewayv1.ClusterRecord{SchemaVersion: 2, Name: "east"})
	require.NoError(t, err)
	_, err = DecodeEntry(ClusterKey("east"), future)
	require.ErrorIs(t, err, ErrUnknownVersion)
	_, err = DecodeEntry(ClusterKey("east"), []byte{0xff, 0xff, 0xff})
	require.ErrorIs(t, err, ErrUndecodable)
	good, err := Encode(&causewayv1.ClusterRecord{Name: "east"})
	require.NoError(t, err)
	e, err := DecodeEntry(ClusterKey("east"), good)
	require.NoError(t, err)
	require.Equal(t, "east", e.GetCluster().GetName())
	require.Equal(t, "clusters/east", e.GetKey())
}

func TestListSkipsBadValues(t *testing.T) {
	s, cli, reg := newStore(t)
	ctx := context.Background()
	require.NoError(t, s.PutCluster(ctx, &causewayv1.ClusterRecord{Name: "east"}))
	future, _ := proto.Marshal(&causewayv1.ClusterRecord{SchemaVersion: 9, Name: "west"})
	_, err := cli.Put(ctx, ClusterKey("west"), string(future))
	require.NoError(t, err)
	_, err = cli.Put(ctx, ClusterKey("north"), "\xff\xff")
	require.NoError(t, err)

	entries, rev, err := s.List(ctx, Prefix)
	require.NoError(t, err)
	require.Positive(t, rev)
	require.Len(t, entries, 1)
	require.Equal(t, "east", entries[0].GetCluster().GetName())
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.decodeErrors.WithLabelValues(KindClusters)))
	n, err := testutil.GatherAndCount(reg, "causeway_store_decode_errors_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestPutExportKeepsCreationTime(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	first := timestamppb.New(time.Unix(1000, 0))
	require.NoError(t, s.PutExport(ctx, &causewayv1.ExportRecord{Namespace: "demo", Name: "echo", Cluster: "east", Created: first}))
	require.NoError(t, s.PutExport(ctx, &causewayv1.ExportRecord{Namespace: "demo", Name: "echo", Cluster: "east", Created: timestamppb.Now(),
		Ports: []*causewayv1.ServicePort{{Port: 80}}}))
	got, err := s.ListExportsOf(ctx, "east")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, first.AsTime(), got[0].GetCreated().AsTime())
	require.Len(t, got[0].GetPorts(), 1)
}

func TestAllocateVIPConcurrent(t *testing.T) {
	s, cli, _ := newStore(t)
	ctx := context.Background()
	prefix := netip.MustParsePrefix("10.9.0.0/26") // 62 usable addresses
	const services = 40
	const callersPerService = 3
	got := make([][]netip.Addr, services)
	for i := range got {
		got[i] = make([]netip.Addr, callersPerService)
	}
	var wg sync.WaitGroup
	errs := make(chan error, services*callersPerService)
	for i := 0; i < services; i++ {
		for c := 0; c < callersPerService; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A separate Store per caller, as separate federators would have.
				other := New(cli, Options{})
				a, err := other.AllocateVIP(ctx, "east", "demo", "svc"+string(rune('a'+i%26))+string(rune('a'+i/26)), VIPRanges{prefix})
				if err != nil {
					errs <- err
					return
				}
				got[i][c] = a
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[netip.Addr]int{}
	for i, addrs := range got {
		for _, a := range addrs[1:] {
			require.Equal(t, addrs[0], a, "service %d got two addresses", i)
		}
		require.True(t, prefix.Contains(addrs[0]))
		require.NotEqual(t, prefix.Masked().Addr(), addrs[0], "network address handed out")
		if prev, dup := seen[addrs[0]]; dup {
			t.Fatalf("address %s given to services %d and %d", addrs[0], prev, i)
		}
		seen[addrs[0]] = i
	}
	// Stable across restarts: a new Store returns the same address.
	again, err := New(cli, Options{}).AllocateVIP(ctx, "east", "demo", "svcaa", VIPRanges{prefix})
	require.NoError(t, err)
	require.Equal(t, got[0][0], again)
	// Released addresses are reused.
	require.NoError(t, s.ReleaseVIP(ctx, "east", "demo", "svcaa", again))
	reused, err := s.AllocateVIP(ctx, "east", "demo", "newcomer", VIPRanges{prefix})
	require.NoError(t, err)
	require.Equal(t, again, reused)
}

func TestAllocateVIPExhausted(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	prefix := netip.MustParsePrefix("10.9.0.0/30") // 2 usable
	_, err := s.AllocateVIP(ctx, "east", "demo", "a", VIPRanges{prefix})
	require.NoError(t, err)
	_, err = s.AllocateVIP(ctx, "east", "demo", "b", VIPRanges{prefix})
	require.NoError(t, err)
	_, err = s.AllocateVIP(ctx, "east", "demo", "c", VIPRanges{prefix})
	require.ErrorIs(t, err, ErrRangeExhausted)
}

// Every range is used: the second once the first is full, and the set is
// exhausted only when all are.
func TestAllocateVIPFromEveryRange(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	ranges := VIPRanges{netip.MustParsePrefix("10.9.0.0/30"), netip.MustParsePrefix("10.9.1.0/30")} // 2 usable each
	var got []netip.Addr
	for _, svc := range []string{"a", "b", "c", "d"} {
		a, err := s.AllocateVIP(ctx, "east", "demo", svc, ranges)
		require.NoError(t, err)
		got = append(got, a)
	}
	require.True(t, ranges[0].Contains(got[0]) && ranges[0].Contains(got[1]), "the first range first: %v", got)
	require.True(t, ranges[1].Contains(got[2]) && ranges[1].Contains(got[3]), "then the second: %v", got)
	_, err := s.AllocateVIP(ctx, "east", "demo", "e", ranges)
	require.ErrorIs(t, err, ErrRangeExhausted)
	require.ErrorContains(t, err, "10.9.0.0/30,10.9.1.0/30")
}

func TestWatchReportsCompaction(t *testing.T) {
	s, cli, _ := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, s.PutCluster(ctx, &causewayv1.ClusterRecord{Name: "east"}))
	_, rev, err := s.List(ctx, Prefix)
	require.NoError(t, err)
	require.NoError(t, s.PutCluster(ctx, &causewayv1.ClusterRecord{Name: "west"}))
	require.NoError(t, s.PutCluster(ctx, &causewayv1.ClusterRecord{Name: "north"}))
	resp, err := cli.Get(ctx, "x")
	require.NoError(t, err)
	_, err = cli.Compact(ctx, resp.Header.Revision)
	require.NoError(t, err)
	err = s.Watch(ctx, rev+1, func(Batch) error { return nil })
	require.ErrorIs(t, err, ErrCompacted)
}

func TestWatchDeliversChanges(t *testing.T) {
	s, _, _ := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, rev, err := s.List(ctx, Prefix)
	require.NoError(t, err)
	go func() {
		_ = s.PutCluster(ctx, &causewayv1.ClusterRecord{Name: "east"})
		_ = s.DeleteImport(ctx, "east", "demo", "x")
		_, _ = s.Client().Delete(ctx, ClusterKey("east"))
	}()
	var changes []Change
	err = s.Watch(ctx, rev+1, func(b Batch) error {
		changes = append(changes, b.Changes...)
		if len(changes) == 2 {
			return context.Canceled
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, "east", changes[0].Entry.GetCluster().GetName())
	require.True(t, changes[1].Deleted)
	require.Equal(t, ClusterKey("east"), changes[1].Key)
}
