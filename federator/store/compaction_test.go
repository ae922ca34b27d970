package store

import (
	"context"
	"slices"
	"testing"

	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
)

// A running watch falls behind while the only member its client knows is
// down; meanwhile the others update, add and delete keys and compact past
// the watch's next revision. When the member is back, Watch returns
// ErrCompacted (it does not skip the gap), and a re-list shows the current
// state, the deleted key gone, and a watch from the re-list's revision
// carries on.
func TestWatchCompactedWhileBehind(t *testing.T) {
	c := etcdtest.StartCluster(t, 3)
	victim := c.Follower()
	var others []string
	for i, ep := range c.Endpoints() {
		if i != victim {
			others = append(others, ep)
		}
	}
	s := New(c.NewClient(c.Endpoint(victim)), Options{})
	writer := New(c.NewClient(others...), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()

	keyA, keyB := ExportKeyOf("east", "demo", "a"), ExportKeyOf("east", "demo", "b")
	keyC, keyD := ExportKeyOf("east", "demo", "c"), ExportKeyOf("east", "demo", "d")
	require.NoError(t, writer.PutExport(ctx, testExport("east", "a", 80)))
	require.NoError(t, writer.PutExport(ctx, testExport("east", "b", 80)))
	entries, rev, err := s.List(ctx, Prefix)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	w := startRecordingWatch(t, s, rev+1)
	require.NoError(t, writer.PutExport(ctx, testExport("east", "c", 80)))
	w.waitFor(t, "c", upserted(keyC))

	c.StopMember(victim)
	require.NoError(t, writer.DeleteExport(ctx, "demo", "b", "east"))
	require.NoError(t, writer.PutExport(ctx, testExport("east", "d", 80)))
	require.NoError(t, writer.PutExport(ctx, testExport("east", "a", 81)))
	compactRev, err := writer.Revision(ctx)
	require.NoError(t, err)
	_, err = writer.Client().Compact(ctx, compactRev)
	require.NoError(t, err)
	c.RestartMember(victim)

	require.ErrorIs(t, w.waitDone(t), ErrCompacted)
	changes, _ := w.snapshot()
	for _, k := range []string{keyB, keyD} {
		_, seen := lastChange(changes, k)
		require.False(t, seen, "the watch saw %s although it was compacted away", k)
	}

	entries, relist, err := s.List(ctx, Prefix)
	require.NoError(t, err)
	require.GreaterOrEqual(t, relist, compactRev)
	var keys []string
	for _, e := range entries {
		keys = append(keys, Prefix+e.GetKey())
		if e.GetKey() == RelativeKey(keyA) {
			require.Equal(t, uint32(81), e.GetExport().GetPorts()[0].GetPort(), "a's update")
		}
	}
	slices.Sort(keys)
	require.Equal(t, []string{keyA, keyC, keyD}, keys)

	again := startRecordingWatch(t, s, relist+1)
	require.NoError(t, writer.PutExport(ctx, testExport("east", "e", 80)))
	again.waitFor(t, "e after the re-list", upserted(ExportKeyOf("east", "demo", "e")))
	changes, _ = again.snapshot()
	require.Len(t, changes, 1, "the new watch replayed history: %v", changes)
}
