package gateway

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/internal/lib/logbackoff"
)

// Reasons of causeway_gateway_backend_dial_errors_total.
const (
	dialErrRefused     = "refused"
	dialErrTimeout     = "timeout"
	dialErrUnreachable = "unreachable"
	dialErrOther       = "other"
)

// dialErrorReason classifies a backend dial error into a bounded label.
func dialErrorReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return dialErrRefused
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return dialErrTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return dialErrUnreachable
	}
	return dialErrOther
}

// dialFailedMessage is the only text a peer gets about failed backend
// dials: the dial error would tell it which local addresses and ports are
// open (a port scanner for whoever controls the endpoints).
const dialFailedMessage = "no ready endpoint accepted the connection"

// dialLogs rate-limits the log lines of failed backend dials, per
// service: a service whose endpoints keep refusing logs its first failure
// and then at most once per doubling interval up to a minute.
type dialLogs struct {
	mu     sync.Mutex // guards byServ
	byServ map[catalog.ServiceKey]*logbackoff.Limiter
}

// limiter returns key's limiter.
func (d *dialLogs) limiter(key catalog.ServiceKey) *logbackoff.Limiter {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byServ == nil {
		d.byServ = map[catalog.ServiceKey]*logbackoff.Limiter{}
	}
	l, ok := d.byServ[key]
	if !ok {
		l = &logbackoff.Limiter{}
		d.byServ[key] = l
	}
	return l
}

// forget drops the limiters of services not in keep.
func (d *dialLogs) forget(keep func(catalog.ServiceKey) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.byServ {
		if !keep(k) {
			delete(d.byServ, k)
		}
	}
}

// backendDialFailed counts a failed dial of endpoint addr of service key
// and logs it locally, rate-limited.
func (g *Gateway) backendDialFailed(key catalog.ServiceKey, addr string, err error) {
	reason := dialErrorReason(err)
	g.metrics.dialErrors.WithLabelValues(reason).Inc()
	ok, failures, suppressed := g.dialLogs.limiter(key).Failure(reason)
	if !ok {
		return
	}
	g.log.Warn("backend dial failed; the peer gets DIAL_FAILED without the detail", "service", key.String(),
		"endpoint", addr, "reason", reason, "err", err, "failures", failures, "not_logged", suppressed)
}
