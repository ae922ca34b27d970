package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
)

// egressTarget is what one egress listener serves.
type egressTarget struct {
	key  catalog.ServiceKey
	port uint32
	// appProtocol is set for a port served at L7 (IsL7): its requests are
	// routed one by one.
	appProtocol string
}

type egressListener struct {
	target egressTarget
	ln     net.Listener
	done   chan struct{}
	l7     *l7Server // for an L7 target: serves its connections
}

// failedListen is an egress address whose listener could not be opened.
type failedListen struct {
	target   egressTarget
	failures int
	next     time.Time // the next attempt
}

// Back-off between attempts to open a listener that failed.
const (
	listenRetryBase = time.Second
	listenRetryMax  = 30 * time.Second
)

// listenRetryAfter is the wait after the n-th consecutive failure (n ≥ 1).
func listenRetryAfter(n int) time.Duration {
	d := listenRetryBase
	for i := 1; i < n && d < listenRetryMax; i++ {
		d *= 2
	}
	return min(d, listenRetryMax)
}

// runEgress keeps one listener per (import address, TCP port) of this
// cluster's ClusterSetIP imports, following catalog changes. An address
// that cannot be bound fails only its own listener: it is logged (ERROR
// once, then at DEBUG), counted, and retried with back-off, since the
// address may appear later; the other listeners and ingress go on.
func (g *Gateway) runEgress(ctx context.Context, listen ListenFunc) error {
	ls := &egressListeners{open: map[string]*egressListener{}, failed: map[string]*failedListen{}}
	retry := make(chan struct{}, 1)
	stopRetry := func() bool { return false }
	defer func() {
		stopRetry()
		ls.closeAll()
	}()
	g.peers.start(ctx)
	defer g.stopPeers()
	readyOnce := sync.Once{}
	for {
		changed := g.src.Changed()
		v := g.src.View()
		if g.syncBundles(v) {
			g.reverify() // connections whose peers the change distrusts go now
		}
		g.peers.sync(v)
		want := desiredEgress(v, g.cfg.Cluster, g.cfg.EgressMode, g.cfg.EgressBind)
		g.closeUnwanted(ls, want)
		now := g.cfg.Clock.Now()
		if !g.openWanted(ctx, ls, want, listen, now) {
			return nil
		}
		g.metrics.listeners.WithLabelValues("open").Set(float64(len(ls.open)))
		g.metrics.listeners.WithLabelValues("failed").Set(float64(len(ls.failed)))
		stopRetry()
		if next, ok := earliestRetry(ls.failed); ok {
			stopRetry = g.cfg.Clock.AfterFunc(next.Sub(now), func() {
				select {
				case retry <- struct{}{}:
				default:
				}
			})
		}
		if v.Revision > 0 {
			readyOnce.Do(func() { close(g.ready) })
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry:
		}
	}
}

// egressListeners is runEgress's state: the open listeners and the
// addresses that could not be listened on, by address.
type egressListeners struct {
	open   map[string]*egressListener
	failed map[string]*failedListen
	wg     sync.WaitGroup // the accept loops of open
}

// closeAll closes every open listener and waits for its accept loop.
func (ls *egressListeners) closeAll() {
	for _, l := range ls.open {
		_ = l.ln.Close()
	}
	ls.wg.Wait()
	for _, l := range ls.open {
		if l.l7 != nil {
			l.l7.close()
		}
	}
}

// closeUnwanted closes the listeners and forgets the failures whose address
// is no longer wanted for the same target.
func (g *Gateway) closeUnwanted(ls *egressListeners, want map[string]egressTarget) {
	for addr, l := range ls.open {
		if t, ok := want[addr]; !ok || t != l.target {
			_ = l.ln.Close()
			<-l.done
			if l.l7 != nil {
				l.l7.close()
			}
			delete(ls.open, addr)
			g.log.Info("egress listener closed", "addr", addr, "service", l.target.key.String())
		}
	}
	for addr, f := range ls.failed {
		if t, ok := want[addr]; !ok || t != f.target {
			delete(ls.failed, addr)
		}
	}
}

