package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/causeway-mesh/causeway/internal/lib/names"
)

// Errors of Explain.
var (
	ErrNotExported  = errors.New("gateway: no cluster exports the service")
	ErrPortRequired = errors.New("gateway: the service has several TCP ports; give one")
)

// Statuses of an ExplainedCluster.
const (
	StatusCandidate  = "candidate"
	StatusLastResort = "last resort"
	StatusSkipped    = "skipped"
)

// Explanation says how this gateway routes a new flow to a service: the
// clusters in the order a flow tries them, and why the others are skipped.
type Explanation struct {
	Service string `json:"service"`
	Port    uint32 `json:"port"`
	// From is this gateway's cluster.
	From string `json:"from"`
	// MaxAttempts is how many clusters one flow tries at most.
	MaxAttempts       int        `json:"maxAttempts"`
	CatalogRevision   int64      `json:"catalogRevision"`
	CatalogStaleSince *time.Time `json:"catalogStaleSince"`
	// Clusters are the exporting clusters: candidates in order (within a
	// locality tier the order is drawn per flow by power of two choices),
	// then last resorts, then skipped ones.
	Clusters []ExplainedCluster `json:"clusters"`
	// AppProtocol is set for a port served at L7 (each request routed on
	// its own); Routes are then the route matches attached to it in the
	// order they are tried (none: every request to the service itself).
	AppProtocol string             `json:"appProtocol,omitempty"`
	Routes      []l7route.RuleView `json:"routes,omitempty"`
}

