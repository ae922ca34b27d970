package join

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// blackholeAddr is a loopback address whose listener never accepts and
// whose accept queue is full: the kernel drops further SYNs, so connecting
// hangs.
func blackholeAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; i < 8; i++ { // bounded: the queue holds one or two
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // full
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Fatalf("accept queue of %s never filled", addr)
	return ""
}

// silentAddr accepts connections and never says anything.
func silentAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					_ = c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestJoinGivesUpOnUnreachableEtcd: an etcd that refuses, drops SYNs or
// accepts and stays silent fails the join within the dial timeout with
// one line naming the endpoint, and nothing is written.
func TestJoinGivesUpOnUnreachableEtcd(t *testing.T) {
	const timeout = time.Second
	for _, tc := range []struct {
		name string
		addr func(testing.TB) string
		want string
	}{
		{"refused", refusedAddr, "connection refused"},
		{"blackhole", blackholeAddr, "no answer within 1s"},
		{"silent", silentAddr, "no answer within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := "http://" + tc.addr(t)
			out := filepath.Join(t.TempDir(), "south")
			o := options(endpoint, "south", out)
			o.Etcd.DialTimeout = timeout
			start := time.Now()
			_, err := Run(context.Background(), o)
			elapsed := time.Since(start)
			require.ErrorIs(t, err, ErrEtcdUnreachable)
			require.ErrorContains(t, err, "etcd "+endpoint+" unreachable")
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "\n")
			require.Less(t, elapsed, timeout+2*time.Second)
			require.NoDirExists(t, out)
		})
	}
}
