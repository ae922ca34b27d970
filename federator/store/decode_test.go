package store

import (
	"context"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// Values of a future schema version and bytes that do not decode, written
// raw among good records, reach no reader: Watch delivers no entry for
// them (a key that turns bad is delivered as undecodable, not deleted, so
// readers keep its last good value), counts each one in
// causeway_store_decode_errors_total by kind, and keeps delivering the
// good keys written after them; List skips the same keys.
// (TestListSkipsBadValues covers List on its own.)
func TestWatchSkipsBadValues(t *testing.T) {
	_, cli := etcdtest.Start(t)
	reg := prometheus.NewRegistry()
	s := New(cli, Options{Registerer: reg})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, rev, err := s.List(ctx, Prefix)
	require.NoError(t, err)
	w := startRecordingWatch(t, s, rev+1)

	future, err := proto.Marshal(&causewayv1.ClusterRecord{SchemaVersion: SchemaVersion + 1, Name: "west"})
	require.NoError(t, err)
	futureExport, err := proto.Marshal(&causewayv1.ExportRecord{SchemaVersion: SchemaVersion + 1, Namespace: "demo", Name: "echo", Cluster: "west"})
	require.NoError(t, err)
	raw := func(key, value string) {
		t.Helper()
		_, err := cli.Put(ctx, key, value)
		require.NoError(t, err)
	}
	east, west, north := ClusterKey("east"), ClusterKey("west"), ClusterKey("north")
	goodExport, badExport := ExportKeyOf("east", "demo", "echo"), ExportKeyOf("west", "demo", "echo")
	bundle := BundleKey("east")

	require.NoError(t, s.PutCluster(ctx, &causewayv1.ClusterRecord{Name: "east"}))
	raw(west, string(future))
	raw(north, "\xff\xff\xff")
	raw(badExport, string(futureExport))
	require.NoError(t, s.PutExport(ctx, testExport("east", "echo", 80)))
	raw(east, "\x0a") // a good key turns undecodable (truncated field)
	require.NoError(t, s.PutBundle(ctx, &causewayv1.TrustBundle{Cluster: "east", TrustDomain: "east.local"}))

	w.waitFor(t, "the bundle written last", upserted(bundle))
	w.requireRunning(t)
	changes, _ := w.snapshot()
	for _, k := range []string{west, north, badExport, east} {
		c, ok := lastChange(changes, k)
		require.True(t, ok, "no change for %s", k)
		require.Nil(t, c.Entry, "%s delivered an entry", k)
		require.True(t, c.Undecodable, "%s: a bad value must be flagged", k)
		require.False(t, c.Deleted, "%s: a bad value is not a deletion", k)
	}
	c, _ := lastChange(changes, goodExport)
	require.Equal(t, uint32(80), c.Entry.GetExport().GetPorts()[0].GetPort())
	require.Equal(t, 3.0, testutil.ToFloat64(s.metrics.decodeErrors.WithLabelValues(KindClusters)))
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.decodeErrors.WithLabelValues(KindExports)))

	entries, _, err := s.List(ctx, Prefix)
	require.NoError(t, err)
	var keys []string
	for _, e := range entries {
		keys = append(keys, Prefix+e.GetKey())
	}
	require.ElementsMatch(t, []string{goodExport, bundle}, keys)
	require.Equal(t, 6.0, testutil.ToFloat64(s.metrics.decodeErrors.WithLabelValues(KindClusters)))
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.decodeErrors.WithLabelValues(KindExports)))
	n, err := testutil.GatherAndCount(reg, "causeway_store_decode_errors_total")
	require.NoError(t, err)
	require.Equal(t, 2, n, "one series per kind")
}
