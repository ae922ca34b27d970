package gateway

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDeadPeerResetsClientFlows kills west's gateway socket in the middle
// of a flow from a client of east: east notices within keep-alive + idle
// timeout (500 ms + 2.5 s) and resets the client's TCP connection rather
// than leaving it hanging.
func TestDeadPeerResetsClientFlows(t *testing.T) {
	f := newFixture(t)
	c, err := net.Dial("tcp", f.vip("127.0.0.1:8080"))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf))

	// west vanishes: no CONNECTION_CLOSE can leave its socket.
	require.NoError(t, f.clusters["west"].udp.Close())
	killed := time.Now()
	_, err = c.Read(buf) // blocks until east gives up on west
	detected := time.Since(killed)
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ECONNRESET), "want a TCP reset, got %v", err)
	require.Less(t, detected, 3500*time.Millisecond, "dead peer detected too late")
	t.Logf("client flow reset %v after the peer's socket closed", detected.Round(time.Millisecond))
}
