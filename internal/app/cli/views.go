package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ClusterList is the answer of `causeway clusters`.
type ClusterList struct {
	Clusters []Cluster `json:"clusters"`
}

// Cluster is one member cluster.
type Cluster struct {
	Name            string    `json:"name"`
	Region          string    `json:"region"`
	Zone            string    `json:"zone"`
	TrustDomain     string    `json:"trustDomain"`
	VIPRanges       []string  `json:"vipRanges"`
	Gateways        []Gateway `json:"gateways"`
	Exports         int       `json:"exports"`
	Drained         bool      `json:"drained"`
	DrainedServices []string  `json:"drainedServices"`
	// Local is true for the cluster of the federator that answered.
	Local bool `json:"local"`
	// Trust is how the answering federator trusts the cluster's trust
	// bundle: own, trusted, untrusted or behind (see TrustDetail).
	Trust        string   `json:"trust"`
	TrustDetail  string   `json:"trustDetail,omitempty"`
	Fingerprints []string `json:"fingerprints"`
}

// Gateway is one live gateway instance.
type Gateway struct {
	Instance  string   `json:"instance"`
	Addresses []string `json:"addresses"`
	// Lease is live, expired or unknown.
	Lease string `json:"lease"`
	// LeaseRemainingSeconds is what is left of the gateway's etcd lease
	// when asked: it changes on every call (it was leaseTTLSeconds).
	LeaseRemainingSeconds int64 `json:"leaseRemainingSeconds"`
}

func newClusterList(r *causewayv1.ListClustersResponse) *ClusterList {
	out := &ClusterList{Clusters: []Cluster{}}
	for _, c := range r.GetClusters() {
		cl := Cluster{
			Name: c.GetName(), Region: c.GetRegion(), Zone: c.GetZone(), TrustDomain: c.GetTrustDomain(),
			VIPRanges: nonNil(c.GetVipRanges()), Gateways: []Gateway{}, Exports: int(c.GetExports()),
			Drained: c.GetDrained(), DrainedServices: nonNil(c.GetDrainedServices()), Local: c.GetLocal(),
			Trust: c.GetTrust(), TrustDetail: c.GetTrustDetail(), Fingerprints: nonNil(c.GetFingerprints()),
		}
		for _, g := range c.GetGateways() {
			cl.Gateways = append(cl.Gateways, Gateway{Instance: g.GetInstance(), Addresses: nonNil(g.GetAddresses()),
				Lease: leaseName(g.GetLeaseState()), LeaseRemainingSeconds: g.GetLeaseTtlSeconds()})
		}
		out.Clusters = append(out.Clusters, cl)
	}
	return out
}

// EmptyMessage implements Listing.
func (l *ClusterList) EmptyMessage() string {
	return emptyMessage(len(l.Clusters), "No clusters found.")
}

// EmptyMessage implements Listing.
func (l *ExportList) EmptyMessage() string { return emptyMessage(len(l.Services), "No exports found.") }

// EmptyMessage implements Listing.
func (l *ImportList) EmptyMessage() string {
	if l.Cluster != "" {
		return emptyMessage(len(l.Imports), "No imports found in cluster "+l.Cluster+".")
	}
	return emptyMessage(len(l.Imports), "No imports found.")
}

func emptyMessage(n int, msg string) string {
	if n > 0 {
		return ""
	}
	return msg
}

var _ Listing = (*ClusterList)(nil)
var _ Listing = (*ExportList)(nil)
var _ Listing = (*ImportList)(nil)

// WriteTable renders one row per cluster.
func (l *ClusterList) WriteTable(w io.Writer) error {
	t := NewTable(w, "NAME", "REGION", "ZONE", "TRUST DOMAIN", "GATEWAYS", "EXPORTS", "DRAINED", "TRUST")
	for _, c := range l.Clusters {
		var gws []string
		for _, g := range c.Gateways {
			s := strings.Join(g.Addresses, ",")
			if g.Lease != "live" {
				s += " (" + g.Lease + ")"
			}
			gws = append(gws, s)
		}
		name := c.Name
		if c.Local {
			name += " *"
		}
		t.Row(name, dash(c.Region), dash(c.Zone), dash(c.TrustDomain), dash(strings.Join(gws, " ")), c.Exports,
			drainedText(c.Drained, c.DrainedServices), dash(c.Trust))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	for _, c := range l.Clusters {
		if c.TrustDetail != "" {
			if _, err := fmt.Fprintf(w, "%s: %s %s\n", c.Name, c.Trust, c.TrustDetail); err != nil {
				return err
			}
		}
	}
	return nil
}

// ExportList is the answer of `causeway exports`.
type ExportList struct {
	Services []ServiceExports `json:"services"`
}

// ServiceExports is one exported service and its exporting clusters.
type ServiceExports struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Clusters  []Export `json:"clusters"`
}

