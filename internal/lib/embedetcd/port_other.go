//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package embedetcd

import "net"

// reserve probes a free port; without SO_REUSEPORT nothing can hold it.
func reserve(ip net.IP) (int, func() error, error) {
	port, err := probePort(ip.String())
	return port, nil, err
}
