package gateway

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// TestIngressFlowIdleTimeout: a flow that keeps carrying bytes outlives
// FlowIdleTimeout several times over; once silent it is reset (FLOW_RESET)
// after FlowIdleTimeout.
func TestIngressFlowIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	f := newFixture(t, func(c *Config) { c.FlowIdleTimeout = idle })
	cert, err := f.clusters["east"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	conn, err := f.peerConn(t, cert, f.allBundles())
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	require.NoError(t, tunnel.WriteFrame(s, header("east")))
	require.NoError(t, s.SetDeadline(time.Now().Add(10*time.Second)))
	resp, err := tunnel.ReadResponse(s, 0)
	require.NoError(t, err)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OK, resp.GetCode())

	// Busy for 4×idle: one echo every idle/4.
	tick := time.NewTicker(idle / 4)
	defer tick.Stop()
	busyUntil := time.Now().Add(4 * idle)
	buf := make([]byte, 4)
	for i := 0; time.Now().Before(busyUntil) && i < 100; i++ {
		<-tick.C
		_, err := s.Write([]byte("ping"))
		require.NoError(t, err, "a busy flow was closed")
		_, err = io.ReadFull(s, buf)
		require.NoError(t, err, "a busy flow was closed")
	}
	// Silent from now: the gateway resets the flow.
	silent := time.Now()
	_, err = s.Read(buf)
	waited := time.Since(silent)
	var se *quic.StreamError
	require.True(t, errors.As(err, &se), "want a stream reset, got %v", err)
	require.Equal(t, tunnel.CodeFlowReset, se.ErrorCode)
	require.GreaterOrEqual(t, waited, idle-50*time.Millisecond)
	require.Less(t, waited, idle+2*time.Second)
	t.Logf("silent flow reset after %v (FlowIdleTimeout %v)", waited.Round(time.Millisecond), idle)
	require.NoError(t, conn.Context().Err(), "the connection must survive")
}
