package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/gateway/l7route"
)

// runRoutes keeps the route table current: the configured routes are
// validated against the catalog whenever either changes (a route naming a
// service that appears later becomes valid then). Invalid routes are
// logged once per change; their last good version keeps serving.
func (g *Gateway) runRoutes(ctx context.Context) {
	if g.cfg.Routes == nil {
		return
	}
	last := ""
	for {
		routesChanged, viewChanged := g.cfg.Routes.Changed(), g.src.Changed()
		v := g.src.View()
		statuses := g.routes.Update(g.cfg.Routes.Routes(), routeLookup(v, g.cfg.Cluster))
		if g.cfg.RouteStatus != nil {
			g.cfg.RouteStatus.ReportStatus(ctx, statuses)
		}
		valid, invalid := 0, 0
		var msgs []string
		for _, s := range statuses {
			if s.Err == nil {
				valid++
				continue
			}
			invalid++
			msgs = append(msgs, s.Err.Error())
		}
		g.metrics.l7.routes.WithLabelValues("valid").Set(float64(valid))
		g.metrics.l7.routes.WithLabelValues("invalid").Set(float64(invalid))
		if msg := strings.Join(msgs, "; "); msg != last {
			if msg != "" {
				// Warn: a route naming a service not imported yet (at start,
				// before the catalog has it) becomes valid once it is.
				g.log.Warn("invalid routes (their last good version, if any, keeps serving)", "errors", msg)
			} else {
				g.log.Info("routes valid", "routes", valid)
			}
			last = msg
		}
		select {
		case <-ctx.Done():
			return
		case <-routesChanged:
		case <-viewChanged:
		}
	}
}

// routeLookup answers route validation from the catalog: a backend
// service must be imported by cluster.
func routeLookup(v *catalog.View, cluster string) l7route.Lookup {
	return func(k l7route.ServiceKey) (l7route.ServiceInfo, bool) {
		key := catalog.ServiceKey{Namespace: k.Namespace, Name: k.Name}
		imp, ok := v.Import(cluster, key)
		if !ok {
			return l7route.ServiceInfo{}, false
		}
		var info l7route.ServiceInfo
		for _, p := range imp.GetPorts() {
			info.Ports = append(info.Ports, int32(p.GetPort()))
		}
		for _, x := range v.Exports(key) {
			info.Clusters = append(info.Clusters, x.GetCluster())
		}
		return info, true
	}
}

// selectRoute picks the target of r, addressed to t, from the routes.
func (g *Gateway) selectRoute(t egressTarget, r *http.Request) (l7route.Selection, error) {
	svc := l7route.ServiceKey{Namespace: t.key.Namespace, Name: t.key.Name}
	if g.routes == nil {
		return l7route.Selection{Target: l7route.Target{Service: svc, Port: int32(t.port)}}, nil
	}
	req := l7route.RequestOf(r)
	return g.routes.Snapshot().Select(svc, int32(t.port), &req)
}

// routeLabel is the route label of a selection: namespace/name, or "-".
func routeLabel(sel l7route.Selection) string {
	if sel.Route == nil {
		return "-"
	}
	return sel.Route.Namespace + "/" + sel.Route.Name
}