// Export is one cluster's export of a service.
type Export struct {
	Cluster string `json:"cluster"`
	// Type is ClusterSetIP or Headless.
	Type           string            `json:"type"`
	Ports          []Port            `json:"ports"`
	ReadyEndpoints int               `json:"readyEndpoints"`
	ReadyPerZone   map[string]uint32 `json:"readyPerZone"`
	Created        *time.Time        `json:"created"`
	// Routing is gateway or local-direct.
	Routing         string `json:"routing"`
	SessionAffinity string `json:"sessionAffinity"`
	Drained         bool   `json:"drained"`
}

// Port is one service port.
type Port struct {
	Name        string `json:"name"`
	Port        uint32 `json:"port"`
	Protocol    string `json:"protocol"`
	AppProtocol string `json:"appProtocol"`
}

func newExportList(r *causewayv1.ListExportsResponse) *ExportList {
	out := &ExportList{Services: []ServiceExports{}}
	for _, s := range r.GetServices() {
		se := ServiceExports{Namespace: s.GetNamespace(), Name: s.GetName(), Clusters: []Export{}}
		for _, x := range s.GetClusters() {
			zones := x.GetReadyPerZone()
			if zones == nil {
				zones = map[string]uint32{}
			}
			se.Clusters = append(se.Clusters, Export{
				Cluster: x.GetCluster(), Type: typeName(x.GetType()), Ports: newPorts(x.GetPorts()),
				ReadyEndpoints: int(x.GetReadyEndpoints()), ReadyPerZone: zones, Created: timeOrNil(x.GetCreated()),
				Routing: routingName(x.GetRouting()), SessionAffinity: x.GetSessionAffinity(), Drained: x.GetDrained(),
			})
		}
		out.Services = append(out.Services, se)
	}
	return out
}

// WriteTable renders one row per exporting cluster of each service.
func (l *ExportList) WriteTable(w io.Writer) error {
	t := NewTable(w, "SERVICE", "CLUSTER", "TYPE", "PORTS", "READY", "ROUTING", "CREATED", "DRAINED")
	for _, s := range l.Services {
		for _, x := range s.Clusters {
			created := "-"
			if x.Created != nil {
				created = x.Created.UTC().Format(time.RFC3339)
			}
			t.Row(s.Namespace+"/"+s.Name, x.Cluster, x.Type, portsText(x.Ports), readyText(x.ReadyEndpoints, x.ReadyPerZone),
				x.Routing, created, yesNo(x.Drained))
		}
	}
	return t.Flush()
}

// ImportList is the answer of `causeway imports`.
type ImportList struct {
	Cluster string   `json:"cluster"`
	Imports []Import `json:"imports"`
}

// Import is one service as the cluster imports it.
type Import struct {
	Namespace       string   `json:"namespace"`
	Name            string   `json:"name"`
	Type            string   `json:"type"`
	IPs             []string `json:"ips"`
	Ports           []Port   `json:"ports"`
	Clusters        []string `json:"clusters"`
	SessionAffinity string   `json:"sessionAffinity"`
}

func newImportList(r *causewayv1.ListImportsResponse) *ImportList {
	out := &ImportList{Cluster: r.GetCluster(), Imports: []Import{}}
	for _, i := range r.GetImports() {
		out.Imports = append(out.Imports, Import{
			Namespace: i.GetNamespace(), Name: i.GetName(), Type: typeName(i.GetType()), IPs: nonNil(i.GetIps()),
			Ports: newPorts(i.GetPorts()), Clusters: nonNil(i.GetClusters()), SessionAffinity: i.GetSessionAffinity(),
		})
	}
	return out
}

// WriteTable renders one row per import.
func (l *ImportList) WriteTable(w io.Writer) error {
	t := NewTable(w, "SERVICE", "TYPE", "IPS", "PORTS", "CLUSTERS")
	for _, i := range l.Imports {
		t.Row(i.Namespace+"/"+i.Name, i.Type, dash(strings.Join(i.IPs, ",")), portsText(i.Ports), dash(strings.Join(i.Clusters, ",")))
	}
	return t.Flush()
}

