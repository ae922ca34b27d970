//go:build !linux

package gateway

import (
	"net"
	"time"
)

// tcpIdle cannot tell idleness outside Linux: flows are never idle-closed.
func tcpIdle(*net.TCPConn) (time.Duration, bool) { return 0, false }
