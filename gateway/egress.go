package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
)

// egressTarget is what one egress listener serves.
type egressTarget struct {
	key  catalog.ServiceKey
	port uint32
}

type egressListener struct {
	target egressTarget
	ln     net.Listener
	done   chan struct{}
}

// runEgress keeps one listener per (import address, TCP port) of this
// cluster's ClusterSetIP imports, following catalog changes.
func (g *Gateway) runEgress(ctx context.Context, listen ListenFunc) error {
	listeners := map[string]*egressListener{} // by address
	var wg sync.WaitGroup
	defer func() {
		for _, l := range listeners {
			_ = l.ln.Close()
		}
		wg.Wait()
	}()
	readyOnce := sync.Once{}
	for {
		changed := g.src.Changed()
		v := g.src.View()
		g.syncBundles(v)
		want := desiredEgress(v, g.cfg.Cluster)
		for addr, l := range listeners {
			if t, ok := want[addr]; !ok || t != l.target {
				_ = l.ln.Close()
				<-l.done
				delete(listeners, addr)
				g.log.Info("egress listener closed", "addr", addr, "service", l.target.key.String())
			}
		}
		for addr, t := range want {
			if _, ok := listeners[addr]; ok {
				continue
			}
			ln, err := listen(ctx, addr)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("listen for %s on %s: %w", t.key, addr, err)
			}
			l := &egressListener{target: t, ln: ln, done: make(chan struct{})}
			listeners[addr] = l
			wg.Go(func() {
				defer close(l.done)
				g.acceptEgress(ctx, l)
			})
			g.log.Info("egress listener opened", "addr", addr, "service", t.key.String())
		}
		g.setEgressAddrs(listeners)
		if v.Revision > 0 {
			readyOnce.Do(func() { close(g.ready) })
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// desiredEgress maps listen addresses to what they serve.
func desiredEgress(v *catalog.View, cluster string) map[string]egressTarget {
	want := map[string]egressTarget{}
	for key, imp := range v.Imports(cluster) {
		if imp.GetType() != causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP {
			continue
		}
		for _, ip := range imp.GetIps() {
			for _, p := range imp.GetPorts() {
				if p.GetProtocol() != causewayv1.Protocol_PROTOCOL_TCP {
					continue
				}
				want[net.JoinHostPort(ip, strconv.Itoa(int(p.GetPort())))] = egressTarget{key: key, port: p.GetPort()}
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
		fid, ok := g.flows.add(c)
		if !ok {
			_ = c.Close()
			continue
		}
		go func() {
			defer g.flows.done(fid)
			g.handleEgress(ctx, c.(*net.TCPConn), l.target)
		}()
	}
}

// handleEgress carries one client connection to the first candidate
// cluster that accepts it.
func (g *Gateway) handleEgress(ctx context.Context, client *net.TCPConn, t egressTarget) {
	start := time.Now()
	g.metrics.active.WithLabelValues("egress").Inc()
	defer g.metrics.active.WithLabelValues("egress").Dec()
	v := g.src.View()
	tried := 0
	for _, cand := range Candidates(v, g.cfg.Cluster, t.key, t.port) {
		if cand.Skip != "" {
			break
		}
		if tried > 0 {
			g.metrics.retries.Inc()
		}
		tried++
		var up, down int64
		if cand.Cluster == g.cfg.Cluster {
			x, _ := v.Export(t.key, g.cfg.Cluster)
			backend, err := g.dialLocal(ctx, x, t.port)
			if err != nil {
				g.log.Debug("local target refused", "service", t.key.String(), "err", err)
				continue
			}
			up, down = pipeTCP(client, backend)
		} else {
			stream, err := g.openStream(ctx, cand.Cluster, t, client.RemoteAddr().String())
			if err != nil {
				g.log.Debug("peer refused flow", "peer", cand.Cluster, "service", t.key.String(), "err", err)
				continue
			}
			up, down = pipe(client, stream)
		}
		g.metrics.bytes.WithLabelValues("egress").Add(float64(up + down))
		g.metrics.streams.WithLabelValues("egress", resultOK).Inc()
		g.metrics.duration.WithLabelValues("egress").Observe(time.Since(start).Seconds())
		return
	}
	g.metrics.streams.WithLabelValues("egress", resultNoTarget).Inc()
	g.log.Debug("no cluster can serve flow", "service", t.key.String(), "err", errNoCandidate)
	_ = client.SetLinger(0)
	_ = client.Close()
}

func (g *Gateway) setEgressAddrs(ls map[string]*egressListener) {
	addrs := make(map[string]bool, len(ls))
	for a := range ls {
		addrs[a] = true
	}
	g.egressMu.Lock()
	g.egressAddrs = addrs
	g.egressMu.Unlock()
}

// Serving reports whether an egress listener is open on addr (ip:port).
func (g *Gateway) Serving(addr string) bool {
	g.egressMu.Lock()
	defer g.egressMu.Unlock()
	return g.egressAddrs[addr]
}
