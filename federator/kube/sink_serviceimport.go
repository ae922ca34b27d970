package kube

import (
	"context"
	"encoding/json"
	"fmt"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// applyServiceImport applies the ServiceImport's spec and status when they
// differ from what they should be.
func (c *importer) applyServiceImport(ctx context.Context, imp *causewayv1.ImportRecord, svc *corev1.Service) error {
	ns, name := imp.GetNamespace(), imp.GetName()
	spec := mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, SessionAffinity: corev1.ServiceAffinityNone}
	if imp.GetType() == causewayv1.ServiceType_SERVICE_TYPE_HEADLESS {
		spec.Type = mcsv1beta1.Headless
	}
	for _, p := range imp.GetPorts() {
		sp := mcsv1beta1.ServicePort{Name: p.GetName(), Protocol: kubeProtocol(p.GetProtocol()), Port: int32(p.GetPort())}
		if p.GetAppProtocol() != "" {
			sp.AppProtocol = ptr(p.GetAppProtocol())
		}
		spec.Ports = append(spec.Ports, sp)
	}
	ready := metav1.Condition{Type: string(mcsv1beta1.ServiceImportConditionReady), Status: metav1.ConditionTrue,
		Reason: string(mcsv1beta1.ServiceImportReasonReady), Message: "the derived Service " + svc.Name + " is in place"}
	if spec.Type == mcsv1beta1.ClusterSetIP {
		if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			spec.IPs = []string{svc.Spec.ClusterIP}
		} else {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, string(mcsv1beta1.ServiceImportReasonPending), "waiting for the derived Service's ClusterIP"
		}
	}
	if imp.GetSessionAffinity() == string(corev1.ServiceAffinityClientIP) {
		spec.SessionAffinity = corev1.ServiceAffinityClientIP
		if t := imp.GetSessionAffinityTimeoutSeconds(); t > 0 {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(t))}}
		}
	}
	clusters := make([]mcsv1beta1.ClusterStatus, 0, len(imp.GetClusters()))
	for _, c := range imp.GetClusters() {
		clusters = append(clusters, mcsv1beta1.ClusterStatus{Cluster: c})
	}
	lbl := labels(c.cfg.Cluster, name)

	have, err := c.imports.ServiceImports(ns).Get(name)
	exists := err == nil
	if exists && !ours(have.Labels, c.cfg.Cluster) {
		c.log.Warn("ServiceImport exists and is not managed by Causeway; leaving it", "service", ns+"/"+name)
		return nil
	}
	if !exists || !labelsInclude(have.Labels, lbl) || !apiequality.Semantic.DeepEqual(normImportSpec(have.Spec), normImportSpec(spec)) {
		if err := c.applyImportPart(ctx, ns, name, "", map[string]any{"metadata": map[string]any{"name": name, "namespace": ns, "labels": lbl}, "spec": spec}); err != nil {
			return err
		}
	}
	if exists {
		cur := findCondition(have.Status.Conditions, ready.Type)
		if apiequality.Semantic.DeepEqual(have.Status.Clusters, clusters) && cur != nil &&
			cur.Status == ready.Status && cur.Reason == ready.Reason && cur.Message == ready.Message {
			return nil
		}
		if cur != nil && cur.Status == ready.Status {
			ready.LastTransitionTime = cur.LastTransitionTime
		}
	}
	if ready.LastTransitionTime.IsZero() {
		ready.LastTransitionTime = metav1.Now()
	}
	return c.applyImportPart(ctx, ns, name, "status", map[string]any{"metadata": map[string]any{"name": name, "namespace": ns},
		"status": map[string]any{"clusters": clusters, "conditions": []metav1.Condition{ready}}})
}

func (c *importer) applyImportPart(ctx context.Context, ns, name, sub string, obj map[string]any) error {
	obj["apiVersion"] = mcsv1beta1.GroupVersion.String()
	obj["kind"] = mcsv1beta1.ServiceImportKindName
	body, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var subs []string
	if sub != "" {
		subs = []string{sub}
	}
	_, err = c.cfg.MCS.MulticlusterV1beta1().ServiceImports(ns).Patch(ctx, name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}, subs...)
	if sub == "" {
		if gone := c.namespaceGone(ns, err); gone != nil {
			return gone
		}
	}
	if err != nil {
		return fmt.Errorf("apply ServiceImport %s/%s %s: %w", ns, name, sub, err)
	}
	c.wrote()
	return nil
}

func normImportSpec(s mcsv1beta1.ServiceImportSpec) mcsv1beta1.ServiceImportSpec {
	if len(s.IPs) == 0 {
		s.IPs = nil
	}
	if len(s.Ports) == 0 {
		s.Ports = nil
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = corev1.ServiceAffinityNone
	}
	s.IPFamilies, s.InternalTrafficPolicy, s.TrafficDistribution = nil, nil, nil
	return s
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
