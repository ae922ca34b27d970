package federator

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/causeway-mesh/causeway/internal/lib/ratelimit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// SignLimits bound the failed Certs.Sign attempts of one source address
// (a token bucket per address, IPv6 per /64): a source may fail Burst
// times in a row, then once per Interval; while it has no failure left,
// each of its requests is refused with RESOURCE_EXHAUSTED and a RetryInfo
// before any check (so it costs no TokenReview). Successful requests cost
// nothing. A misconfigured component backs off to one attempt per 30 s,
// below the default refill, so it is never locked out by its own retries.
type SignLimits struct {
	// Burst of failures. If zero, 10.
	Burst int
	// Interval in which one failure is forgiven. If zero, 6s (10 a minute).
	Interval time.Duration
	// MaxSources bounds the table of sources with recent failures (about
	// 100 bytes each). If zero, 4096; beyond it new sources share one
	// bucket.
	MaxSources int
}

func (l SignLimits) table(now func() time.Time) (*ratelimit.Table[netip.Addr], error) {
	if l.Burst < 0 || l.Interval < 0 || l.MaxSources < 0 {
		return nil, fmt.Errorf("sign limits: negative value in %+v", l)
	}
	if l.Burst == 0 {
		l.Burst = 10
	}
	if l.Interval == 0 {
		l.Interval = 6 * time.Second
	}
	if l.MaxSources == 0 {
		l.MaxSources = 4096
	}
	return ratelimit.New[netip.Addr](ratelimit.Config{Rate: 1 / l.Interval.Seconds(), Burst: float64(l.Burst), MaxKeys: l.MaxSources, Now: now})
}

// sourceAddr is the key of the caller's source: its IP address, an IPv6
// address cut to its /64 (one host commonly holds a whole /64).
func sourceAddr(ctx context.Context) (netip.Addr, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}, false
	}
	var a netip.Addr
	switch addr := p.Addr.(type) {
	case *net.TCPAddr:
		a, ok = netip.AddrFromSlice(addr.IP)
	default:
		ap, err := netip.ParseAddrPort(p.Addr.String())
		a, ok = ap.Addr(), err == nil
	}
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if a.Is6() {
		if pfx, err := a.Prefix(64); err == nil {
			a = pfx.Addr()
		}
	}
	return a, true
}

// countsAsFailure reports whether a result code is the caller's failure
// (a bad credential or request), which its source pays for; the server's
// own failures (UNAVAILABLE, INTERNAL) cost the caller nothing.
func countsAsFailure(c codes.Code) bool {
	switch c {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument:
		return true
	}
	return false
}

// exhausted is the answer to a source without failures left.
func exhausted(wait time.Duration) error {
	wait = max(wait.Round(time.Second), time.Second)
	st := status.Newf(codes.ResourceExhausted, "certs: too many failed requests from this address: retry in %s", wait)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
		st = d
	}
	return st.Err()
}
