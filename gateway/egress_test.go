package gateway

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// egressPeerInstances returns g's current instances of cluster by name.
func egressPeerInstances(g *Gateway, cluster string) map[string]*instance {
	p := g.peers.get(cluster)
	out := map[string]*instance{}
	if p == nil {
		return out
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range p.instances {
		out[in.name] = in
	}
	return out
}

func egressInstanceState(in *instance) (open int, remote string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.conn != nil && in.conn.Context().Err() == nil {
		remote = in.conn.RemoteAddr().String()
	}
	return in.openLocked(), remote
}

// egressOpenFlow opens a flow through addr and waits for the first echo of
// msg; the caller closes it.
func egressOpenFlow(t *testing.T, addr, tag, msg string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(c, msg)
	require.NoError(t, err)
	want := tag + " " + msg
	got := make([]byte, len(want))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, want, string(got))
	return c
}

// TestEgressUsesEveryPeerInstance: west runs two gateway instances; east
// keeps a connection to each and spreads concurrent flows over both by
// power of two choices on open streams (with two instances, exactly even).
func TestEgressUsesEveryPeerInstance(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 2})
	f.export("west", egressTaggedEcho(t, "west"))
	f.importTo("east")
	f.start()
	east := f.gw("east/gw-0")
	vip := f.vip("east/gw-0", egressVIP)

	var flows []net.Conn
	for i := range 10 {
		flows = append(flows, egressOpenFlow(t, vip, "west", fmt.Sprintf("flow %d", i)))
	}
	ins := egressPeerInstances(east, "west")
	require.Len(t, ins, 2)
	remotes := map[string]bool{}
	for name, in := range ins {
		open, remote := egressInstanceState(in)
		require.Equal(t, 5, open, "flows on west/%s", name)
		require.NotEmpty(t, remote, "west/%s not connected", name)
		remotes[remote] = true
	}
	require.Equal(t, map[string]bool{
		f.instances["west/gw-0"].udp.LocalAddr().String(): true,
		f.instances["west/gw-1"].udp.LocalAddr().String(): true,
	}, remotes, "one connection per west instance")
	require.Equal(t, 10, east.openStreams("west"))

	for _, c := range flows {
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		_, err := io.ReadAll(c)
		require.NoError(t, err)
		require.NoError(t, c.Close())
	}
	require.Eventually(t, func() bool { return east.openStreams("west") == 0 }, 10*time.Second, 5*time.Millisecond)
	// Both connections stay open (warm) without flows.
	for name, in := range ins {
		_, remote := egressInstanceState(in)
		require.NotEmpty(t, remote, "west/%s connection closed while idle", name)
	}
}

// TestEgressRetriesRefusedStreamAndEjects: west (same region) is tried
// first but its only endpoint refuses connections, so its gateway answers
// DIAL_FAILED; the flow moves to north and the client sees a normal
// answer. West is ejected for 1s, skipped while ejected, re-admitted when
// the (fake) time has passed, and ejected for 2s after its next failure.
func TestEgressRetriesRefusedStreamAndEjects(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r1", zone: "z2", instances: 1},
		egressClusterSpec{name: "north", region: "r2", zone: "z3", instances: 1})
	f.export("west", egressRefusingAddr(t))
	f.export("north", egressTaggedEcho(t, "north"))
	f.importTo("east")
	f.start()
	east := f.gw("east/gw-0")
	vip := f.vip("east/gw-0", egressVIP)
	retries := func() float64 { return testutil.ToFloat64(east.metrics.retries) }
	explainWest := func() ExplainedCluster {
		e, err := east.Explain(egressKey, egressPort)
		require.NoError(t, err)
		for _, c := range e.Clusters {
			if c.Cluster == "west" {
				return c
			}
		}
		t.Fatal("west not in the explanation")
		return ExplainedCluster{}
	}
	require.Equal(t, StatusCandidate, explainWest().Status)
	require.Equal(t, 1, explainWest().Order)

	require.Equal(t, "north", egressServedBy(t, vip, "first"))
	require.Equal(t, 1.0, retries(), "the flow was retried once")
	until := f.clock.Now().Add(time.Second)
	require.Equal(t, until, east.outliers.ejectedUntil("west"))
	require.Equal(t, 1.0, testutil.ToFloat64(east.metrics.ejections.WithLabelValues("west")))
	require.Equal(t, 1.0, testutil.ToFloat64(east.metrics.ejected.WithLabelValues("west")))
	w := explainWest()
	require.Equal(t, StatusLastResort, w.Status)
	require.Equal(t, "ejected until "+until.Format(time.RFC3339), w.Reason)
	require.Equal(t, 1, w.ConsecutiveFailures)

	// Ejected: the next flow goes straight to north.
	require.Equal(t, "north", egressServedBy(t, vip, "second"))
	require.Equal(t, 1.0, retries(), "an ejected cluster was tried")

	// Re-admitted after a second; it fails again and is ejected for 2s.
	f.clock.Advance(time.Second)
	require.Equal(t, 0.0, testutil.ToFloat64(east.metrics.ejected.WithLabelValues("west")))
	require.Equal(t, StatusCandidate, explainWest().Status)
	require.Equal(t, "north", egressServedBy(t, vip, "third"))
	require.Equal(t, 2.0, retries())
	require.Equal(t, f.clock.Now().Add(2*time.Second), east.outliers.ejectedUntil("west"))
	require.Equal(t, 2.0, testutil.ToFloat64(east.metrics.ejections.WithLabelValues("west")))
}

