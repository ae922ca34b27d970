//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package embedetcd

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// reserve binds a TCP socket with SO_REUSEPORT to ip:0 without listening
// and returns the port it got and a func closing the socket.
func reserve(ip net.IP) (int, func() error, error) {
	var (
		sa     unix.Sockaddr
		family = unix.AF_INET
	)
	if ip4 := ip.To4(); ip4 != nil {
		a := &unix.SockaddrInet4{}
		copy(a.Addr[:], ip4)
		sa = a
	} else {
		a := &unix.SockaddrInet6{}
		copy(a.Addr[:], ip.To16())
		sa, family = a, unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("socket: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		_ = unix.Close(fd)
		return 0, nil, fmt.Errorf("set SO_REUSEPORT: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return 0, nil, fmt.Errorf("bind: %w", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return 0, nil, fmt.Errorf("getsockname: %w", err)
	}
	var port int
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	default:
		_ = unix.Close(fd)
		return 0, nil, fmt.Errorf("getsockname: unexpected %T", got)
	}
	return port, func() error { return unix.Close(fd) }, nil
}
