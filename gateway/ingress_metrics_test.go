package gateway

import (
	"context"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// TestIngressMetricsLabels: streams are counted by direction, service,
// peer cluster and result with service names only from the catalog, and
// the peer RTT gauge is read from live connections.
func TestIngressMetricsLabels(t *testing.T) {
	regs := map[string]*prometheus.Registry{"east": prometheus.NewRegistry(), "west": prometheus.NewRegistry()}
	f := newFixture(t, func(c *Config) { c.Registerer = regs[c.Cluster] })
	cert, err := f.clusters["east"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	conn, err := f.peerConn(t, cert, f.allBundles())
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	require.NoError(t, certsTunnelRequest(ctx, conn, "counted"))
	for _, svc := range []string{"nope-1", "nope-2", "nope-3"} { // hostile names must not become labels
		s, err := conn.OpenStreamSync(ctx)
		require.NoError(t, err)
		h := header("east")
		h.Service = svc
		_, code := exchangeHeader(t, s, h)
		require.Equal(t, causewayv1.StreamCode_STREAM_CODE_UNKNOWN_SERVICE, code)
	}
	streams := f.clusters["west"].gw.metrics.streams.vec
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(streams.WithLabelValues("ingress", "demo/echo", "east", resultOK)) == 1 &&
			testutil.ToFloat64(streams.WithLabelValues("ingress", labelOther, "east", resultRefused)) == 3
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 2, testutil.CollectAndCount(streams), "only the catalog service and other")

	// The RTT gauge: west measures east on the connection east opened;
	// east measures west on its own (dialed) connection once it used it.
	require.NoError(t, certsEchoThroughEgress(f.vip("127.0.0.1:8080"), "rtt"))
	rtt := func(reg *prometheus.Registry, peer string) bool {
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range families {
			if mf.GetName() != "causeway_gateway_peer_rtt_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == peer && m.GetGauge().GetValue() > 0 {
					return true
				}
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return rtt(regs["west"], "east") && rtt(regs["east"], "west") },
		10*time.Second, 10*time.Millisecond, "no causeway_gateway_peer_rtt_seconds for east at west and west at east")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.clusters["east"].gw.metrics.streams.vec.WithLabelValues("egress", "demo/echo", "west", resultOK)) == 1
	}, 10*time.Second, 10*time.Millisecond, "egress flow counted with service and peer cluster")
	for _, reg := range regs {
		problems, err := testutil.GatherAndLint(reg)
		require.NoError(t, err)
		require.Empty(t, problems)
	}
}

// exchangeHeader writes h on s and reads the answer.
func exchangeHeader(t *testing.T, s *quic.Stream, h *causewayv1.StreamHeader) (*causewayv1.StreamResponse, causewayv1.StreamCode) {
	t.Helper()
	require.NoError(t, s.SetDeadline(time.Now().Add(5*time.Second)))
	require.NoError(t, tunnel.WriteFrame(s, h))
	resp, err := tunnel.ReadResponse(s, 0)
	require.NoError(t, err)
	_ = s.Close()
	return resp, resp.GetCode()
}
