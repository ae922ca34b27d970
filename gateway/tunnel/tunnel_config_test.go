package tunnel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigDefaultsAreExplicit(t *testing.T) {
	q := Config{}.QUIC()
	// quic-go's own defaults (no keep-alive, 30 s idle, 100 streams) would
	// hide a dead peer for 30 s and cap a peer at 100 concurrent flows.
	// The idle timer restarts with the keep-alive, so detection takes
	// keep-alive + idle timeout: 3 s.
	require.Equal(t, 500*time.Millisecond, q.KeepAlivePeriod)
	require.Equal(t, 2500*time.Millisecond, q.MaxIdleTimeout)
	require.LessOrEqual(t, q.KeepAlivePeriod+q.MaxIdleTimeout, 3*time.Second)
	require.GreaterOrEqual(t, q.MaxIncomingStreams, int64(10_000), "one peer must carry the 10,000-flow bench target")
	require.Equal(t, int64(-1), q.MaxIncomingUniStreams)
	require.Equal(t, int64(DefaultMaxIncomingStreams), q.MaxIncomingStreams)

	custom := Config{KeepAlivePeriod: 200 * time.Millisecond, IdleTimeout: time.Second, MaxIncomingStreams: 7}.QUIC()
	require.Equal(t, 200*time.Millisecond, custom.KeepAlivePeriod)
	require.Equal(t, time.Second, custom.MaxIdleTimeout)
	require.Equal(t, int64(7), custom.MaxIncomingStreams)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"custom", Config{KeepAlivePeriod: time.Second, IdleTimeout: 10 * time.Second, MaxIncomingStreams: 50_000}, true},
		{"negative keep-alive", Config{KeepAlivePeriod: -1}, false},
		{"negative idle", Config{IdleTimeout: -time.Second}, false},
		{"negative handshake", Config{HandshakeTimeout: -time.Second}, false},
		{"negative streams", Config{MaxIncomingStreams: -1}, false},
		{"streams beyond QUIC", Config{MaxIncomingStreams: 1<<60 + 1}, false},
		{"keep-alive not below idle", Config{KeepAlivePeriod: 3 * time.Second}, false},
		{"idle below default keep-alive", Config{IdleTimeout: 400 * time.Millisecond}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}
