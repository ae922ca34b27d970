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

// openFlow opens a demo/echo flow as east on conn and returns the stream
// after the gateway's answer.
func openFlow(ctx context.Context, t *testing.T, conn *quic.Conn) (*quic.Stream, causewayv1.StreamCode) {
	t.Helper()
	s, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	require.NoError(t, s.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, tunnel.WriteFrame(s, header("east")))
	resp, err := tunnel.ReadResponse(s, 0)
	require.NoError(t, err)
	return s, resp.GetCode()
}

func echoOnce(t *testing.T, s *quic.Stream, msg string) {
	t.Helper()
	_, err := io.WriteString(s, msg)
	require.NoError(t, err)
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	require.Equal(t, msg, string(buf))
}

// TestDrainAnswersDrainingAndGivesGrace stops west's gateway with two open
// flows: new streams get DRAINING at once, open flows keep working during
// ShutdownGrace, a flow that ends in time ends cleanly, and one still open
// when the grace is over is reset; then the connection closes without error.
func TestDrainAnswersDrainingAndGivesGrace(t *testing.T) {
	const grace = time.Second
	f := newFixture(t, func(c *Config) {
		if c.Cluster == "west" {
			c.ShutdownGrace = grace
		}
	})
	west := f.clusters["west"]
	cert, err := f.clusters["east"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	conn, err := f.peerConn(t, cert, f.allBundles())
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a, code := openFlow(ctx, t, conn)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OK, code)
	b, code := openFlow(ctx, t, conn)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OK, code)
	echoOnce(t, a, "before")

	west.stop() // SIGTERM
	stopped := time.Now()
	require.Eventually(t, west.gw.isDraining, 5*time.Second, 5*time.Millisecond)

	// New streams are refused with DRAINING (the egress side moves them on).
	for range 3 {
		s, code := openFlow(ctx, t, conn)
		require.Equal(t, causewayv1.StreamCode_STREAM_CODE_DRAINING, code)
		s.CancelWrite(0)
		s.CancelRead(0)
	}
	// Open flows still work, and a flow ending within the grace ends cleanly.
	echoOnce(t, a, "during the grace")
	echoOnce(t, b, "during the grace")
	require.NoError(t, a.Close())
	rest, err := io.ReadAll(a)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Less(t, time.Since(stopped), grace, "the checks above took longer than the grace")

	// b outlives the grace: it is reset, then the gateway stops.
	_, err = b.Read(make([]byte, 1))
	resetAfter := time.Since(stopped)
	var se *quic.StreamError
	var ae *quic.ApplicationError
	switch {
	case errors.As(err, &se):
		require.Equal(t, tunnel.CodeShutdown, se.ErrorCode)
	case errors.As(err, &ae):
		require.Equal(t, tunnel.ConnCodeNoError, ae.ErrorCode)
	default:
		t.Fatalf("want a shutdown reset, got %v", err)
	}
	require.GreaterOrEqual(t, resetAfter, grace-50*time.Millisecond)
	select {
	case <-west.done:
	case <-time.After(5 * time.Second):
		t.Fatal("west's Run did not return after the grace")
	}
	<-conn.Context().Done()
	require.ErrorAs(t, context.Cause(conn.Context()), &ae)
	require.Equal(t, tunnel.ConnCodeNoError, ae.ErrorCode)
	t.Logf("open flow reset %v after stop (grace %v); Run returned %v after stop",
		resetAfter.Round(time.Millisecond), grace, time.Since(stopped).Round(time.Millisecond))
}
