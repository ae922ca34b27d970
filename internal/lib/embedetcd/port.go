package embedetcd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"syscall"
)

// portReservation holds a free port of a host from the moment it is chosen
// until etcd has bound it, closing the race of "bind :0, close, hand the
// port to etcd" (another process can take the port in between; etcd needs
// a fixed port because the same URL is listened on and advertised, and
// peer URLs are part of the cluster membership).
//
// Where SO_REUSEPORT exists, the reservation is a bound, non-listening
// socket with SO_REUSEPORT: nothing without that option can bind the port,
// the kernel never picks it for bind(:0) or an outgoing connection, and an
// etcd listener with SocketOpts.ReusePort shares it. A non-listening socket
// is in no reuseport group, so it never receives connections. Elsewhere the
// port is only probed (the old race remains) and held reports false.
type portReservation struct {
	host string
	port int

	closeOnce sync.Once
	release   func() error // nil when nothing is held
}

// reservePort reserves a free port of host (an IP literal).
func reservePort(host string) (*portReservation, error) {
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("reserve port on %q: not an IP address", host)
	}
	port, release, err := reserve(ip)
	if err != nil {
		return nil, fmt.Errorf("reserve port on %s: %w", host, err)
	}
	return &portReservation{host: host, port: port, release: release}, nil
}

// probePort returns a port that was free a moment ago (the racy fallback).
func probePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("listen on %s:0: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// held reports whether the port is held, so etcd must bind it with
// SO_REUSEPORT.
func (r *portReservation) held() bool { return r.release != nil }

// URL is the http URL of the reserved host:port.
func (r *portReservation) URL() url.URL {
	return url.URL{Scheme: "http", Host: net.JoinHostPort(r.host, strconv.Itoa(r.port))}
}

// Close releases the port. Safe to call more than once.
func (r *portReservation) Close() {
	r.closeOnce.Do(func() {
		if r.release != nil {
			_ = r.release()
		}
	})
}

// isAddrInUse reports whether err is a failure to bind a taken address.
func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
