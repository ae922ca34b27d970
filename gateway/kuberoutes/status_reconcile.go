package kuberoutes

import (
	"context"
	"fmt"
	"slices"

	"github.com/causeway-mesh/causeway/gateway/l7route"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// maxParents is the most status.parents entries the API accepts.
const maxParents = 32

// storedRoute is what the writer needs of a stored HTTPRoute or GRPCRoute.
type storedRoute struct {
	generation int64
	refs       []gatewayv1.ParentReference
	parents    []gatewayv1.RouteParentStatus
	// write updates the status subresource of a copy of the stored object
	// with parents, conditional on its resourceVersion.
	write func(ctx context.Context, parents []gatewayv1.RouteParentStatus) error
}

// reconcile makes the stored route's status.parents entries of
// ControllerName match the route's verdict. It reports whether it wrote.
// A route that is gone, has no verdict yet, or is stored at a generation
// other than its verdict's is left alone; a route without mesh parents
// loses its entries.
func (w *StatusWriter) reconcile(ctx context.Context, key l7route.RouteKey) (bool, error) {
	sr, err := w.stored(key)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var want []gatewayv1.RouteParentStatus
	if slices.ContainsFunc(sr.refs, l7route.IsMeshParent) {
		w.mu.Lock()
		v, ok := w.want[key]
		w.mu.Unlock()
		if !ok || v.generation != sr.generation {
			return false, nil
		}
		want = desiredParents(sr.parents, sr.refs, v)
	} else {
		want = desiredParents(sr.parents, nil, verdict{})
	}
	w.compared.Add(1)
	if equality.Semantic.DeepEqual(want, sr.parents) {
		return false, nil
	}
	if err := sr.write(ctx, want); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("update status of %s: %w", key, err)
	}
	return true, nil
}

// stored reads key's route from the Source's informer cache.
func (w *StatusWriter) stored(key l7route.RouteKey) (*storedRoute, error) {
	switch key.Kind {
	case l7route.KindHTTP:
		hr, err := w.src.http.Lister().HTTPRoutes(key.Namespace).Get(key.Name)
		if err != nil {
			return nil, err
		}
		return &storedRoute{generation: hr.Generation, refs: hr.Spec.ParentRefs, parents: hr.Status.Parents,
			write: func(ctx context.Context, parents []gatewayv1.RouteParentStatus) error {
				c := hr.DeepCopy()
				c.Status.Parents = parents
				_, err := w.client.GatewayV1().HTTPRoutes(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{FieldManager: FieldManager})
				return err
			}}, nil
	case l7route.KindGRPC:
		gr, err := w.src.grpc.Lister().GRPCRoutes(key.Namespace).Get(key.Name)
		if err != nil {
			return nil, err
		}
		return &storedRoute{generation: gr.Generation, refs: gr.Spec.ParentRefs, parents: gr.Status.Parents,
			write: func(ctx context.Context, parents []gatewayv1.RouteParentStatus) error {
				c := gr.DeepCopy()
				c.Status.Parents = parents
				_, err := w.client.GatewayV1().GRPCRoutes(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{FieldManager: FieldManager})
				return err
			}}, nil
	}
	return nil, fmt.Errorf("read %s: unknown kind", key)
}

// desiredParents is existing with ControllerName's entries replaced by one
// per mesh parentRef in refs, carrying v's conditions at v's generation.
// Other controllers' entries keep their place and content; a condition
// whose status holds keeps its lastTransitionTime, so the result equals
// existing when nothing changed.
func desiredParents(existing []gatewayv1.RouteParentStatus, refs []gatewayv1.ParentReference, v verdict) []gatewayv1.RouteParentStatus {
	var out []gatewayv1.RouteParentStatus
	for _, p := range existing {
		if p.ControllerName != ControllerName {
			out = append(out, *p.DeepCopy())
		}
	}
	var done []gatewayv1.ParentReference
	for _, ref := range refs {
		if !l7route.IsMeshParent(ref) || slices.ContainsFunc(done, func(d gatewayv1.ParentReference) bool { return equality.Semantic.DeepEqual(d, ref) }) {
			continue
		}
		done = append(done, ref)
		var conds []metav1.Condition
		if i := slices.IndexFunc(existing, func(p gatewayv1.RouteParentStatus) bool {
			return p.ControllerName == ControllerName && equality.Semantic.DeepEqual(p.ParentRef, ref)
		}); i >= 0 {
			for _, c := range existing[i].Conditions {
				if slices.ContainsFunc(v.conditions, func(w metav1.Condition) bool { return w.Type == c.Type }) {
					conds = append(conds, c)
				}
			}
		}
		for _, c := range v.conditions {
			c.ObservedGeneration = v.generation
			meta.SetStatusCondition(&conds, c)
		}
		out = append(out, gatewayv1.RouteParentStatus{ParentRef: *ref.DeepCopy(), ControllerName: ControllerName, Conditions: conds})
	}
	if len(out) > maxParents {
		out = out[:maxParents]
	}
	return out
}