// Status is the answer of `causeway status`.
type Status struct {
	Federator       string     `json:"federator"`
	Cluster         string     `json:"cluster"`
	Region          string     `json:"region"`
	Zone            string     `json:"zone"`
	TrustDomain     string     `json:"trustDomain"`
	Synced          bool       `json:"synced"`
	Etcd            EtcdStatus `json:"etcd"`
	CatalogRevision int64      `json:"catalogRevision"`
	// StaleSince is when the federator's view stopped following etcd; null when live.
	StaleSince *time.Time `json:"staleSince"`
	// Leader is the leading federator replica's identity; empty when unknown.
	Leader   string `json:"leader"`
	IsLeader bool   `json:"isLeader"`
	Counts   Counts `json:"counts"`
}

// EtcdStatus is whether the federator reaches etcd.
type EtcdStatus struct {
	Reachable bool   `json:"reachable"`
	Revision  int64  `json:"revision"`
	Error     string `json:"error"`
}

// Counts are sizes of the federator's view.
type Counts struct {
	Clusters int `json:"clusters"`
	Gateways int `json:"gateways"`
	Services int `json:"services"`
	Exports  int `json:"exports"`
	Imports  int `json:"imports"`
	Drains   int `json:"drains"`
}

func newStatus(addr string, r *causewayv1.StatusResponse) *Status {
	c := r.GetCounts()
	return &Status{
		Federator: addr, Cluster: r.GetCluster(), Region: r.GetRegion(), Zone: r.GetZone(), TrustDomain: r.GetTrustDomain(),
		Synced: r.GetSynced(), Etcd: EtcdStatus{Reachable: r.GetEtcdReachable(), Revision: r.GetEtcdRevision(), Error: r.GetEtcdError()},
		CatalogRevision: r.GetCatalogRevision(), StaleSince: timeOrNil(r.GetStaleSince()),
		Leader: r.GetLeader(), IsLeader: r.GetIsLeader(),
		Counts: Counts{Clusters: int(c.GetClusters()), Gateways: int(c.GetGateways()), Services: int(c.GetServices()),
			Exports: int(c.GetExports()), Imports: int(c.GetImports()), Drains: int(c.GetDrains())},
	}
}

// WriteTable renders one field per line.
func (s *Status) WriteTable(w io.Writer) error {
	t := NewTable(w, "CLUSTER", s.Cluster)
	t.Row("FEDERATOR API", s.Federator)
	t.Row("REGION/ZONE", dash(s.Region)+"/"+dash(s.Zone))
	t.Row("TRUST DOMAIN", s.TrustDomain)
	t.Row("SYNCED", yesNo(s.Synced))
	if s.Etcd.Reachable {
		t.Row("ETCD", "reachable, revision "+strconv.FormatInt(s.Etcd.Revision, 10))
	} else {
		t.Row("ETCD", "UNREACHABLE: "+s.Etcd.Error)
	}
	t.Row("CATALOG REVISION", s.CatalogRevision)
	stale := "no (live)"
	if s.StaleSince != nil {
		stale = "since " + s.StaleSince.UTC().Format(time.RFC3339)
	}
	t.Row("STALE", stale)
	leader := dash(s.Leader)
	if s.Leader == "" {
		leader = "unknown"
	}
	if s.IsLeader {
		leader += " (this replica)"
	}
	t.Row("LEADER", leader)
	c := s.Counts
	t.Row("COUNTS", fmt.Sprintf("%d clusters, %d gateways, %d services (%d exports), %d imports, %d drains",
		c.Clusters, c.Gateways, c.Services, c.Exports, c.Imports, c.Drains))
	return t.Flush()
}

// DrainResult is the answer of `causeway drain` and `causeway undrain`.
type DrainResult struct {
	Cluster string `json:"cluster"`
	// Service is "namespace/name", or empty for the whole cluster.
	Service string `json:"service"`
	// Drained is the state now; Changed is false when it already was.
	Drained bool       `json:"drained"`
	Changed bool       `json:"changed"`
	Reason  string     `json:"reason"`
	Since   *time.Time `json:"since"`
	// DrainedServices are the cluster's drained services when a
	// whole-cluster undrain found no cluster drain (they need --service).
	DrainedServices []string `json:"drainedServices,omitempty"`
}