// openWanted opens a listener for each wanted address not open yet and not
// backing off, recording failures; false means ctx ended.
func (g *Gateway) openWanted(ctx context.Context, ls *egressListeners, want map[string]egressTarget, listen ListenFunc, now time.Time) bool {
	for addr, t := range want {
		if _, ok := ls.open[addr]; ok {
			continue
		}
		if f, ok := ls.failed[addr]; ok && now.Before(f.next) {
			continue
		}
		ln, err := listen(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			g.listenFailed(ls.failed, addr, t, err, now)
			continue
		}
		if f, ok := ls.failed[addr]; ok {
			g.log.Info("egress listener opened after failures", "addr", addr, "service", t.key.String(), "failures", f.failures)
			delete(ls.failed, addr)
		}
		l := &egressListener{target: t, ln: ln, done: make(chan struct{})}
		if t.appProtocol != "" {
			l.l7 = g.newL7Server(ctx, t)
		}
		ls.open[addr] = l
		ls.wg.Go(func() {
			defer close(l.done)
			g.acceptEgress(ctx, l)
		})
		g.log.Info("egress listener opened", "addr", addr, "service", t.key.String())
	}
	return true
}

// listenFailed records a failed attempt to listen on addr for t.
func (g *Gateway) listenFailed(failed map[string]*failedListen, addr string, t egressTarget, err error, now time.Time) {
	f, ok := failed[addr]
	if !ok {
		f = &failedListen{target: t}
		failed[addr] = f
	}
	f.failures++
	wait := listenRetryAfter(f.failures)
	f.next = now.Add(wait)
	g.metrics.listenErrors.WithLabelValues(listenErrorReason(err)).Inc()
	level := slog.LevelDebug
	if f.failures == 1 {
		level = slog.LevelError
	}
	g.log.Log(context.Background(), level, "egress listener failed; other listeners and ingress are unaffected, retrying",
		"addr", addr, "service", t.key.String(), "err", err, "failures", f.failures, "retry_in", wait)
}

// earliestRetry is the soonest next attempt of failed, if any.
func earliestRetry(failed map[string]*failedListen) (time.Time, bool) {
	var next time.Time
	for _, f := range failed {
		if next.IsZero() || f.next.Before(next) {
			next = f.next
		}
	}
	return next, !next.IsZero()
}

// Reasons of causeway_gateway_listen_errors_total.
const (
	listenErrAddrNotAvail = "address_not_available" // not a local address: route the VIP range locally
	listenErrAddrInUse    = "address_in_use"
	listenErrPermission   = "permission_denied"
	listenErrOther        = "other"
)

// listenErrorReason classifies a listen error into a bounded label.
func listenErrorReason(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return listenErrAddrNotAvail
	case errors.Is(err, syscall.EADDRINUSE):
		return listenErrAddrInUse
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return listenErrPermission
	}
	return listenErrOther
}

// Egress modes (Config.EgressMode).
const (
	// EgressAddresses listens on each import's clusterset IPs at the
	// service ports (hosts and dev: the clusterset IP is local).
	EgressAddresses = "addresses"
	// EgressPorts listens on EgressBind at each import port's egress port
	// (Kubernetes: the derived Service's EndpointSlices point at the
	// gateway pods at those ports).
	EgressPorts = "ports"
)

