package kube

import (
	"fmt"
	"sort"
	"strconv"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// record builds the export record of a valid ServiceExport; a non-empty
// problem means an annotation is invalid.
func (c *exporter) record(se *mcsv1beta1.ServiceExport, svc *corev1.Service) (*causewayv1.ExportRecord, string) {
	rec := &causewayv1.ExportRecord{
		Namespace: se.Namespace, Name: se.Name, Cluster: c.cfg.Cluster,
		Type:            causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
		SessionAffinity: string(svc.Spec.SessionAffinity),
		Created:         timestamppb.New(se.CreationTimestamp.Time),
		ReadyPerZone:    map[string]uint32{},
	}
	if rec.SessionAffinity == "" {
		rec.SessionAffinity = string(corev1.ServiceAffinityNone)
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP && svc.Spec.SessionAffinityConfig != nil &&
		svc.Spec.SessionAffinityConfig.ClientIP != nil && svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != nil {
		rec.SessionAffinityTimeoutSeconds = uint32(*svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds)
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		rec.Type = causewayv1.ServiceType_SERVICE_TYPE_HEADLESS
	} else {
		rec.ClusterIp = svc.Spec.ClusterIP
	}
	switch r := se.Annotations[AnnotationRouting]; r {
	case "", "gateway":
		rec.Routing = causewayv1.RoutingPolicy_ROUTING_POLICY_GATEWAY
	case "local-direct":
		rec.Routing = causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT
	default:
		return nil, fmt.Sprintf("annotation %s=%q: want gateway or local-direct", AnnotationRouting, r)
	}
	for _, p := range svc.Spec.Ports {
		sp := &causewayv1.ServicePort{Name: p.Name, Protocol: protocol(p.Protocol), Port: uint32(p.Port)}
		if p.AppProtocol != nil {
			sp.AppProtocol = *p.AppProtocol
		}
		rec.Ports = append(rec.Ports, sp)
	}
	slices, err := c.slices.EndpointSlices(se.Namespace).List(klabels.SelectorFromSet(klabels.Set{labelSliceService: se.Name}))
	if err == nil {
		c.addEndpoints(rec, svc, slices)
	}
	return rec, ""
}

// addEndpoints adds the endpoints of svc's slices to rec, each address
// once (slices in name order), and counts the ready ones per zone.
func (c *exporter) addEndpoints(rec *causewayv1.ExportRecord, svc *corev1.Service, slices []*discoveryv1.EndpointSlice) {
	sort.Slice(slices, func(i, j int) bool { return slices[i].Name < slices[j].Name })
	seen := map[string]bool{}
	for _, es := range slices {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		targets := targetPorts(svc, es)
		for _, ep := range es.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				ready = false
			}
			zone := c.cfg.DefaultZone
			if ep.Zone != nil && *ep.Zone != "" {
				zone = *ep.Zone
			}
			hostname := ""
			if ep.Hostname != nil {
				hostname = *ep.Hostname
			}
			for _, addr := range ep.Addresses {
				if seen[addr] {
					continue
				}
				seen[addr] = true
				rec.Endpoints = append(rec.Endpoints, &causewayv1.Endpoint{
					Address: addr, Hostname: hostname, Zone: zone, Ready: ready, TargetPorts: targets,
				})
				if ready {
					rec.ReadyPerZone[zone]++
				}
			}
		}
	}
}

// targetPorts maps the service's port names (and numbers) to the ports
// the slice's endpoints listen on, where they differ.
func targetPorts(svc *corev1.Service, es *discoveryv1.EndpointSlice) map[string]uint32 {
	var out map[string]uint32
	for _, sp := range svc.Spec.Ports {
		for _, ep := range es.Ports {
			name := ""
			if ep.Name != nil {
				name = *ep.Name
			}
			if name != sp.Name || ep.Port == nil || *ep.Port == sp.Port {
				continue
			}
			if out == nil {
				out = map[string]uint32{}
			}
			key := sp.Name
			if key == "" {
				key = strconv.Itoa(int(sp.Port))
			}
			out[key] = uint32(*ep.Port)
		}
	}
	return out
}

func protocol(p corev1.Protocol) causewayv1.Protocol {
	switch p {
	case corev1.ProtocolUDP:
		return causewayv1.Protocol_PROTOCOL_UDP
	case corev1.ProtocolSCTP:
		return causewayv1.Protocol_PROTOCOL_SCTP
	default:
		return causewayv1.Protocol_PROTOCOL_TCP
	}
}

func ptr[T any](v T) *T { return &v }
