package kube

import (
	"context"
	"fmt"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// applyService applies the derived Service when it differs from what it
// should be and returns the current object (nil when the name is taken).
func (c *importer) applyService(ctx context.Context, imp *causewayv1.ImportRecord) (*corev1.Service, error) {
	ns, dname := imp.GetNamespace(), DerivedName(imp.GetName())
	headless := imp.GetType() == causewayv1.ServiceType_SERVICE_TYPE_HEADLESS
	have, err := c.services.Services(ns).Get(dname)
	if err == nil && !ours(have.Labels, c.cfg.Cluster) {
		c.log.Warn("derived Service name taken by a Service Causeway does not manage; not importing",
			"service", ns+"/"+imp.GetName(), "derived", dname)
		return nil, nil
	}
	ports := make([]*corev1ac.ServicePortApplyConfiguration, 0, len(imp.GetPorts()))
	for _, p := range imp.GetPorts() {
		target := int32(p.GetPort())
		if e := egressPort(imp, p); e != 0 {
			target = int32(e)
		}
		pa := corev1ac.ServicePort().WithName(p.GetName()).WithProtocol(kubeProtocol(p.GetProtocol())).
			WithPort(int32(p.GetPort())).WithTargetPort(intstr.FromInt32(target))
		if p.GetAppProtocol() != "" {
			pa.WithAppProtocol(p.GetAppProtocol())
		}
		ports = append(ports, pa)
	}
	spec := corev1ac.ServiceSpec().WithType(corev1.ServiceTypeClusterIP).WithPorts(ports...)
	affinity := corev1.ServiceAffinityNone
	if imp.GetSessionAffinity() == string(corev1.ServiceAffinityClientIP) {
		affinity = corev1.ServiceAffinityClientIP
		if t := imp.GetSessionAffinityTimeoutSeconds(); t > 0 {
			spec.WithSessionAffinityConfig(corev1ac.SessionAffinityConfig().WithClientIP(corev1ac.ClientIPConfig().WithTimeoutSeconds(int32(t))))
		}
	}
	spec.WithSessionAffinity(affinity)
	if headless {
		spec.WithClusterIP(corev1.ClusterIPNone).WithPublishNotReadyAddresses(false)
	}
	if err == nil && serviceMatches(have, imp, headless, affinity) {
		return have, nil
	}
	if err == nil && (have.Spec.ClusterIP == corev1.ClusterIPNone) != headless {
		// clusterIP is immutable: a type change replaces the Service.
		if err := c.cfg.Kube.CoreV1().Services(ns).Delete(ctx, dname, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("replace derived Service %s/%s: %w", ns, dname, err)
		}
	}
	ac := corev1ac.Service(dname, ns).WithLabels(labels(c.cfg.Cluster, imp.GetName())).WithSpec(spec)
	svc, err := c.cfg.Kube.CoreV1().Services(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if gone := c.namespaceGone(ns, err); gone != nil {
		return nil, gone
	}
	if err != nil {
		return nil, fmt.Errorf("apply derived Service %s/%s: %w", ns, dname, err)
	}
	c.wrote()
	return svc, nil
}

func serviceMatches(have *corev1.Service, imp *causewayv1.ImportRecord, headless bool, affinity corev1.ServiceAffinity) bool {
	if !labelsInclude(have.Labels, labels(have.Labels[LabelImportingCluster], imp.GetName())) ||
		(have.Spec.ClusterIP == corev1.ClusterIPNone) != headless || have.Spec.SessionAffinity != affinity ||
		len(have.Spec.Ports) != len(imp.GetPorts()) {
		return false
	}
	if affinity == corev1.ServiceAffinityClientIP && imp.GetSessionAffinityTimeoutSeconds() > 0 {
		c := have.Spec.SessionAffinityConfig
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil || uint32(*c.ClientIP.TimeoutSeconds) != imp.GetSessionAffinityTimeoutSeconds() {
			return false
		}
	}
	for i, p := range imp.GetPorts() {
		hp := have.Spec.Ports[i]
		target := int32(p.GetPort())
		if e := egressPort(imp, p); e != 0 {
			target = int32(e)
		}
		app := ""
		if hp.AppProtocol != nil {
			app = *hp.AppProtocol
		}
		if hp.Name != p.GetName() || hp.Protocol != kubeProtocol(p.GetProtocol()) || hp.Port != int32(p.GetPort()) ||
			hp.TargetPort != intstr.FromInt32(target) || app != p.GetAppProtocol() {
			return false
		}
	}
	return true
}

func egressPort(imp *causewayv1.ImportRecord, p *causewayv1.ServicePort) uint32 {
	for _, e := range imp.GetEgressPorts() {
		if e.GetProtocol() == p.GetProtocol() && e.GetPort() == p.GetPort() {
			return e.GetEgressPort()
		}
	}
	return 0
}

func kubeProtocol(p causewayv1.Protocol) corev1.Protocol {
	switch p {
	case causewayv1.Protocol_PROTOCOL_UDP:
		return corev1.ProtocolUDP
	case causewayv1.Protocol_PROTOCOL_SCTP:
		return corev1.ProtocolSCTP
	default:
		return corev1.ProtocolTCP
	}
}
