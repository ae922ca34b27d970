package component

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGatewayFairnessLimits: the fairness and L7 limits of a gateway file reach
// the gateway's Config, and a bad one names its key.
func TestGatewayFairnessLimits(t *testing.T) {
	const gw = goodClient + "instance: gw-1\nlisten: 10.0.0.5:4433\n"
	g, err := LoadGatewayConfig(writeConfig(t, gw+`limits:
  halfClosedTimeout: 20s
  maxFlowsPerSource: 64
  maxConnectionsPerPeerCluster: 4
  maxStreamsPerPeerCluster: 1000
  maxHeaderBytesPerPeerCluster: 1048576
  l7MaxHeaderBytes: 8192
  l7MaxBodyBytes: 1000000
`))
	require.NoError(t, err)
	c := g.gatewayConfig()
	require.Equal(t, 20*time.Second, c.HalfClosedTimeout)
	require.Equal(t, 64, c.MaxFlowsPerSource)
	require.Equal(t, 4, c.MaxPeerConns)
	require.Equal(t, 1000, c.MaxPeerStreams)
	require.Equal(t, int64(1<<20), c.MaxPeerHeaderBytes)
	require.Equal(t, 8192, c.L7.MaxHeaderBytes)
	require.Equal(t, int64(1000000), c.L7.MaxBodyBytes)

	for body, want := range map[string]string{
		"limits: {maxFlowsPerSource: -1}\n":            "limits.maxFlowsPerSource: want a whole number 1-",
		"limits: {maxConnectionsPerPeerCluster: -3}\n": "limits.maxConnectionsPerPeerCluster: want a whole number 1-",
		"limits: {halfClosedTimeout: -1s}\n":           "limits.halfClosedTimeout: want a positive duration",
		"limits: {l7MaxBodyBytes: -1}\n":               "limits.l7MaxBodyBytes: want a whole number 1-",
	} {
		_, err := LoadGatewayConfig(writeConfig(t, gw+body))
		require.ErrorContains(t, err, want)
	}
}
