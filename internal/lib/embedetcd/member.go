package embedetcd

import (
	"context"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// The exports below let other packages build members the way this one does
// (the multi-member test clusters of internal/testenv/etcdtest) without
// this package linking test code.

// PortReservation holds a free port until etcd has bound it; see
// portReservation for how.
type PortReservation struct{ r *portReservation }

// ReservePort reserves a free port of host (an IP literal).
func ReservePort(host string) (*PortReservation, error) {
	r, err := reservePort(host)
	if err != nil {
		return nil, err
	}
	return &PortReservation{r: r}, nil
}

// Held reports whether the port is held, so etcd must bind it with
// SO_REUSEPORT (SocketOpts.ReusePort).
func (p *PortReservation) Held() bool { return p.r.held() }

// URL is the http URL of the reserved host:port.
func (p *PortReservation) URL() url.URL { return p.r.URL() }

// Close releases the port. Safe to call more than once.
func (p *PortReservation) Close() { p.r.Close() }

// IsAddrInUse reports whether err is a failure to bind a taken address.
func IsAddrInUse(err error) bool { return isAddrInUse(err) }

// MemberConfig is the embed config of one quiet member listening on and
// advertising clientURL and peerURL; the caller sets the initial cluster.
func MemberConfig(name, dir string, clientURL, peerURL url.URL) *embed.Config {
	return newConfig(name, dir, clientURL, peerURL)
}

// WaitReady waits until e serves clients, fails, or timeout or ctx ends.
func WaitReady(ctx context.Context, e *embed.Etcd, timeout time.Duration) error {
	return waitReady(ctx, e, timeout)
}