// desiredEgress maps listen addresses to what they serve.
func desiredEgress(v *catalog.View, cluster, mode, bind string) map[string]egressTarget {
	want := map[string]egressTarget{}
	for key, imp := range v.Imports(cluster) {
		if imp.GetType() != causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP {
			continue
		}
		l7 := map[uint32]string{}
		for _, p := range imp.GetPorts() {
			if p.GetProtocol() == causewayv1.Protocol_PROTOCOL_TCP && IsL7(p.GetAppProtocol()) {
				l7[p.GetPort()] = p.GetAppProtocol()
			}
		}
		if mode == EgressPorts {
			for _, e := range imp.GetEgressPorts() {
				if e.GetProtocol() == causewayv1.Protocol_PROTOCOL_TCP && e.GetEgressPort() != 0 {
					want[net.JoinHostPort(bind, strconv.Itoa(int(e.GetEgressPort())))] = egressTarget{key: key, port: e.GetPort(), appProtocol: l7[e.GetPort()]}
				}
			}
			continue
		}
		for _, ip := range imp.GetIps() {
			for _, p := range imp.GetPorts() {
				if p.GetProtocol() != causewayv1.Protocol_PROTOCOL_TCP {
					continue
				}
				want[net.JoinHostPort(ip, strconv.Itoa(int(p.GetPort())))] = egressTarget{key: key, port: p.GetPort(), appProtocol: l7[p.GetPort()]}
			}
		}
	}
	return want
}

func (g *Gateway) acceptEgress(ctx context.Context, l *egressListener) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		src := sourceAddr(c)
		if !g.sources.acquire(src) {
			g.limitRefused(limitSourceFlows, "source", src.String(), "service", l.target.key.String())
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
			continue
		}
		fid, ok := g.flows.add(c)
		if !ok {
			g.sources.release(src)
			_ = c.Close()
			continue
		}
		if l.l7 != nil {
			l.l7.offer(c, func() {
				g.flows.done(fid)
				g.sources.release(src)
			})
			continue
		}
		go func() {
			defer g.sources.release(src)
			defer g.flows.done(fid)
			g.handleEgress(ctx, c.(*net.TCPConn), l.target)
		}()
	}
}

// handleEgress carries one client connection to the first candidate
// cluster that accepts it. No byte of the client is read before a
// candidate accepted the flow (a peer answered OK, or a local backend
// connection is open), so a refused attempt moves the flow to the next
// candidate without the client noticing; at most MaxAttempts are made.
// Ejected clusters are tried only after every healthy one, and clusters
// whose gateways all went silent after every other.
func (g *Gateway) handleEgress(ctx context.Context, client *net.TCPConn, t egressTarget) {
	start := time.Now()
	fm := g.metrics.egress
	fm.active.Inc()
	defer fm.active.Dec()
	v := g.src.View()
	service := serviceLabel(v, t.key)
	cands := g.selector().Candidates(v, g.cfg.Cluster, t.key, t.port)
	// Clusters whose every gateway went silent (likely dead, not yet timed
	// out) are put off until the other candidates have been tried.
	var deferred []Candidate
	allowSilent := false
	for i, attempts := 0, 0; attempts < g.cfg.MaxAttempts; {
		if i == len(cands) || (cands[i].Skip != "" && !cands[i].LastResort()) {
			if len(deferred) == 0 || allowSilent {
				break // only unusable clusters are left
			}
			cands, deferred, i, allowSilent = deferred, nil, 0, true
			continue
		}
		cand := cands[i]
		if !allowSilent && cand.Cluster != g.cfg.Cluster && g.peers.silent(cand.Cluster) {
			deferred = append(deferred, cand)
			i++
			continue
		}
		if attempts > 0 {
			g.metrics.retries.Inc()
		}
		attempts++
		res, up, down := g.egressTo(ctx, client, v, t, cand.Cluster, allowSilent)
		switch res {
		case attemptCarried:
			fm.bytes.Add(float64(up + down))
			g.metrics.streams.inc("egress", service, peerLabel(v, cand.Cluster), resultOK)
			fm.duration.Observe(time.Since(start).Seconds())
			return
		case attemptNextInstance:
			continue // same cluster, another gateway instance
		case attemptRefused:
			g.metrics.streams.inc("egress", service, peerLabel(v, cand.Cluster), resultRefused)
			_ = client.SetLinger(0)
			_ = client.Close()
			return
		}
		i++
	}
	g.metrics.streams.inc("egress", service, labelOther, resultNoTarget)
	g.log.Debug("no cluster can serve flow", "service", t.key.String(), "err", errNoCandidate)
	_ = client.SetLinger(0)
	_ = client.Close()
}

