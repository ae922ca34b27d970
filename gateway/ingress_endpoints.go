package gateway

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
)

// endpointFailBackoff is how long an endpoint whose dial failed is tried
// only after every other ready endpoint.
const endpointFailBackoff = 5 * time.Second

// maxEndpointAttempts bounds how many ready endpoints one flow's dial
// budget (DialTimeout) is split over at a time.
const maxEndpointAttempts = 3

// endpointPicker balances dials over a service's ready local endpoints:
// round robin per service, with endpoints whose dial failed in the last
// endpointFailBackoff moved to the end.
type endpointPicker struct {
	mu     sync.Mutex                    // guards next, failed
	next   map[catalog.ServiceKey]uint64 // round-robin position per service
	failed map[string]time.Time          // ip:port → end of its back-off
}

// order returns addrs in the order to dial them at now.
func (p *endpointPicker) order(key catalog.ServiceKey, addrs []string, now time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == nil {
		p.next = map[catalog.ServiceKey]uint64{}
	}
	start := p.next[key]
	p.next[key] = start + 1
	// Rotate over the healthy endpoints only, so that the one after a
	// failed endpoint does not get its share too.
	healthy := make([]string, 0, len(addrs))
	var backoff []string
	for _, a := range addrs {
		if until, ok := p.failed[a]; ok && now.Before(until) {
			backoff = append(backoff, a)
		} else {
			healthy = append(healthy, a)
		}
	}
	out := make([]string, 0, len(addrs))
	for i := range healthy {
		out = append(out, healthy[(start+uint64(i))%uint64(len(healthy))])
	}
	return append(out, backoff...)
}

// result records the outcome of a dial to addr at now.
func (p *endpointPicker) result(addr string, err error, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.failed, addr)
		return
	}
	if p.failed == nil {
		p.failed = map[string]time.Time{}
	}
	if len(p.failed) >= 4096 { // endpoints come from the catalog; prune the stale ones
		for a, until := range p.failed {
			if !now.Before(until) {
				delete(p.failed, a)
			}
		}
	}
	p.failed[addr] = now.Add(endpointFailBackoff)
}

// forget drops the round-robin positions of services not in keep.
func (p *endpointPicker) forget(keep func(catalog.ServiceKey) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.next {
		if !keep(k) {
			delete(p.next, k)
		}
	}
}

// dialLocal dials a ready endpoint of a local export on the target of
// service port port. Endpoints are balanced by g.endpoints; the whole
// attempt takes at most DialTimeout, split over at most
// maxEndpointAttempts endpoints at a time so one black-holed endpoint
// cannot use it all. A refusal error is a *refusal; a DIAL_FAILED one
// carries a generic message only (see backendDialFailed).
func (g *Gateway) dialLocal(ctx context.Context, x *causewayv1.ExportRecord, port uint32) (*net.TCPConn, error) {
	var sp *causewayv1.ServicePort
	for _, p := range x.GetPorts() {
		if p.GetPort() == port && p.GetProtocol() == causewayv1.Protocol_PROTOCOL_TCP {
			sp = p
		}
	}
	if sp == nil {
		return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_NOT_EXPORTED,
			"port " + strconv.Itoa(int(port)) + " is not exposed by " + g.cfg.Cluster}
	}
	var addrs []string
	for _, e := range x.GetEndpoints() {
		if !e.GetReady() {
			continue
		}
		target := port
		if t, ok := e.GetTargetPorts()[sp.GetName()]; ok && sp.GetName() != "" {
			target = t
		} else if t, ok := e.GetTargetPorts()[strconv.Itoa(int(port))]; ok {
			target = t
		}
		addrs = append(addrs, net.JoinHostPort(e.GetAddress(), strconv.Itoa(int(target))))
	}
	if len(addrs) == 0 {
		return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_NO_ENDPOINTS, "no ready endpoint in " + g.cfg.Cluster}
	}
	budget, cancel := context.WithTimeout(ctx, g.cfg.DialTimeout)
	defer cancel()
	key := catalog.ServiceKey{Namespace: x.GetNamespace(), Name: x.GetName()}
	order := g.endpoints.order(key, addrs, time.Now())
	var lastErr error // the detail, kept here: peers never see it
	// Flows have their own idle timeout; TCP keep-alive probes on every
	// backend connection would only cost a setsockopt per dial.
	d := net.Dialer{KeepAlive: -1}
	for i, addr := range order {
		if budget.Err() != nil {
			break
		}
		// The last endpoint left (the only one, usually) gets the whole
		// remaining budget: no context and timer of its own.
		actx, acancel := budget, context.CancelFunc(nop)
		if n := min(len(order)-i, maxEndpointAttempts); n > 1 {
			left, _ := budget.Deadline()
			actx, acancel = context.WithTimeout(budget, time.Until(left)/time.Duration(n))
		}
		c, err := d.DialContext(actx, "tcp", addr)
		acancel()
		if ctx.Err() != nil { // shutting down: not the endpoint's fault
			return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_DRAINING, "gateway " + g.cfg.Cluster + " is stopping"}
		}
		g.endpoints.result(addr, err, time.Now())
		if err != nil {
			lastErr = err
			g.backendDialFailed(key, addr, err)
			continue
		}
		return c.(*net.TCPConn), nil
	}
	if lastErr == nil {
		g.backendDialFailed(key, "", errors.New("dial budget exhausted before any endpoint was tried"))
	}
	// The detail was logged and counted; the peer gets the code only.
	return nil, &refusal{causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED, dialFailedMessage}
}

// nop is a CancelFunc with nothing to cancel.
func nop() {}