// ExplainedCluster is one exporting cluster of an Explanation.
type ExplainedCluster struct {
	Cluster string `json:"cluster"`
	// Order is the position in which a new flow tries the cluster, from 1;
	// 0 when it is skipped.
	Order int `json:"order"`
	// Tier is "own cluster", "same zone", "same region" or "other".
	Tier string `json:"tier"`
	// Status is StatusCandidate, StatusLastResort (ejected: tried only when
	// no candidate is left) or StatusSkipped.
	Status string `json:"status"`
	// Reason says why the cluster is skipped or a last resort: drained,
	// port not exposed there, no ready endpoints, no live gateway (leases
	// expired), ejected until <RFC 3339 time>.
	Reason              string     `json:"reason"`
	EjectedUntil        *time.Time `json:"ejectedUntil"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	// OpenStreams counts this gateway's open flows to the cluster.
	OpenStreams int `json:"openStreams"`
	// Gateways are the cluster's gateway instances (none for the own
	// cluster, whose backends are dialed directly).
	Gateways []ExplainedGateway `json:"gateways"`
}

// Gateway instance states of an ExplainedGateway.
const (
	GatewayConnected  = "connected"
	GatewayDraining   = "draining"
	GatewaySilent     = "silent" // connected, but nothing heard for longer than keep-alives allow
	GatewayConnecting = "connecting"
	GatewayBackingOff = "backing off"
	GatewayIdle       = "idle" // no flow went to the cluster yet, so no connection
)

// ExplainedGateway is one gateway instance of a peer cluster.
type ExplainedGateway struct {
	Instance    string   `json:"instance"`
	Addresses   []string `json:"addresses"`
	State       string   `json:"state"`
	OpenStreams int      `json:"openStreams"`
	// LastError is the last dial failure, while not connected.
	LastError string `json:"lastError"`
	// RetryAt is the next dial while backing off.
	RetryAt *time.Time `json:"retryAt"`
}

// Explain says how a new flow to key on port (0: the service's only TCP
// port) would be routed from this gateway now.
func (g *Gateway) Explain(key catalog.ServiceKey, port uint32) (Explanation, error) {
	v := g.src.View()
	if len(v.Exports(key)) == 0 {
		return Explanation{}, fmt.Errorf("explain %s: %w", key, ErrNotExported)
	}
	if port == 0 {
		ports := servicePorts(v, g.cfg.Cluster, key)
		if len(ports) != 1 {
			return Explanation{}, fmt.Errorf("explain %s (ports %s): %w", key, joinPorts(ports), ErrPortRequired)
		}
		port = ports[0]
	}
	e := Explanation{Service: key.String(), Port: port, From: g.cfg.Cluster, MaxAttempts: g.cfg.MaxAttempts,
		CatalogRevision: v.Revision, Clusters: []ExplainedCluster{}}
	if !v.StaleSince.IsZero() {
		t := v.StaleSince.UTC()
		e.CatalogStaleSince = &t
	}
	imp, _ := v.Import(g.cfg.Cluster, key)
	e.AppProtocol = portL7Protocol(imp.GetPorts(), port)
	if e.AppProtocol != "" && g.routes != nil {
		e.Routes = g.routes.Snapshot().Explain(l7route.ServiceKey{Namespace: key.Namespace, Name: key.Name}, int32(port))
	}
	order := 0
	for _, c := range g.selector().Candidates(v, g.cfg.Cluster, key, port) {
		ec := ExplainedCluster{Cluster: c.Cluster, Tier: TierName(c.Tier), Status: StatusSkipped, Reason: c.Skip,
			OpenStreams: c.OpenStreams, ConsecutiveFailures: g.outliers.consecutiveFailures(c.Cluster),
			Gateways: g.explainGateways(v, c.Cluster)}
		switch {
		case c.Skip == "":
			order++
			ec.Order, ec.Status = order, StatusCandidate
		case c.LastResort():
			order++
			until := c.EjectedUntil.UTC()
			ec.Order, ec.Status, ec.EjectedUntil = order, StatusLastResort, &until
		}
		e.Clusters = append(e.Clusters, ec)
	}
	return e, nil
}

// explainGateways describes the gateway instances of cluster.
func (g *Gateway) explainGateways(v *catalog.View, cluster string) []ExplainedGateway {
	out := []ExplainedGateway{}
	if cluster == g.cfg.Cluster {
		return out
	}
	p := g.peers.get(cluster)
	for _, rec := range v.Gateways(cluster) {
		eg := ExplainedGateway{Instance: rec.GetInstance(), Addresses: append([]string{}, rec.GetAddresses()...), State: GatewayIdle}
		if p != nil {
			p.mu.Lock()
			in := p.instances[instanceKey(rec.GetInstance(), rec.GetAddresses())]
			p.mu.Unlock()
			if in != nil {
				in.describe(&eg)
			}
		}
		out = append(out, eg)
	}
	return out
}

// describe fills the state of eg from in.
func (in *instance) describe(eg *ExplainedGateway) {
	in.mu.Lock()
	defer in.mu.Unlock()
	eg.OpenStreams = in.openLocked()
	switch {
	case in.conn != nil && in.conn.Context().Err() == nil && in.draining:
		eg.State = GatewayDraining
	case in.conn != nil && in.conn.Context().Err() == nil && in.silent:
		eg.State = GatewaySilent
	case in.conn != nil && in.conn.Context().Err() == nil:
		eg.State = GatewayConnected
	case in.dialing:
		eg.State = GatewayConnecting
	default:
		eg.State = GatewayBackingOff
		if !in.retryAt.IsZero() {
			t := in.retryAt.UTC()
			eg.RetryAt = &t
		}
	}
	if in.lastErr != nil && (eg.State == GatewayConnecting || eg.State == GatewayBackingOff) {
		eg.LastError = in.lastErr.Error()
	}
}

// servicePorts returns the TCP ports of key as cluster imports it, or, if
// it does not, as the exporting clusters expose them; sorted.
func servicePorts(v *catalog.View, cluster string, key catalog.ServiceKey) []uint32 {
	var ports []uint32
	add := func(ps []*causewayv1.ServicePort) {
		for _, p := range ps {
			if p.GetProtocol() == causewayv1.Protocol_PROTOCOL_TCP && !slices.Contains(ports, p.GetPort()) {
				ports = append(ports, p.GetPort())
			}
		}
	}
	if imp, ok := v.Import(cluster, key); ok {
		add(imp.GetPorts())
	} else {
		for _, x := range v.Exports(key) {
			add(x.GetPorts())
		}
	}
	slices.Sort(ports)
	return ports
}

func joinPorts(ports []uint32) string {
	if len(ports) == 0 {
		return "none"
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

// ExplainHandler serves Explain as JSON: GET /explain?service=NS/NAME&port=N
// (port optional when the service has one TCP port). 400 for bad
// parameters or a missing port, 404 when no cluster exports the service.
func (g *Gateway) ExplainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		key, port, err := parseExplainQuery(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e, err := g.Explain(key, port)
		switch {
		case errors.Is(err, ErrNotExported):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e)
	})
}

func parseExplainQuery(q url.Values) (catalog.ServiceKey, uint32, error) {
	ns, name, ok := strings.Cut(q.Get("service"), "/")
	if !ok || !names.IsDNSLabel(ns) || !names.IsDNSLabel(name) {
		return catalog.ServiceKey{}, 0, fmt.Errorf("service %q: want NAMESPACE/NAME, both DNS labels", q.Get("service"))
	}
	var port uint64
	if s := q.Get("port"); s != "" {
		var err error
		if port, err = strconv.ParseUint(s, 10, 16); err != nil || port == 0 {
			return catalog.ServiceKey{}, 0, fmt.Errorf("port %q: want 1-65535", s)
		}
	}
	return catalog.ServiceKey{Namespace: ns, Name: name}, uint32(port), nil
}
