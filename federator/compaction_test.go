package federator

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// The mirror's etcd member goes down; meanwhile another cluster's exports
// change (one updated, one added, one deleted) and etcd is compacted past
// everything the mirror saw. The catalog keeps serving its last view while
// the member is down; once it is back, the watch reports the compaction,
// the mirror re-lists, and the catalog shows the current exports without
// the deleted one.
func TestMirrorRelistsAfterCompaction(t *testing.T) {
	c := etcdtest.StartCluster(t, 3)
	victim := c.Follower()
	var others []string
	for i, ep := range c.Endpoints() {
		if i != victim {
			others = append(others, ep)
		}
	}
	writer := store.New(c.NewClient(others...), store.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	export := func(svc string, port uint32) *causewayv1.ExportRecord {
		return &causewayv1.ExportRecord{Namespace: "demo", Name: svc, Cluster: "east",
			Type:  causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports: []*causewayv1.ServicePort{{Name: "http", Port: port, Protocol: causewayv1.Protocol_PROTOCOL_TCP}}}
	}
	require.NoError(t, writer.PutExport(ctx, export("a", 80)))
	require.NoError(t, writer.PutExport(ctx, export("b", 80)))
	require.NoError(t, writer.PutCluster(ctx, &causewayv1.ClusterRecord{Name: "east", Region: "r-east"}))

	logs := &recordedLog{}
	f, err := New(Config{Cluster: "west", TrustDomain: "west.clusterset.local", Instance: "west-0",
		VIPRanges: []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24")}, Authorities: [][]byte{{1}},
		Logger: slog.New(logs)}, store.New(c.NewClient(c.Endpoint(victim)), store.Options{}))
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx, noExports{}) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	a, b, d := catalog.ServiceKey{Namespace: "demo", Name: "a"}, catalog.ServiceKey{Namespace: "demo", Name: "b"}, catalog.ServiceKey{Namespace: "demo", Name: "d"}
	exported := func(v *catalog.View) []catalog.ServiceKey {
		var out []catalog.ServiceKey
		for _, k := range v.ExportedServices() {
			if _, ok := v.Export(k, "east"); ok {
				out = append(out, k)
			}
		}
		return out
	}
	waitMirror(t, f, "a and b", func(v *catalog.View) bool {
		_, ok := v.Cluster("east")
		return ok && slices.Equal(exported(v), []catalog.ServiceKey{a, b})
	})

	c.StopMember(victim)
	// A value that no longer decodes, seen first by the re-list: the
	// mirror keeps its last good value.
	_, err = writer.Client().Put(ctx, store.ClusterKey("east"), "\xff\xff")
	require.NoError(t, err)
	require.NoError(t, writer.DeleteExport(ctx, "demo", "b", "east"))
	require.NoError(t, writer.PutExport(ctx, export("d", 80)))
	require.NoError(t, writer.PutExport(ctx, export("a", 81)))
	rev, err := writer.Revision(ctx)
	require.NoError(t, err)
	_, err = writer.Client().Compact(ctx, rev)
	require.NoError(t, err)
	require.Equal(t, []catalog.ServiceKey{a, b}, exported(f.Feed().View()), "the mirror saw writes it cannot reach")
	relists := testutil.ToFloat64(f.metrics.relists)

	c.RestartMember(victim)
	waitMirror(t, f, "the exports after the compaction", func(v *catalog.View) bool {
		x, ok := v.Export(a, "east")
		return ok && x.GetPorts()[0].GetPort() == 81 && slices.Equal(exported(v), []catalog.ServiceKey{a, d})
	})
	require.True(t, logs.has("catalog watch compacted; re-listing"), "re-listed for another reason: %v", logs.messages())
	east, ok := f.Feed().View().Cluster("east")
	require.True(t, ok, "the re-list dropped a key whose value stopped decoding")
	require.Equal(t, "r-east", east.GetRegion())
	require.Greater(t, testutil.ToFloat64(f.metrics.relists), relists)
	require.GreaterOrEqual(t, f.Feed().View().Revision, rev)
}

// noExports is an ExportSource of a cluster that exports nothing.
type noExports struct{}

func (noExports) Run(ctx context.Context, publish func(context.Context, []*causewayv1.ExportRecord) error, _ func(error)) error {
	if err := publish(ctx, nil); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// waitMirror waits until cond holds for f's current view.
func waitMirror(t *testing.T, f *Federator, what string, cond func(*catalog.View) bool) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		changed := f.Feed().Changed()
		if cond(f.Feed().View()) {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// recordedLog is a slog.Handler keeping every record's message.
type recordedLog struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (h *recordedLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordedLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *recordedLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordedLog) WithGroup(string) slog.Handler      { return h }

func (h *recordedLog) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs)
}

func (h *recordedLog) has(msg string) bool { return slices.Contains(h.messages(), msg) }
