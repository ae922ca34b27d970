package gateway

import (
	"math/rand/v2"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
)

// Candidate is a cluster that may serve a flow, or why it may not.
type Candidate struct {
	Cluster string
	// Tier: 0 own cluster, 1 same zone, 2 same region, 3 elsewhere.
	Tier int
	// Skip is empty for a usable candidate, else the reason it is skipped.
	Skip string
}

// Candidates orders the clusters exporting key for a flow from cluster
// from on port: own cluster, same zone, same region, the rest, shuffled
// within a tier. Unusable clusters come last with the reason.
func Candidates(v *catalog.View, from string, key catalog.ServiceKey, port uint32) []Candidate {
	self, _ := v.Cluster(from)
	var usable, skipped []Candidate
	tiers := [4][]Candidate{}
	for _, x := range v.Exports(key) {
		c := Candidate{Cluster: x.GetCluster(), Tier: tierOf(v, self, x.GetCluster())}
		switch {
		case v.Drained(x.GetCluster(), key):
			c.Skip = "drained"
		case !exposes(x, port):
			c.Skip = "port not exposed there"
		case catalog.ReadyEndpoints(x) == 0:
			c.Skip = "no ready endpoints"
		case x.GetCluster() != from && len(v.Gateways(x.GetCluster())) == 0:
			c.Skip = "no live gateway (leases expired)"
		}
		if c.Skip != "" {
			skipped = append(skipped, c)
			continue
		}
		tiers[c.Tier] = append(tiers[c.Tier], c)
	}
	for _, t := range tiers {
		rand.Shuffle(len(t), func(i, j int) { t[i], t[j] = t[j], t[i] })
		usable = append(usable, t...)
	}
	return append(usable, skipped...)
}

func tierOf(v *catalog.View, self *causewayv1.ClusterRecord, cluster string) int {
	if cluster == self.GetName() {
		return 0
	}
	other, ok := v.Cluster(cluster)
	switch {
	case !ok || self == nil:
		return 3
	case other.GetRegion() == self.GetRegion() && other.GetZone() == self.GetZone() && self.GetZone() != "":
		return 1
	case other.GetRegion() == self.GetRegion() && self.GetRegion() != "":
		return 2
	}
	return 3
}

func exposes(x *causewayv1.ExportRecord, port uint32) bool {
	for _, p := range x.GetPorts() {
		if p.GetPort() == port && p.GetProtocol() == causewayv1.Protocol_PROTOCOL_TCP {
			return true
		}
	}
	return false
}
