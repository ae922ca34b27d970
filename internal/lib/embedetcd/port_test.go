package embedetcd

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// A reserved port cannot be bound by an ordinary listener (so no other
// test or process can take it before etcd binds it), but an SO_REUSEPORT
// listener (etcd's) can, and it is free again once released.
func TestReservedPortIsHeldUntilReleased(t *testing.T) {
	r, err := reservePort("127.0.0.1")
	require.NoError(t, err)
	if !r.held() {
		r.Close()
		t.Skip("no SO_REUSEPORT on this platform: ports are only probed")
	}
	addr := r.URL().Host
	_, err = net.Listen("tcp", addr)
	require.True(t, isAddrInUse(err), "listen on a reserved port: %v", err)
	r.Close()
	r.Close() // idempotent
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, ln.Close())
}