// WriteTable renders one sentence.
func (d *DrainResult) WriteTable(w io.Writer) error {
	what := "cluster " + d.Cluster
	if d.Service != "" {
		what = d.Service + " in cluster " + d.Cluster
	}
	var msg string
	switch {
	case d.Drained && d.Changed:
		msg = "drained " + what
	case d.Drained:
		msg = what + " was already drained"
		if d.Since != nil {
			msg += " (since " + d.Since.UTC().Format(time.RFC3339) + ")"
		}
	case d.Changed:
		msg = "undrained " + what
	default:
		msg = what + " was not drained"
		if d.Service == "" && len(d.DrainedServices) > 0 {
			msg += "; drained services of it: " + strings.Join(d.DrainedServices, ", ") +
				" (undrain each with --service NAMESPACE/NAME)"
		}
	}
	_, err := fmt.Fprintln(w, msg)
	return err
}

// RemoveResult is the answer of `causeway clusters remove`.
type RemoveResult struct {
	Cluster string  `json:"cluster"`
	Deleted Deleted `json:"deleted"`
}

// Deleted counts the etcd records deleted, by kind.
type Deleted struct {
	Clusters int `json:"clusters"`
	Exports  int `json:"exports"`
	Gateways int `json:"gateways"`
	Drains   int `json:"drains"`
	Imports  int `json:"imports"`
	VIPs     int `json:"vips"`
	Bundles  int `json:"bundles"`
}

func newRemoveResult(r *causewayv1.RemoveClusterResponse) *RemoveResult {
	return &RemoveResult{Cluster: r.GetName(), Deleted: Deleted{
		Clusters: int(r.GetClusters()), Exports: int(r.GetExports()), Gateways: int(r.GetGateways()),
		Drains: int(r.GetDrains()), Imports: int(r.GetImports()), VIPs: int(r.GetVips()), Bundles: int(r.GetBundles()),
	}}
}

// WriteTable renders one sentence.
func (r *RemoveResult) WriteTable(w io.Writer) error {
	d := r.Deleted
	_, err := fmt.Fprintf(w, "removed cluster %s: deleted %d exports, %d gateways, %d drains, %d imports, %d clusterset IPs, %d trust bundles, %d cluster records\n",
		r.Cluster, d.Exports, d.Gateways, d.Drains, d.Imports, d.VIPs, d.Bundles, d.Clusters)
	return err
}

func newPorts(ps []*causewayv1.ServicePort) []Port {
	out := make([]Port, 0, len(ps))
	for _, p := range ps {
		out = append(out, Port{Name: p.GetName(), Port: p.GetPort(), Protocol: protocolName(p.GetProtocol()), AppProtocol: p.GetAppProtocol()})
	}
	return out
}

func portsText(ps []Port) string {
	var parts []string
	for _, p := range ps {
		s := strconv.FormatUint(uint64(p.Port), 10) + "/" + p.Protocol
		if p.Name != "" {
			s = p.Name + ":" + s
		}
		parts = append(parts, s)
	}
	return dash(strings.Join(parts, ","))
}

func readyText(total int, perZone map[string]uint32) string {
	zones := make([]string, 0, len(perZone))
	for z, n := range perZone {
		zones = append(zones, z+"="+strconv.FormatUint(uint64(n), 10))
	}
	if len(zones) == 0 {
		return strconv.Itoa(total)
	}
	sort.Strings(zones)
	return strconv.Itoa(total) + " (" + strings.Join(zones, ",") + ")"
}

func drainedText(whole bool, services []string) string {
	switch {
	case whole:
		return "yes"
	case len(services) > 0:
		return strings.Join(services, ",")
	}
	return "no"
}

func typeName(t causewayv1.ServiceType) string {
	switch t {
	case causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP:
		return "ClusterSetIP"
	case causewayv1.ServiceType_SERVICE_TYPE_HEADLESS:
		return "Headless"
	}
	return "Unspecified"
}

func routingName(r causewayv1.RoutingPolicy) string {
	if r == causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT {
		return "local-direct"
	}
	return "gateway" // unspecified means gateway
}

func protocolName(p causewayv1.Protocol) string {
	switch p {
	case causewayv1.Protocol_PROTOCOL_UDP:
		return "UDP"
	case causewayv1.Protocol_PROTOCOL_SCTP:
		return "SCTP"
	}
	return "TCP" // unspecified means TCP, as in Kubernetes
}

func leaseName(s causewayv1.LeaseState) string {
	switch s {
	case causewayv1.LeaseState_LEASE_STATE_LIVE:
		return "live"
	case causewayv1.LeaseState_LEASE_STATE_EXPIRED:
		return "expired"
	}
	return "unknown"
}

func timeOrNil(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime().UTC()
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
