package gateway

import (
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestStreamCounterForget: the series of a peer or service that left the
// catalog are deleted, the others kept, and a series counted again after
// its deletion starts from zero (the counter's cache forgets it too).
func TestStreamCounterForget(t *testing.T) {
	s := newMetrics(nil).streams
	count := func(direction, service, peer, result string) float64 {
		t.Helper()
		c, err := s.vec.GetMetricWithLabelValues(direction, service, peer, result)
		require.NoError(t, err)
		return testutil.ToFloat64(c)
	}
	s.inc("egress", "demo/echo", "west", resultOK)
	s.inc("egress", "demo/echo", "east", resultOK)
	s.inc("egress", "demo/echo", "east", resultOK)
	s.inc("ingress", labelOther, "west", resultRefused)
	s.inc("ingress", labelOther, labelOther, resultError)

	s.forget(egressCandidatesView(map[string][2]string{"east": {"r", "z"}, "west": {"r", "z"}}))
	require.Equal(t, 4, testutil.CollectAndCount(s.vec), "nothing left the catalog")

	s.forget(egressCandidatesView(map[string][2]string{"east": {"r", "z"}}))
	require.Equal(t, 2, testutil.CollectAndCount(s.vec), "west's series are gone")
	require.Equal(t, 2.0, count("egress", "demo/echo", "east", resultOK))

	eastOnly := catalog.NewView(map[string]*causewayv1.Entry{"clusters/east": {Key: "clusters/east",
		Record: &causewayv1.Entry_Cluster{Cluster: &causewayv1.ClusterRecord{Name: "east"}}}}, 3)
	s.forget(eastOnly)
	require.Equal(t, 1, testutil.CollectAndCount(s.vec), "demo/echo is exported nowhere: its series are gone")

	s.inc("egress", "demo/echo", "east", resultOK)
	require.Equal(t, 1.0, count("egress", "demo/echo", "east", resultOK), "a deleted series starts afresh")
	require.Equal(t, 1.0, count("ingress", labelOther, labelOther, resultError))
}