// TestEgressTriesEjectedClusterAsLastResort: with the only exporting
// cluster ejected the flow still goes there rather than failing, and the
// success re-admits it.
func TestEgressTriesEjectedClusterAsLastResort(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1})
	f.export("west", egressTaggedEcho(t, "west"))
	f.importTo("east")
	f.start()
	east := f.gw("east/gw-0")
	require.True(t, east.outliers.failure("west"))
	require.False(t, east.outliers.ejectedUntil("west").IsZero())

	require.Equal(t, "west", egressServedBy(t, f.vip("east/gw-0", egressVIP), "anyway"))
	require.True(t, east.outliers.ejectedUntil("west").IsZero(), "a success re-admits")
	require.Zero(t, east.outliers.consecutiveFailures("west"))
	require.Equal(t, 0.0, testutil.ToFloat64(east.metrics.ejected.WithLabelValues("west")))
}

// TestEgressRetiresInstanceAfterItsStreams: a west instance that leaves the
// catalog takes no new flow, its open flow carries on, and east closes the
// connection once that flow has ended.
func TestEgressRetiresInstanceAfterItsStreams(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 2})
	f.export("west", egressTaggedEcho(t, "west"))
	f.importTo("east")
	f.start()
	east := f.gw("east/gw-0")
	vip := f.vip("east/gw-0", egressVIP)

	old := egressOpenFlow(t, vip, "west", "old flow")
	var gone *instance
	for _, in := range egressPeerInstances(east, "west") {
		if open, _ := egressInstanceState(in); open == 1 {
			gone = in
		}
	}
	require.NotNil(t, gone, "no instance carries the flow")
	gone.mu.Lock()
	goneConn := gone.conn
	gone.mu.Unlock()
	f.update(func(e map[string]*causewayv1.Entry) { delete(e, "gateways/west/"+gone.name) })
	require.Eventually(t, func() bool { return len(egressPeerInstances(east, "west")) == 1 }, 10*time.Second, 5*time.Millisecond)

	// New flows go to the remaining instance only.
	for i := range 3 {
		c := egressOpenFlow(t, vip, "west", fmt.Sprintf("new flow %d", i))
		require.NoError(t, c.Close())
	}
	open, _ := egressInstanceState(gone)
	require.Equal(t, 1, open, "a new flow went to the retired instance")

	// The old flow still works on the retired instance's connection.
	require.NoError(t, goneConn.Context().Err(), "connection closed under an open flow")
	_, err := io.WriteString(old, " more")
	require.NoError(t, err)
	require.NoError(t, old.(*net.TCPConn).CloseWrite())
	rest, err := io.ReadAll(old)
	require.NoError(t, err)
	require.Equal(t, " more", string(rest))
	require.NoError(t, old.Close())

	select {
	case <-goneConn.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the retired instance's connection stayed open after its last flow")
	}
}

