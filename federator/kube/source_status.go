package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

func invalid(se *mcsv1beta1.ServiceExport, reason mcsv1beta1.ServiceExportConditionReason, msg string) []metav1.Condition {
	return []metav1.Condition{
		{Type: string(mcsv1beta1.ServiceExportConditionValid), Status: metav1.ConditionFalse, Reason: string(reason), Message: msg, ObservedGeneration: se.Generation},
		{Type: string(mcsv1beta1.ServiceExportConditionReady), Status: metav1.ConditionFalse, Reason: string(mcsv1beta1.ServiceExportReasonFailed),
			Message: "not exported: " + msg, ObservedGeneration: se.Generation},
	}
}

// validConditions are the conditions of an exportable ServiceExport: Ready
// once the federation holds its record, Conflict from all the service's
// exports.
func (c *exporter) validConditions(se *mcsv1beta1.ServiceExport, rec *causewayv1.ExportRecord) []metav1.Condition {
	gen := se.Generation
	conds := []metav1.Condition{{Type: string(mcsv1beta1.ServiceExportConditionValid), Status: metav1.ConditionTrue,
		Reason: string(mcsv1beta1.ServiceExportReasonValid), Message: "the Service can be exported", ObservedGeneration: gen}}
	v := c.cfg.Feed.View()
	k := catalog.ServiceKey{Namespace: se.Namespace, Name: se.Name}
	have, ok := v.Export(k, c.cfg.Cluster)
	if !ok || !federator.SameExport(have, rec) {
		return append(conds, metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionReady), Status: metav1.ConditionFalse,
			Reason: string(mcsv1beta1.ServiceExportReasonPending), Message: "waiting for the export to reach the federation", ObservedGeneration: gen})
	}
	exporters := v.Exports(k)
	clusters := make([]string, len(exporters))
	for i, x := range exporters {
		clusters[i] = x.GetCluster()
	}
	sort.Strings(clusters)
	conds = append(conds, metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionReady), Status: metav1.ConditionTrue,
		Reason: string(mcsv1beta1.ServiceExportReasonExported), ObservedGeneration: gen,
		Message: fmt.Sprintf("exported to the clusterset; exporting clusters: %v", clusters)})
	conflicts := federator.Conflicts(exporters)
	reason, msg := federator.ConflictCondition(conflicts)
	status := metav1.ConditionFalse
	if len(conflicts) > 0 {
		status = metav1.ConditionTrue
	}
	return append(conds, metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionConflict), Status: status,
		Reason: reason, Message: msg, ObservedGeneration: gen})
}

// writeConditions applies conds to se's status when they differ from what
// it has. Transition times are kept for unchanged statuses.
func (c *exporter) writeConditions(ctx context.Context, se *mcsv1beta1.ServiceExport, conds []metav1.Condition) error {
	next := append([]metav1.Condition(nil), se.Status.Conditions...)
	for _, c := range conds {
		meta.SetStatusCondition(&next, c)
	}
	if !hasCondition(conds, mcsv1beta1.ServiceExportConditionConflict) {
		meta.RemoveStatusCondition(&next, string(mcsv1beta1.ServiceExportConditionConflict))
	}
	if apiequality.Semantic.DeepEqual(next, se.Status.Conditions) {
		return nil
	}
	// Apply the full set we own (Valid, Ready, Conflict), with the
	// transition times SetStatusCondition kept.
	owned := make([]metav1.Condition, 0, len(conds))
	for _, c := range conds {
		owned = append(owned, *meta.FindStatusCondition(next, c.Type))
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": mcsv1beta1.GroupVersion.String(), "kind": mcsv1beta1.ServiceExportKindName,
		"metadata": map[string]any{"name": se.Name, "namespace": se.Namespace},
		"status":   map[string]any{"conditions": owned},
	})
	if err != nil {
		return err
	}
	_, err = c.cfg.MCS.MulticlusterV1beta1().ServiceExports(se.Namespace).Patch(ctx, se.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set conditions of ServiceExport %s/%s: %w", se.Namespace, se.Name, err)
	}
	return nil
}

func hasCondition(conds []metav1.Condition, t mcsv1beta1.ServiceExportConditionType) bool {
	for _, c := range conds {
		if c.Type == string(t) {
			return true
		}
	}
	return false
}
