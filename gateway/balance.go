package gateway

import (
	"math/rand/v2"
	"sort"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
)

// Locality tiers of a candidate, best first.
const (
	TierOwnCluster = iota
	TierSameZone
	TierSameRegion
	TierOther
)

// TierName names a tier for people.
func TierName(tier int) string {
	switch tier {
	case TierOwnCluster:
		return "own cluster"
	case TierSameZone:
		return "same zone"
	case TierSameRegion:
		return "same region"
	}
	return "other"
}

// Skip reasons of Candidate.Skip that are not ejections.
const (
	SkipDrained       = "drained"
	SkipPortNotThere  = "port not exposed there"
	SkipNoEndpoints   = "no ready endpoints"
	SkipLeaseExpired  = "no live gateway (leases expired)"
	skipEjectedPrefix = "ejected until "
)

// Candidate is a cluster that may serve a flow, or why it may not.
type Candidate struct {
	Cluster string
	// Tier: TierOwnCluster, TierSameZone, TierSameRegion or TierOther.
	Tier int
	// Skip is empty for a usable candidate, else the reason it is skipped.
	Skip string
	// EjectedUntil is set when outlier detection ejected the cluster (Skip
	// then says so). Such a cluster is a last resort: it is tried only
	// when no candidate with an empty Skip is left.
	EjectedUntil time.Time
	// OpenStreams is the number of flows this gateway has open to the
	// cluster, the load power of two choices compares.
	OpenStreams int
}

// LastResort reports whether c is skipped only because it is ejected.
func (c Candidate) LastResort() bool { return !c.EjectedUntil.IsZero() }

// Selector orders candidates. Its zero value knows no load and no
// ejections.
type Selector struct {
	// Load returns the open streams to a cluster; nil means none.
	Load func(cluster string) int
	// EjectedUntil returns when an ejected cluster is re-admitted, or
	// the zero time; nil means nothing is ejected.
	EjectedUntil func(cluster string) time.Time
	// IntN returns a random number in [0, n); nil means math/rand/v2.
	IntN func(n int) int
}

// Candidates orders the clusters exporting key for a flow from cluster
// from on port, with the zero Selector.
func Candidates(v *catalog.View, from string, key catalog.ServiceKey, port uint32) []Candidate {
	return Selector{}.Candidates(v, from, key, port)
}

// Candidates orders the clusters exporting key for a flow from cluster
// from on port: own cluster, same zone, same region, the rest; within a
// tier by power of two choices on open streams. Then come the ejected
// clusters (last resorts; by tier, then earliest re-admission), then the
// unusable ones with the reason (drained, port not exposed there, no
// ready endpoints, no live gateway), in cluster order.
func (s Selector) Candidates(v *catalog.View, from string, key catalog.ServiceKey, port uint32) []Candidate {
	self, _ := v.Cluster(from)
	var tiers [TierOther + 1][]Candidate
	var ejected, skipped []Candidate
	for _, x := range v.Exports(key) {
		name := x.GetCluster()
		c := Candidate{Cluster: name, Tier: tierOf(v, self, from, name)}
		if s.Load != nil {
			c.OpenStreams = s.Load(name)
		}
		switch {
		case v.Drained(name, key):
			c.Skip = SkipDrained
		case !exposes(x, port):
			c.Skip = SkipPortNotThere
		case catalog.ReadyEndpoints(x) == 0:
			c.Skip = SkipNoEndpoints
		case name != from && len(v.Gateways(name)) == 0:
			c.Skip = SkipLeaseExpired
		}
		if c.Skip == "" && s.EjectedUntil != nil {
			if until := s.EjectedUntil(name); !until.IsZero() {
				c.EjectedUntil = until
				c.Skip = skipEjectedPrefix + until.UTC().Format(time.RFC3339)
				ejected = append(ejected, c)
				continue
			}
		}
		if c.Skip != "" {
			skipped = append(skipped, c)
			continue
		}
		tiers[c.Tier] = append(tiers[c.Tier], c)
	}
	out := make([]Candidate, 0, len(v.Exports(key)))
	for _, t := range tiers {
		out = append(out, s.powerOfTwo(t)...)
	}
	sort.SliceStable(ejected, func(i, j int) bool {
		if ejected[i].Tier != ejected[j].Tier {
			return ejected[i].Tier < ejected[j].Tier
		}
		return ejected[i].EjectedUntil.Before(ejected[j].EjectedUntil)
	})
	out = append(out, ejected...)
	return append(out, skipped...)
}

// powerOfTwo orders cs (in place) by repeated power of two choices: of two
// random remaining candidates the one with fewer open streams goes next.
// With equal load either may win, so ties spread.
func (s Selector) powerOfTwo(cs []Candidate) []Candidate {
	intN := s.IntN
	if intN == nil {
		intN = rand.IntN
	}
	for i := 0; i < len(cs)-1; i++ {
		rest := len(cs) - i
		a := i + intN(rest)
		b := i + intN(rest-1)
		if b >= a {
			b++
		}
		if cs[b].OpenStreams < cs[a].OpenStreams {
			a = b
		}
		cs[i], cs[a] = cs[a], cs[i]
	}
	return cs
}

func tierOf(v *catalog.View, self *causewayv1.ClusterRecord, from, cluster string) int {
	if cluster == from {
		return TierOwnCluster
	}
	other, ok := v.Cluster(cluster)
	switch {
	case !ok || self == nil:
		return TierOther
	case other.GetRegion() == self.GetRegion() && other.GetZone() == self.GetZone() && self.GetZone() != "":
		return TierSameZone
	case other.GetRegion() == self.GetRegion() && self.GetRegion() != "":
		return TierSameRegion
	}
	return TierOther
}

func exposes(x *causewayv1.ExportRecord, port uint32) bool {
	for _, p := range x.GetPorts() {
		if p.GetPort() == port && p.GetProtocol() == causewayv1.Protocol_PROTOCOL_TCP {
			return true
		}
	}
	return false
}