// TestEgressAvoidsDrainingInstance: one of west's two gateways answers
// DRAINING; east retries the flow on the other instance of west (the
// client sees a normal answer), sends no new flow to the draining one, and
// does not hold it against west.
func TestEgressAvoidsDrainingInstance(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 2})
	f.export("west", egressTaggedEcho(t, "west"))
	f.importTo("east")
	f.start()
	east := f.gw("east/gw-0")
	vip := f.vip("east/gw-0", egressVIP)
	west0 := f.gw("west/gw-0")
	west0.drainingMu.Lock()
	west0.draining = true
	west0.drainingMu.Unlock()

	drainingSeen := func() bool {
		in := egressPeerInstances(east, "west")["gw-0"]
		if in == nil {
			return false
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.draining
	}
	// Power of two choices over two idle instances picks either; within 64
	// flows gw-0 is picked (all but certainly).
	for i := 0; i < 64 && !drainingSeen(); i++ {
		require.Equal(t, "west", egressServedBy(t, vip, fmt.Sprintf("flow %d", i)))
	}
	require.True(t, drainingSeen(), "gw-0 was never picked")
	require.Equal(t, 1.0, testutil.ToFloat64(east.metrics.retries))
	for i := range 5 {
		require.Equal(t, "west", egressServedBy(t, vip, fmt.Sprintf("after %d", i)))
	}
	require.Equal(t, 1.0, testutil.ToFloat64(east.metrics.retries), "a flow went to the draining instance")
	require.True(t, east.outliers.ejectedUntil("west").IsZero(), "DRAINING ejected west")

	e, err := east.Explain(egressKey, egressPort)
	require.NoError(t, err)
	states := map[string]string{}
	for _, gw := range e.Clusters[0].Gateways {
		states[gw.Instance] = gw.State
	}
	require.Equal(t, map[string]string{"gw-0": GatewayDraining, "gw-1": GatewayConnected}, states)
}

// TestEgressAvoidsSilentInstance: one of west's two gateways vanishes
// without a word (its socket closes); east notices the silence within two
// keep-alive periods, long before the idle timeout, and sends new flows to
// the other instance without even trying the silent one.
func TestEgressAvoidsSilentInstance(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 2})
	f.export("west", egressTaggedEcho(t, "west"))
	f.importTo("east")
	f.start()
	east := f.gw("east/gw-0")
	vip := f.vip("east/gw-0", egressVIP)

	// The first flow activates west: east connects to both instances.
	require.Equal(t, "west", egressServedBy(t, vip, "warm up"))
	var gw0 *instance
	require.Eventually(t, func() bool {
		ins := egressPeerInstances(east, "west")
		for _, in := range ins {
			if _, remote := egressInstanceState(in); remote == "" {
				return false
			}
		}
		gw0 = ins["gw-0"]
		return len(ins) == 2
	}, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, f.instances["west/gw-0"].udp.Close())
	killed := time.Now()
	require.Eventually(t, func() bool {
		gw0.mu.Lock()
		defer gw0.mu.Unlock()
		return gw0.silent
	}, 5*time.Second, 5*time.Millisecond)
	detected := time.Since(killed)
	require.Less(t, detected, 2500*time.Millisecond, "silence noticed too late (the idle timeout would have closed the connection)")
	t.Logf("silent gateway avoided %v after it vanished", detected.Round(time.Millisecond))

	retries := testutil.ToFloat64(east.metrics.retries)
	for i := range 8 {
		require.Equal(t, "west", egressServedBy(t, vip, fmt.Sprintf("flow %d", i)))
	}
	require.Equal(t, retries, testutil.ToFloat64(east.metrics.retries), "a flow tried the silent instance")
	e, err := east.Explain(egressKey, egressPort)
	require.NoError(t, err)
	states := map[string]string{}
	for _, gw := range e.Clusters[0].Gateways {
		states[gw.Instance] = gw.State
	}
	require.Equal(t, GatewaySilent, states["gw-0"])
	require.Equal(t, GatewayConnected, states["gw-1"])
}
