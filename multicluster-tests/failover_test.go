package multicluster

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGatewayFailover is the gateway failover acceptance (and fault
// scenarios 2, 4 and 8) with real processes: west calls echo, exported by
// east (same region, preferred) and north (another region), while (a)
// east's backend stops, (b) east is drained with the CLI, then only east's
// echo, (c) east's gateway is killed with SIGKILL, then restarted; also
// east's endpoint turns unready (fault scenario 3). In (a) and (b) no
// request fails; in (c) only requests in flight at the kill may
// fail; in each, traffic is on north within 2 s, and back on east after.
// Locality first: east and north each reach their own backend.
// Over 80 lines: one scenario whose steps share the servers it starts.
func TestGatewayFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nine causeway processes")
	}
	s := startPSet(t, 84, 1, []pclusterSpec{
		{name: "west", region: "us", zone: "us-1a"},
		{name: "east", region: "us", zone: "us-1b", exports: []string{"echo"}},
		{name: "north", region: "eu", zone: "eu-1a", exports: []string{"echo"}},
	})
	west, east := s.clusters["west"], s.clusters["east"]
	for _, own := range []string{"east", "north"} {
		ownVIP := s.resolveVIP(s.clusters[own], "echo.demo.svc.clusterset.local", 30*time.Second)
		l := startTraffic("http://"+net.JoinHostPort(ownVIP, "8080")+"/", 1)
		defer l.stop() // on a failure before the stop below
		l.waitServedBy(t, time.Now(), own, 10, 30*time.Second)
		rs := l.stop()
		for _, r := range rs {
			require.NoError(t, r.err, "a request from %s to its own echo", own)
			require.Equal(t, own, r.cluster, "%s's own backend is healthy, yet %s answered", own, r.cluster)
		}
		t.Logf("locality: %s's %d requests all served by %s itself", own, len(rs), own)
	}
	vip := s.resolveVIP(west, "echo.demo.svc.clusterset.local", 30*time.Second)
	url := "http://" + net.JoinHostPort(vip, "8080") + "/"
	loop := startOpenTraffic(url, 10*time.Millisecond)
	defer loop.stop()
	loop.waitServedBy(t, time.Now(), "east", 20, 30*time.Second)

	// moved checks the fault applied at `at` (failures counted from
	// `from`, before the operator's command started).
	moved := func(name string, from, at time.Time, lossOK func(result) bool) {
		t.Helper()
		first := loop.waitServedBy(t, at, "north", 20, 10*time.Second)
		took := max(first.Sub(at), 0)
		rs := loop.since(from)
		var bad []result
		for _, r := range failures(rs) {
			if lossOK == nil || !lossOK(r) {
				bad = append(bad, r)
			}
		}
		t.Logf("%s: traffic on north %s after the fault; %d requests since, %d failed (%d allowed)",
			name, took.Round(time.Millisecond), len(rs), len(failures(rs)), len(failures(rs))-len(bad))
		for _, r := range bad {
			t.Errorf("%s: request %s–%s failed: %v", name, r.start.Format("15:04:05.000"), r.end.Format("15:04:05.000"), r.err)
		}
		require.LessOrEqual(t, took, 2*time.Second, "%s: traffic moved after %s", name, took)
	}
	back := func() {
		t.Helper()
		loop.waitServedBy(t, time.Now(), "east", 20, 60*time.Second)
	}

	// (a) east's backend stops: the ingress cannot dial it, the stream is
	// refused before any byte reached a backend, and west retries north.
	at := time.Now()
	addr := east.stopBackend("echo")
	moved("backend stopped", at, at, nil)
	east.restartBackend(t, "echo", addr)
	back()

	// (a') east's endpoint becomes unready (its readiness probe fails):
	// east exports no ready endpoint, so west and east's own clients (whose
	// local backend it is) move to north. (The static source re-reads its
	// file every second, so the time to move is not bounded by 2 s here.)
	eastVIP := s.resolveVIP(east, "echo.demo.svc.clusterset.local", 10*time.Second)
	local := startOpenTraffic("http://"+net.JoinHostPort(eastVIP, "8080")+"/", 10*time.Millisecond)
	defer local.stop() // on a failure before the stop below
	local.waitServedBy(t, time.Now(), "east", 20, 30*time.Second)
	from := time.Now()
	east.setReady(t, "echo", false)
	for _, l := range []struct {
		name string
		loop *trafficLoop
	}{{"west", loop}, {"east (local backend unready)", local}} {
		first := l.loop.waitServedBy(t, from, "north", 20, 10*time.Second)
		rs := l.loop.since(from)
		t.Logf("endpoints unready: %s's traffic on north %s after the change; %d requests since, %d failed",
			l.name, first.Sub(from).Round(time.Millisecond), len(rs), len(failures(rs)))
		require.Empty(t, failures(rs), "%s's requests failed while east's endpoints became unready", l.name)
	}
	east.setReady(t, "echo", true)
	local.waitServedBy(t, time.Now(), "east", 20, 30*time.Second)
	require.Empty(t, failures(local.stop()), "east's own clients saw failures")
	back()

	// eastCLI runs an operator verb against east's federator.
	eastCLI := func(args ...string) { mustCLI(t, nil, append(args, s.adminArgs(east)...)...) }

	// (b) causeway drain east.
	from = time.Now()
	eastCLI("drain", "east", "--reason", "failover test")
	moved("drain", from, time.Now(), nil) // the drain is applied when the command returns
	eastCLI("undrain", "east")
	back()

	// (b') causeway drain east --service demo/echo: only that service.
	from = time.Now()
	eastCLI("drain", "east", "--service", "demo/echo", "--reason", "failover test")
	moved("service drain", from, time.Now(), nil)
	eastCLI("undrain", "east", "--service", "demo/echo")
	back()

	// (c) east's gateway killed: requests in flight at the kill may fail.
	at = time.Now()
	east.gw.Kill()
	killed := time.Now()
	moved("gateway SIGKILL", at, at, func(r result) bool { return r.start.Before(killed) })
	s.restartGateway(east)
	back()
}
