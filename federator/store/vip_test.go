package store

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Four federators' Stores, each with its own client on a different member
// of a 3-member cluster, all allocate clusterset IPs for the same 50
// services at once from a range of 30. The range fills up completely; each
// service either has one address, the same for all four callers and for a
// later call, or every caller got ErrRangeExhausted; no address is shared;
// and etcd holds exactly one reservation per allocated service.
// (TestAllocateVIPConcurrent covers a range that fits, on one member.)
func TestAllocateVIPAcrossFederators(t *testing.T) {
	const (
		federators = 4
		services   = 50
		usable     = 30
		cluster    = "east"
	)
	prefix := netip.MustParsePrefix("10.31.0.0/27")
	c := etcdtest.StartCluster(t, 3)
	stores := make([]*Store, federators)
	for i := range stores {
		stores[i] = New(c.NewClient(c.Endpoint(i%c.Size())), Options{})
	}
	svcName := func(i int) string { return fmt.Sprintf("svc-%02d", i) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()

	type result struct {
		addr netip.Addr
		err  error
	}
	got := make([][federators]result, services)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for svc := range services {
		for f, s := range stores {
			wg.Go(func() {
				<-start
				a, err := s.AllocateVIP(ctx, cluster, "demo", svcName(svc), VIPRanges{prefix})
				got[svc][f] = result{a, err}
			})
		}
	}
	close(start)
	wg.Wait()

	owner := map[netip.Addr]string{}
	for svc, rs := range got {
		name := svcName(svc)
		for f, r := range rs {
			if r.err != nil {
				require.ErrorIs(t, r.err, ErrRangeExhausted, "%s from federator %d", name, f)
			}
			require.Equal(t, rs[0].addr, r.addr, "%s: federators 0 and %d disagree (%v, %v)", name, f, rs[0].err, r.err)
		}
		a := rs[0].addr
		if !a.IsValid() {
			continue
		}
		require.True(t, prefix.Contains(a), "%s got %s outside %s", name, a, prefix)
		require.NotEqual(t, prefix.Addr(), a, "%s got the network address", name)
		if prev, dup := owner[a]; dup {
			t.Fatalf("%s given to %s and %s", a, prev, name)
		}
		owner[a] = name
	}
	require.Len(t, owner, min(services, usable), "the range did not fill up")

	// etcd holds exactly these reservations: no service has a second one.
	resp, err := c.Client().Get(ctx, vipPrefix(cluster), clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, len(owner))
	for _, kv := range resp.Kvs {
		a := netip.MustParseAddr(string(kv.Key[len(vipPrefix(cluster)):]))
		rec := &causewayv1.VIPAllocation{}
		require.NoError(t, decodeInto(kv.Value, rec))
		require.Equal(t, owner[a], rec.GetName(), "reservation of %s", a)
	}

	// A repeated call, from another federator, is stable.
	for svc, rs := range got {
		a, err := stores[(svc+1)%federators].AllocateVIP(ctx, cluster, "demo", svcName(svc), VIPRanges{prefix})
		if rs[0].err != nil {
			require.ErrorIs(t, err, ErrRangeExhausted, svcName(svc))
			continue
		}
		require.NoError(t, err)
		require.Equal(t, rs[0].addr, a, "%s moved", svcName(svc))
	}
}
