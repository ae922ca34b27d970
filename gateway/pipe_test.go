package gateway

import (
	"bytes"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	s := <-accepted
	require.NotNil(t, s)
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestCopyFromTCP(t *testing.T) {
	t.Run("carries every byte then a clean EOF", func(t *testing.T) {
		client, server := tcpPair(t)
		want := make([]byte, 3*copyBufferSize+123)
		_, _ = rand.Read(want)
		go func() {
			// in pieces that do not line up with the copy buffer
			for off := 0; off < len(want); off += 50_000 {
				_, _ = client.Write(want[off:min(off+50_000, len(want))])
			}
			_ = client.CloseWrite()
		}()
		var got bytes.Buffer
		n, rerr, werr := copyFromTCP(&got, server)
		require.NoError(t, rerr)
		require.NoError(t, werr)
		require.Equal(t, int64(len(want)), n)
		require.True(t, bytes.Equal(want, got.Bytes()))
	})
	t.Run("a reset is a read error", func(t *testing.T) {
		client, server := tcpPair(t)
		_, err := client.Write([]byte("x"))
		require.NoError(t, err)
		require.NoError(t, client.SetLinger(0))
		require.NoError(t, client.Close())
		var got bytes.Buffer
		_, rerr, werr := copyFromTCP(&got, server)
		require.Error(t, rerr)
		require.NoError(t, werr)
	})
	t.Run("closing the source ends a waiting copy", func(t *testing.T) {
		_, server := tcpPair(t)
		done := make(chan error, 1)
		go func() {
			_, rerr, _ := copyFromTCP(&bytes.Buffer{}, server)
			done <- rerr
		}()
		require.NoError(t, server.Close()) // while it waits for data, or before it starts
		select {
		case err := <-done:
			require.Error(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("copy still waiting after its source was closed")
		}
	})
}
