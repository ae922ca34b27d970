package catalog

import (
	"sort"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// ServiceKey names a service across the clusterset.
type ServiceKey struct{ Namespace, Name string }

// String renders "namespace/name".
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// View is an immutable snapshot of the federation. Callers must not modify
// anything reachable from it.
type View struct {
	// Revision is the etcd revision the view reflects.
	Revision int64
	// StaleSince is when contact with the federator was lost; zero when live.
	StaleSince time.Time

	entries  map[string]*causewayv1.Entry
	clusters map[string]*causewayv1.ClusterRecord
	gateways map[string][]*causewayv1.GatewayRecord
	exports  map[ServiceKey][]*causewayv1.ExportRecord
	imports  map[string]map[ServiceKey]*causewayv1.ImportRecord
	drains   map[string]*causewayv1.DrainRecord
	bundles  map[string]*causewayv1.TrustBundle
}

// NewView builds a view from entries keyed by their relative key.
func NewView(entries map[string]*causewayv1.Entry, revision int64) *View {
	v := &View{
		Revision: revision,
		entries:  entries,
		clusters: map[string]*causewayv1.ClusterRecord{},
		gateways: map[string][]*causewayv1.GatewayRecord{},
		exports:  map[ServiceKey][]*causewayv1.ExportRecord{},
		imports:  map[string]map[ServiceKey]*causewayv1.ImportRecord{},
		drains:   map[string]*causewayv1.DrainRecord{},
		bundles:  map[string]*causewayv1.TrustBundle{},
	}
	for key, e := range entries {
		switch r := e.GetRecord().(type) {
		case *causewayv1.Entry_Cluster:
			v.clusters[r.Cluster.GetName()] = r.Cluster
		case *causewayv1.Entry_Gateway:
			c := r.Gateway.GetCluster()
			v.gateways[c] = append(v.gateways[c], r.Gateway)
		case *causewayv1.Entry_Export:
			k := ServiceKey{r.Export.GetNamespace(), r.Export.GetName()}
			v.exports[k] = append(v.exports[k], r.Export)
		case *causewayv1.Entry_Import:
			c := r.Import.GetCluster()
			if v.imports[c] == nil {
				v.imports[c] = map[ServiceKey]*causewayv1.ImportRecord{}
			}
			v.imports[c][ServiceKey{r.Import.GetNamespace(), r.Import.GetName()}] = r.Import
		case *causewayv1.Entry_Drain:
			v.drains[key] = r.Drain
		case *causewayv1.Entry_Bundle:
			v.bundles[r.Bundle.GetCluster()] = r.Bundle
		}
	}
	for _, gws := range v.gateways {
		sort.Slice(gws, func(i, j int) bool { return gws[i].GetInstance() < gws[j].GetInstance() })
	}
	for _, xs := range v.exports {
		sort.Slice(xs, func(i, j int) bool { return xs[i].GetCluster() < xs[j].GetCluster() })
	}
	return v
}

// Entries returns the view's entries keyed by relative key.
func (v *View) Entries() map[string]*causewayv1.Entry { return v.entries }

// Cluster returns a member cluster's record.
func (v *View) Cluster(name string) (*causewayv1.ClusterRecord, bool) {
	c, ok := v.clusters[name]
	return c, ok
}

// Clusters returns the member clusters sorted by name.
func (v *View) Clusters() []*causewayv1.ClusterRecord {
	out := make([]*causewayv1.ClusterRecord, 0, len(v.clusters))
	for _, c := range v.clusters {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// Gateways returns a cluster's live gateway instances sorted by instance.
func (v *View) Gateways(cluster string) []*causewayv1.GatewayRecord { return v.gateways[cluster] }

// Exports returns every cluster's export of a service, sorted by cluster.
func (v *View) Exports(k ServiceKey) []*causewayv1.ExportRecord { return v.exports[k] }

// Export returns one cluster's export of a service.
func (v *View) Export(k ServiceKey, cluster string) (*causewayv1.ExportRecord, bool) {
	for _, x := range v.exports[k] {
		if x.GetCluster() == cluster {
			return x, true
		}
	}
	return nil, false
}

// ExportedServices returns every service exported by at least one cluster, sorted.
func (v *View) ExportedServices() []ServiceKey {
	out := make([]ServiceKey, 0, len(v.exports))
	for k := range v.exports {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Import returns a cluster's import of a service.
func (v *View) Import(cluster string, k ServiceKey) (*causewayv1.ImportRecord, bool) {
	i, ok := v.imports[cluster][k]
	return i, ok
}

// Imports returns a cluster's imports keyed by service.
func (v *View) Imports(cluster string) map[ServiceKey]*causewayv1.ImportRecord {
	return v.imports[cluster]
}

// Drained reports whether a cluster, or the service in it, is drained.
func (v *View) Drained(cluster string, k ServiceKey) bool {
	if _, ok := v.drains["drain/"+cluster]; ok {
		return true
	}
	_, ok := v.drains["drain/"+cluster+"/"+k.Namespace+"/"+k.Name]
	return ok
}

// Bundles returns every cluster's trust bundle keyed by cluster.
func (v *View) Bundles() map[string]*causewayv1.TrustBundle { return v.bundles }

// ReadyEndpoints is the number of ready endpoints in an export.
func ReadyEndpoints(x *causewayv1.ExportRecord) int {
	n := 0
	for _, c := range x.GetReadyPerZone() {
		n += int(c)
	}
	return n
}
