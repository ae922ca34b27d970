package admin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// serve runs s on a loopback port until the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Serve(ctx, ln) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ln.Addr().String()
}

// closedWithin reports whether the server closes c (a read returns EOF or
// a reset) before d passes; a read deadline of d bounds the wait.
func closedWithin(c net.Conn, r *bufio.Reader, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestSecurityF10_IdleAdminConnectionsClosed replays F10 against a real
// admin server with the default limits: keep-alive connections left idle
// after a request, and connections that never send a byte, are closed by
// the server (before, 50 of 50 idle keep-alives were still open after
// 20 s); and connections beyond MaxConns are closed at once while the ones
// within it are served.
func TestSecurityF10_IdleAdminConnectionsClosed(t *testing.T) {
	addr := serve(t, New(prometheus.NewRegistry(), nil))
	const n = 10
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	var idle, silent []conn
	for range n {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.False(t, resp.Close, "keep-alive")
		idle = append(idle, conn{c, r})

		s, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		silent = append(silent, conn{s, bufio.NewReader(s)})
	}
	// Each is closed within its timeout (idle 10s, header 5s) plus slack.
	deadline := DefaultLimits.IdleTimeout + 5*time.Second
	start := time.Now()
	for i, c := range append(idle, silent...) {
		left := deadline - time.Since(start)
		require.True(t, closedWithin(c.c, c.r, max(left, time.Second)), "connection %d still open after %s", i, time.Since(start))
	}
}

// TestAdminConnectionCap: connections beyond MaxConns are closed at once,
// and a slot freed by a closed connection serves again.
func TestAdminConnectionCap(t *testing.T) {
	addr := serve(t, New(prometheus.NewRegistry(), nil, WithLimits(Limits{MaxConns: 3})))
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	// The server accepts in order: the fourth is closed without an answer
	// (Accept may lag the dial, so poll with fresh connections).
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		return closedWithin(c, bufio.NewReader(c), 2*time.Second)
	}, 10*time.Second, 10*time.Millisecond)
	held[0].Close()
	require.Eventually(t, func() bool {
		resp, err := (&http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
}
