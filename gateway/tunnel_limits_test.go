package gateway

import (
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/stretchr/testify/require"
)

func TestConfigLimitsDefaultsAndValidate(t *testing.T) {
	d := Config{Cluster: "east"}.withDefaults()
	require.Equal(t, tunnel.DefaultMaxHeaderSize, d.MaxHeaderSize)
	require.Equal(t, 5*time.Second, d.HeaderTimeout)
	require.Equal(t, 3*time.Second, d.DialTimeout)
	require.Equal(t, time.Second, d.ShutdownGrace)
	require.Equal(t, time.Hour, d.FlowIdleTimeout)
	require.Equal(t, int64(tunnel.DefaultMaxIncomingStreams), d.Tunnel.MaxIncomingStreams)

	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Cluster: "east"}, true},
		{"bad cluster", Config{Cluster: "East!"}, false},
		{"negative header size", Config{Cluster: "east", MaxHeaderSize: -1}, false},
		{"header size over the prefix", Config{Cluster: "east", MaxHeaderSize: tunnel.MaxFrameSize + 1}, false},
		{"negative header timeout", Config{Cluster: "east", HeaderTimeout: -time.Second}, false},
		{"negative dial timeout", Config{Cluster: "east", DialTimeout: -time.Second}, false},
		{"negative grace", Config{Cluster: "east", ShutdownGrace: -time.Second}, false},
		{"negative flow idle", Config{Cluster: "east", FlowIdleTimeout: -time.Second}, false},
		{"negative stream limit", Config{Cluster: "east", Tunnel: tunnel.Config{MaxIncomingStreams: -1}}, false},
		{"keep-alive above idle", Config{Cluster: "east", Tunnel: tunnel.Config{KeepAlivePeriod: 5 * time.Second}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
		})
	}
}