// attemptResult is what one egress attempt came to.
type attemptResult int

const (
	attemptCarried      attemptResult = iota // the flow was carried (and has ended)
	attemptNextCluster                       // refused: try the next candidate
	attemptNextInstance                      // the instance is draining: try the cluster again
	attemptRefused                           // refused by authorization: reset the client, try no other cluster
)

// egressTo tries to carry the flow to cluster. Once a backend connection
// or an accepted stream is open it pipes the flow to its end and returns
// the bytes carried each way.
func (g *Gateway) egressTo(ctx context.Context, client *net.TCPConn, v *catalog.View, t egressTarget,
	cluster string, allowSilent bool) (res attemptResult, up, down int64) {
	if cluster == g.cfg.Cluster {
		x, _ := v.Export(t.key, cluster)
		backend, err := g.dialLocal(ctx, x, t.port)
		if err != nil {
			g.attemptFailed(cluster, t, err)
			return attemptNextCluster, 0, 0
		}
		g.outliers.success(cluster)
		g.localOpen.Add(1)
		defer g.localOpen.Add(-1)
		up, down = pipeTCP(client, backend, g.cfg.HalfClosedTimeout)
		return attemptCarried, up, down
	}
	in, conn, err := g.peers.pick(ctx, cluster, allowSilent)
	if err != nil {
		g.attemptFailed(cluster, t, err)
		return attemptNextCluster, 0, 0
	}
	defer in.release(conn)
	// A stream still waiting for its response gives up when the instance
	// goes silent or leaves the catalog: nothing reached a backend yet, so
	// the flow moves on at once instead of waiting for the idle timeout.
	src := flowSource{addr: client.RemoteAddr().String(), identity: g.sourceIdentity(sourceAddr(client))}
	stream, err := g.openStreamOn(ctx, in.abandoned(conn), conn, cluster, t, src)
	if err != nil {
		res = attemptNextCluster
		switch {
		case refusalCode(err) == causewayv1.StreamCode_STREAM_CODE_DRAINING:
			in.markDraining(conn)
			res = attemptNextInstance
		case isFinalRefusal(err):
			res = attemptRefused
		}
		g.attemptFailed(cluster, t, err)
		return res, 0, 0
	}
	g.outliers.success(cluster)
	up, down = pipe(client, stream, g.cfg.HalfClosedTimeout)
	return attemptCarried, up, down
}

// attemptFailed logs a refused attempt and feeds outlier detection.
func (g *Gateway) attemptFailed(cluster string, t egressTarget, err error) {
	failure := isClusterFailure(err)
	g.log.Debug("flow attempt refused", "peer", cluster, "service", t.key.String(), "err", err, "counts_as_failure", failure)
	if failure && g.outliers.failure(cluster) {
		g.log.Info("cluster ejected from egress balancing", "peer", cluster, "until", g.outliers.ejectedUntil(cluster), "err", err)
	}
}

// isClusterFailure reports whether a refused attempt says the cluster
// cannot serve (see outlierDetector).
func isClusterFailure(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, errAllDraining) || errors.Is(err, errSilent) ||
		errors.Is(err, errStreamCredit) {
		return false // our own shutdown, a peer moving its flows elsewhere, a hiccup that may pass, or load
	}
	switch refusalCode(err) {
	case causewayv1.StreamCode_STREAM_CODE_UNSPECIFIED, // no connection, stream not opened, reset before the response
		causewayv1.StreamCode_STREAM_CODE_NO_ENDPOINTS, causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED:
		return true
	}
	return false
}

// selector orders candidates with this gateway's load and ejections.
func (g *Gateway) selector() Selector {
	return Selector{Load: g.openStreams, EjectedUntil: g.outliers.ejectedUntil}
}
