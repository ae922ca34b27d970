package catalog

import (
	"context"
	"net"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// scriptedServer sends, on every Watch, the responses the test pushes.
type scriptedServer struct {
	causewayv1.UnimplementedCatalogServer
	streams chan chan *causewayv1.WatchResponse
	sinces  []int64 // since_revision of every Watch, in order; read after streams
}

func (s *scriptedServer) Watch(req *causewayv1.WatchRequest, stream grpc.ServerStreamingServer[causewayv1.WatchResponse]) error {
	ch := make(chan *causewayv1.WatchResponse, 8)
	s.sinces = append(s.sinces, req.GetSinceRevision())
	s.streams <- ch
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case resp, ok := <-ch:
			if !ok {
				return nil // the "federator" ends the stream
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
}

func clusterEntry(name string) *causewayv1.Entry {
	return &causewayv1.Entry{Key: "clusters/" + name, Record: &causewayv1.Entry_Cluster{Cluster: &causewayv1.ClusterRecord{SchemaVersion: SchemaVersion, Name: name}}}
}

func waitView(t *testing.T, c *Client, what string, cond func(*View) bool) *View {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch := c.Changed()
		if v := c.View(); cond(v) {
			return v
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestClientSnapshotDeltasAndFailStatic(t *testing.T) {
	srv := &scriptedServer{streams: make(chan chan *causewayv1.WatchResponse, 4)}
	gs := grpc.NewServer()
	causewayv1.RegisterCatalogServer(gs, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	c := NewClient(causewayv1.NewCatalogClient(conn), Options{Cluster: "west", MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	first := <-srv.streams
	require.False(t, c.IsReady(), "ready before any snapshot")
	first <- &causewayv1.WatchResponse{Reset_: true, Revision: 5, Upserts: []*causewayv1.Entry{clusterEntry("east"), clusterEntry("west")}}
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after a snapshot")
	}
	first <- &causewayv1.WatchResponse{Revision: 6, Deletes: []string{"clusters/east"}, Upserts: []*causewayv1.Entry{clusterEntry("north")}}
	v := waitView(t, c, "delta", func(v *View) bool { return v.Revision == 6 })
	require.Len(t, v.Clusters(), 2)
	_, ok := v.Cluster("east")
	require.False(t, ok)

	// The federator goes away: the last view stays, marked stale.
	close(first)
	v = waitView(t, c, "stale mark", func(v *View) bool { return !v.StaleSince.IsZero() })
	require.Len(t, v.Clusters(), 2, "losing the federator must not empty the view")

	// It comes back with a snapshot that no longer has "north": a delete
	// missed while disconnected converges, and the view is live again.
	second := <-srv.streams
	second <- &causewayv1.WatchResponse{Reset_: true, Revision: 9, Upserts: []*causewayv1.Entry{clusterEntry("west")}}
	v = waitView(t, c, "resync", func(v *View) bool { return v.Revision == 9 })
	require.True(t, v.StaleSince.IsZero())
	require.Len(t, v.Clusters(), 1)

	// Lost again: this time the server still knows revision 9 and resumes
	// with a delta; the client applies it onto its view.
	close(second)
	waitView(t, c, "stale mark", func(v *View) bool { return !v.StaleSince.IsZero() })
	third := <-srv.streams
	require.Equal(t, []int64{0, 6, 9}, srv.sinces, "the client resumes from its last revision")
	third <- &causewayv1.WatchResponse{Revision: 11, Upserts: []*causewayv1.Entry{clusterEntry("south")}}
	v = waitView(t, c, "resumed delta", func(v *View) bool { return v.Revision == 11 })
	require.True(t, v.StaleSince.IsZero(), "a resumed stream makes the view live again")
	require.Len(t, v.Clusters(), 2)

	// A record of a future schema version, or of no kind this build
	// knows, is not a deletion: the key keeps its last good value.
	future := clusterEntry("south")
	future.GetCluster().SchemaVersion, future.GetCluster().Region = SchemaVersion+1, "moved"
	third <- &causewayv1.WatchResponse{Revision: 12, Upserts: []*causewayv1.Entry{future, {Key: "clusters/west"}}}
	v = waitView(t, c, "delta with bad entries", func(v *View) bool { return v.Revision == 12 })
	south, ok := v.Cluster("south")
	require.True(t, ok, "an unreadable new value removed the key")
	require.Empty(t, south.GetRegion(), "the unreadable value replaced the last good one")
	_, ok = v.Cluster("west")
	require.True(t, ok)
	require.Equal(t, 2.0, testutil.ToFloat64(c.m.rejected))

	// Across a snapshot too.
	third <- &causewayv1.WatchResponse{Reset_: true, Revision: 13, Upserts: []*causewayv1.Entry{future, clusterEntry("west")}}
	v = waitView(t, c, "snapshot with a bad entry", func(v *View) bool { return v.Revision == 13 })
	south, ok = v.Cluster("south")
	require.True(t, ok, "an unreadable value in a snapshot removed the key")
	require.Empty(t, south.GetRegion())
}
