package gateway

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// tcpIdle reports how long c has neither sent nor received payload, from
// the kernel's tcpi_last_data_sent and tcpi_last_data_recv (jiffy
// resolution). ok is false when c is closed or the kernel does not say.
func tcpIdle(c *net.TCPConn) (idle time.Duration, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return 0, false
	}
	ms := min(info.Last_data_sent, info.Last_data_recv)
	return time.Duration(ms) * time.Millisecond, true
}
