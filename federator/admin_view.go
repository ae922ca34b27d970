package federator

import (
	"sort"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
)

// clusterDrains is what is drained of one cluster.
type clusterDrains struct {
	whole    bool
	services []string // "namespace/name", sorted
}

// drainsByCluster collects the drain records of v by cluster.
func drainsByCluster(v *catalog.View) map[string]clusterDrains {
	out := map[string]clusterDrains{}
	for _, e := range v.Entries() {
		d := e.GetDrain()
		if d == nil {
			continue
		}
		cd := out[d.GetCluster()]
		if d.GetNamespace() == "" {
			cd.whole = true
		} else {
			cd.services = append(cd.services, d.GetNamespace()+"/"+d.GetName())
		}
		out[d.GetCluster()] = cd
	}
	for _, cd := range out {
		sort.Strings(cd.services)
	}
	return out
}

// viewCounts sizes v; imports are own's.
func viewCounts(v *catalog.View, own string) *causewayv1.StatusCounts {
	c := &causewayv1.StatusCounts{
		Services: uint32(len(v.ExportedServices())),
		Imports:  uint32(len(v.Imports(own))),
	}
	for _, e := range v.Entries() {
		switch e.GetRecord().(type) {
		case *causewayv1.Entry_Cluster:
			c.Clusters++
		case *causewayv1.Entry_Gateway:
			c.Gateways++
		case *causewayv1.Entry_Export:
			c.Exports++
		case *causewayv1.Entry_Drain:
			c.Drains++
		}
	}
	return c
}

// sortedKeys returns m's service keys sorted by namespace, then name.
func sortedKeys[T any](m map[catalog.ServiceKey]T) []catalog.ServiceKey {
	out := make([]catalog.ServiceKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}
