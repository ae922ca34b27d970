package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// oldExportKey is the key of an export record before cluster-first keys.
func oldExportKey(ns, svc, cluster string) string {
	return Prefix + KindExports + "/" + ns + "/" + svc + "/" + cluster
}

// TestMigrateExportKeys: records at old-layout keys are ignored by readers
// (one log line naming the verb) and moved, value and creation time kept,
// by MigrateExportKeys; a new-layout record already there wins; a second
// run changes nothing.
func TestMigrateExportKeys(t *testing.T) {
	_, cli := etcdtest.Start(t)
	var logs bytes.Buffer
	s := New(cli, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	created := timestamppb.New(timestamppb.Now().AsTime().Add(-48 * 3600e9))
	put := func(key string, r *causewayv1.ExportRecord) {
		t.Helper()
		b, err := Encode(r)
		require.NoError(t, err)
		_, err = cli.Put(ctx, key, string(b))
		require.NoError(t, err)
	}
	old := testExport("east", "echo", 80)
	old.Created = created
	put(oldExportKey("demo", "echo", "east"), old)
	put(oldExportKey("demo", "web", "west"), testExport("west", "web", 81))
	// west already re-published web under the new layout: that one wins.
	newer := testExport("west", "web", 82)
	require.NoError(t, s.PutExport(ctx, newer))
	_, err := cli.Put(ctx, oldExportKey("demo", "junk", "north"), "not a record")
	require.NoError(t, err)

	entries, _, err := s.List(ctx, Prefix)
	require.NoError(t, err)
	require.Len(t, entries, 1, "readers ignore old-layout keys")
	require.Equal(t, 1, strings.Count(logs.String(), "causeway etcd migrate"), logs.String())

	m, err := MigrateExportKeys(ctx, cli)
	require.NoError(t, err)
	require.Equal(t, Migrated{Moved: 1, Dropped: 1, Skipped: 1}, m)

	entries, _, err = s.List(ctx, Prefix)
	require.NoError(t, err)
	got := map[string]*causewayv1.ExportRecord{}
	for _, e := range entries {
		got[e.GetKey()] = e.GetExport()
	}
	require.Len(t, got, 2)
	moved := got[RelativeKey(ExportKeyOf("east", "demo", "echo"))]
	require.NotNil(t, moved)
	require.True(t, created.AsTime().Equal(moved.GetCreated().AsTime()), "creation time kept")
	require.Equal(t, uint32(82), got[RelativeKey(ExportKeyOf("west", "demo", "web"))].GetPorts()[0].GetPort())
	for _, k := range []string{oldExportKey("demo", "echo", "east"), oldExportKey("demo", "web", "west")} {
		resp, err := cli.Get(ctx, k)
		require.NoError(t, err)
		require.Empty(t, resp.Kvs, k)
	}

	again, err := MigrateExportKeys(ctx, cli)
	require.NoError(t, err)
	require.Equal(t, Migrated{Skipped: 1}, again, "idempotent")
}

// TestClusterRolePermissions pins the role layout of docs/etcd-schema.md.
func TestClusterRolePermissions(t *testing.T) {
	var got []string
	for _, p := range ClusterRolePermissions("east") {
		got = append(got, p.String())
	}
	require.Equal(t, []string{
		"read /causeway/v1/*",
		"readwrite /causeway/v1/clusters/east",
		"readwrite /causeway/v1/bundles/east",
		"readwrite /causeway/v1/drain/east",
		"readwrite /causeway/v1/drain/east/*",
		"readwrite /causeway/v1/gateways/east/*",
		"readwrite /causeway/v1/exports/east/*",
		"readwrite /causeway/v1/imports/east/*",
		"readwrite /causeway/v1/vips/east/*",
		"readwrite /causeway/v1/leaders/east/*",
		"readwrite /causeway/v1/trust/east/*",
	}, got)
}
