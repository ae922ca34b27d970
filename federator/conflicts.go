package federator

import (
	"fmt"
	"sort"
	"strings"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// Conflict reasons, as mcs-api v1beta1 names them for the Conflict
// condition of a ServiceExport.
const (
	ReasonPortConflict                  = "PortConflict"
	ReasonTypeConflict                  = "TypeConflict"
	ReasonSessionAffinityConflict       = "SessionAffinityConflict"
	ReasonSessionAffinityConfigConflict = "SessionAffinityConfigConflict"
	ReasonNoConflicts                   = "NoConflicts"
)

// reasonOrder fixes the order of reasons in a comma-joined condition reason.
var reasonOrder = []string{ReasonPortConflict, ReasonTypeConflict, ReasonSessionAffinityConflict, ReasonSessionAffinityConfigConflict}

// Conflict is one property on which an export disagrees with the export
// that wins the service's merge.
type Conflict struct {
	// Reason is the mcs-api reason, e.g. PortConflict.
	Reason string
	// Cluster is the cluster whose export loses on this property.
	Cluster string
	// Winner is the cluster whose value the import uses.
	Winner string
	// Field names the property, e.g. `port "http"` or `type`.
	Field string
	// Message explains the conflict for humans.
	Message string
}

// Conflicts returns every conflict among the exports of one service, by
// the rule MergeImport applies: the oldest export (ties by cluster name)
// wins type and session affinity; ports merge by name and then by
// protocol+port, the older port winning a clash. Nil means no conflict.
func Conflicts(exports []*causewayv1.ExportRecord) []Conflict {
	if len(exports) < 2 {
		return nil
	}
	xs := byAge(exports)
	winner := xs[0]
	var out []Conflict
	add := func(reason string, x *causewayv1.ExportRecord, winnerCluster, field, format string, args ...any) {
		out = append(out, Conflict{
			Reason: reason, Cluster: x.GetCluster(), Winner: winnerCluster, Field: field,
			Message: fmt.Sprintf("%s: cluster %s exports %s; the import uses %s from cluster %s, the oldest export",
				field, x.GetCluster(), fmt.Sprintf(format, args...), describeWinner(reason, winner), winnerCluster),
		})
	}
	type portOwner struct {
		cluster string
		port    *causewayv1.ServicePort
	}
	byName := map[string]portOwner{}
	byProtoPort := map[string]portOwner{}
	for _, x := range xs {
		if x != winner {
			if x.GetType() != winner.GetType() {
				add(ReasonTypeConflict, x, winner.GetCluster(), "type", "%s", typeName(x.GetType()))
			}
			if affinity(x) != affinity(winner) {
				add(ReasonSessionAffinityConflict, x, winner.GetCluster(), "sessionAffinity", "%s", affinity(x))
			} else if affinity(x) == "ClientIP" && x.GetSessionAffinityTimeoutSeconds() != winner.GetSessionAffinityTimeoutSeconds() {
				add(ReasonSessionAffinityConfigConflict, x, winner.GetCluster(), "sessionAffinityConfig.clientIP.timeoutSeconds",
					"%d", x.GetSessionAffinityTimeoutSeconds())
			}
		}
		for _, p := range x.GetPorts() {
			pp := portKey(p)
			if o, ok := byName[p.GetName()]; ok && p.GetName() != "" {
				if portKey(o.port) != pp {
					out = append(out, portConflict(x, p, o.cluster, o.port))
				}
				continue
			}
			if o, ok := byProtoPort[pp]; ok {
				if o.port.GetName() != p.GetName() {
					out = append(out, portConflict(x, p, o.cluster, o.port))
				}
				continue
			}
			if p.GetName() != "" {
				byName[p.GetName()] = portOwner{x.GetCluster(), p}
			}
			byProtoPort[pp] = portOwner{x.GetCluster(), p}
		}
	}
	return out
}

func portConflict(x *causewayv1.ExportRecord, p *causewayv1.ServicePort, winner string, won *causewayv1.ServicePort) Conflict {
	field := fmt.Sprintf("port %q", p.GetName())
	if p.GetName() == "" {
		field = "port " + portKey(p)
	}
	return Conflict{
		Reason: ReasonPortConflict, Cluster: x.GetCluster(), Winner: winner, Field: field,
		Message: fmt.Sprintf("%s: cluster %s exports %s; cluster %s, an older export, exports %s, which the import keeps; "+
			"traffic for this port goes only to clusters that expose the imported port",
			field, x.GetCluster(), describePort(p), winner, describePort(won)),
	}
}

// ConflictCondition summarises the conflicts of a service for one
// constituent export, as the Conflict condition carries it: the reasons
// comma-joined in a fixed order (NoConflicts when none) and a message.
func ConflictCondition(conflicts []Conflict) (reason, message string) {
	if len(conflicts) == 0 {
		return ReasonNoConflicts, "no conflicting properties among the exports of this service"
	}
	seen := map[string]bool{}
	for _, c := range conflicts {
		seen[c.Reason] = true
	}
	var reasons []string
	for _, r := range reasonOrder {
		if seen[r] {
			reasons = append(reasons, r)
		}
	}
	msgs := make([]string, len(conflicts))
	for i, c := range conflicts {
		msgs[i] = c.Message
	}
	sort.Strings(msgs)
	return strings.Join(reasons, ","), strings.Join(msgs, "; ")
}

// byAge returns exports sorted oldest first, ties by cluster name.
func byAge(exports []*causewayv1.ExportRecord) []*causewayv1.ExportRecord {
	xs := append([]*causewayv1.ExportRecord(nil), exports...)
	sort.SliceStable(xs, func(i, j int) bool {
		ti, tj := xs[i].GetCreated().AsTime(), xs[j].GetCreated().AsTime()
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return xs[i].GetCluster() < xs[j].GetCluster()
	})
	return xs
}

func describeWinner(reason string, w *causewayv1.ExportRecord) string {
	switch reason {
	case ReasonTypeConflict:
		return typeName(w.GetType())
	case ReasonSessionAffinityConfigConflict:
		return fmt.Sprintf("%d", w.GetSessionAffinityTimeoutSeconds())
	default:
		return affinity(w)
	}
}

func affinity(x *causewayv1.ExportRecord) string {
	if x.GetSessionAffinity() == "" {
		return "None"
	}
	return x.GetSessionAffinity()
}

func typeName(t causewayv1.ServiceType) string {
	if t == causewayv1.ServiceType_SERVICE_TYPE_HEADLESS {
		return "Headless"
	}
	return "ClusterSetIP"
}

func portKey(p *causewayv1.ServicePort) string {
	return fmt.Sprintf("%s/%d", protoName(p.GetProtocol()), p.GetPort())
}

func describePort(p *causewayv1.ServicePort) string {
	if p.GetName() == "" {
		return portKey(p)
	}
	return fmt.Sprintf("%q as %s", p.GetName(), portKey(p))
}

func protoName(p causewayv1.Protocol) string {
	switch p {
	case causewayv1.Protocol_PROTOCOL_UDP:
		return "UDP"
	case causewayv1.Protocol_PROTOCOL_SCTP:
		return "SCTP"
	default:
		return "TCP"
	}
}
