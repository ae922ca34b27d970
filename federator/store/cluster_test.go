package store

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// One member of a 3-member etcd cluster stops while a Store writes and
// watches through a client that knows every member. The watch stream is
// pinned to the member that stops (the client starts with that endpoint
// only and learns the others before the stop), so the stop really breaks
// the stream: the client resumes it on a survivor from the next revision.
// Writes after the stop succeed at once, and the watch delivers every one
// of them exactly once, in revision order, without ending.
// Over 80 lines: a table of cases, each a few lines.
func TestStoreSurvivesMemberStop(t *testing.T) {
	tests := []struct {
		name   string
		victim func(*etcdtest.Cluster) int
	}{
		{"follower", (*etcdtest.Cluster).Follower},
		{"leader", (*etcdtest.Cluster).WaitLeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := etcdtest.StartCluster(t, 3)
			victim := tc.victim(c)
			cli := c.NewClient(c.Endpoint(victim))
			s := New(cli, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
			defer cancel()

			_, rev, err := s.List(ctx, Prefix)
			require.NoError(t, err)
			w := startRecordingWatch(t, s, rev+1)
			before := ExportKeyOf("east", "demo", "before")
			require.NoError(t, s.PutExport(ctx, testExport("east", "before", 80)))
			w.waitFor(t, "the export written before the stop", upserted(before))
			cli.SetEndpoints(c.Endpoints()...)

			c.StopMember(victim)

			const n = 10
			prefix := netip.MustParsePrefix("10.20.0.0/24")
			want := make([]string, 0, n+1)
			vips := map[string]netip.Addr{}
			owner := map[netip.Addr]string{}
			for i := range n {
				svc := fmt.Sprintf("after-%d", i)
				require.NoError(t, s.PutExport(ctx, testExport("east", svc, uint32(8000+i))), "put export %d after the stop", i)
				a, err := s.AllocateVIP(ctx, "east", "demo", svc, VIPRanges{prefix})
				require.NoError(t, err, "allocate vip %d after the stop", i)
				if prev, dup := owner[a]; dup {
					t.Fatalf("vip %s given to %s and %s", a, prev, svc)
				}
				owner[a], vips[svc] = svc, a
				want = append(want, ExportKeyOf("east", "demo", svc))
			}
			sess, err := concurrency.NewSession(cli, concurrency.WithTTL(30), concurrency.WithContext(ctx))
			require.NoError(t, err)
			defer sess.Close()
			gw := &causewayv1.GatewayRecord{Cluster: "east", Instance: "gw-0", Addresses: []string{"192.0.2.1:4433"}}
			require.NoError(t, s.RegisterGateway(ctx, sess, gw))
			want = append(want, GatewayKey("east", "gw-0"))
			require.NoError(t, s.DeleteExport(ctx, "demo", "before", "east"))

			w.waitFor(t, "every write after the stop", func(changes []Change) bool {
				c, ok := lastChange(changes, before)
				return ok && c.Deleted && upserted(want...)(changes)
			})
			w.requireRunning(t)

			changes, revs := w.snapshot()
			for i := 1; i < len(revs); i++ {
				require.Greater(t, revs[i], revs[i-1], "batch revisions not increasing: %v", revs)
			}
			count := map[string]int{}
			for _, ch := range changes {
				count[ch.Key]++
			}
			for _, k := range want {
				require.Equal(t, 1, count[k], "changes of %s", k)
			}
			require.Equal(t, 2, count[before], "put and delete of %s", before)
			for i := range n {
				svc := fmt.Sprintf("after-%d", i)
				ch, _ := lastChange(changes, ExportKeyOf("east", "demo", svc))
				require.Equal(t, uint32(8000+i), ch.Entry.GetExport().GetPorts()[0].GetPort())
				// A repeated allocation returns the reservation.
				a, err := s.AllocateVIP(ctx, "east", "demo", svc, VIPRanges{prefix})
				require.NoError(t, err)
				require.Equal(t, vips[svc], a)
			}
		})
	}
}
