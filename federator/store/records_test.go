package store

import (
	"context"
	"net/netip"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ClaimGateway: a new announcement takes a free name, its own key's
// record (the same gateway again) and a record that is not a valid live
// one; it is refused a live record of another key. A re-assertion by the
// holder replaces anything but a live record of its own key.
func TestClaimGateway(t *testing.T) {
	_, cli := etcdtest.Start(t)
	s := New(cli, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	lease := func() clientv3.LeaseID {
		l, err := cli.Grant(ctx, 30)
		require.NoError(t, err)
		return l.ID
	}
	rec := func(key byte, addr string) *causewayv1.GatewayRecord {
		return &causewayv1.GatewayRecord{Cluster: "east", Instance: "gw-0", Addresses: []string{addr}, AnnouncerKeySha256: []byte{key}}
	}
	key := GatewayKey("east", "gw-0")
	addrAt := func() string {
		r, err := cli.Get(ctx, key)
		require.NoError(t, err)
		if len(r.Kvs) == 0 {
			return ""
		}
		g := &causewayv1.GatewayRecord{}
		require.NoError(t, decodeInto(r.Kvs[0].Value, g))
		return g.GetAddresses()[0]
	}

	a, b := lease(), lease()
	_, written, err := s.ClaimGateway(ctx, a, rec(1, "a:1"), ClaimNew)
	require.NoError(t, err)
	require.True(t, written)
	_, _, err = s.ClaimGateway(ctx, b, rec(2, "b:1"), ClaimNew)
	require.ErrorIs(t, err, ErrGatewayHeld)
	require.Equal(t, "a:1", addrAt())
	_, written, err = s.ClaimGateway(ctx, b, rec(2, "b:1"), ClaimReassert)
	require.NoError(t, err)
	require.True(t, written, "the holder's re-assertion did not replace another key's record")
	require.Equal(t, "b:1", addrAt())
	_, written, err = s.ClaimGateway(ctx, a, rec(2, "b:2"), ClaimReassert)
	require.NoError(t, err)
	require.False(t, written, "a re-assertion replaced a live record of its own key")
	_, written, err = s.ClaimGateway(ctx, a, rec(2, "b:2"), ClaimNew)
	require.NoError(t, err)
	require.True(t, written, "the same key announcing again was refused")
	require.Equal(t, "b:2", addrAt())

	_, err = cli.Put(ctx, key, "\xff") // no lease, undecodable: not a live record
	require.NoError(t, err)
	_, written, err = s.ClaimGateway(ctx, b, rec(3, "c:1"), ClaimNew)
	require.NoError(t, err)
	require.True(t, written)
	require.Equal(t, "c:1", addrAt())
}

// PutReservedImportsAt writes an import only while its address is
// reserved for its service, unchanged; otherwise nothing of the batch.
func TestPutReservedImports(t *testing.T) {
	_, cli := etcdtest.Start(t)
	s := New(cli, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	prefix := netip.MustParsePrefix("10.9.0.0/24")
	got, err := s.AllocateVIPs(ctx, "east", []string{"demo/a", "demo/b"}, VIPRanges{prefix}, nil)
	require.NoError(t, err)
	imp := func(svc string, ip netip.Addr) *causewayv1.ImportRecord {
		return &causewayv1.ImportRecord{Cluster: "east", Namespace: "demo", Name: svc, Ips: []string{ip.String()}}
	}
	_, err = s.PutReservedImportsAt(ctx, "east", []*causewayv1.ImportRecord{imp("a", got["demo/a"]), imp("b", got["demo/b"])})
	require.NoError(t, err)

	// b's address for a: refused, nothing written.
	_, err = s.PutReservedImportsAt(ctx, "east", []*causewayv1.ImportRecord{imp("c", got["demo/c"]), imp("a", got["demo/b"])})
	require.ErrorIs(t, err, ErrVIPNotReserved)

	// The reservation is deleted behind the cache's back: refused.
	_, err = cli.Delete(ctx, VIPKey("east", got["demo/a"].String()))
	require.NoError(t, err)
	_, err = s.PutReservedImportsAt(ctx, "east", []*causewayv1.ImportRecord{imp("a", got["demo/a"])})
	require.ErrorIs(t, err, ErrVIPNotReserved)

	// Re-allocating with the import's address held gives it back.
	again, err := s.AllocateVIPs(ctx, "east", []string{"demo/a", "demo/new"}, VIPRanges{prefix},
		map[string]netip.Addr{"demo/a": got["demo/a"], "demo/b": got["demo/b"]})
	require.NoError(t, err)
	require.Equal(t, got["demo/a"], again["demo/a"])
	require.NotContains(t, []netip.Addr{got["demo/a"], got["demo/b"]}, again["demo/new"])
	_, err = s.PutReservedImportsAt(ctx, "east", []*causewayv1.ImportRecord{imp("a", got["demo/a"])})
	require.NoError(t, err)
}
