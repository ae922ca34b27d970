package kuberoutes

import (
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestDesiredParents(t *testing.T) {
	svc := serviceParent()
	gw := gatewayv1.ParentReference{Name: "ingress"}
	past := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	valid := verdict{generation: 3, conditions: l7route.RouteStatus{}.Conditions()}
	invalid := verdict{generation: 4, conditions: l7route.Conditions(&l7route.RouteError{Fields: []*l7route.FieldError{
		{Field: "spec.rules[0]", Reason: l7route.ReasonUnsupportedValue, Detail: "bad"}}})}
	foreign := gatewayv1.RouteParentStatus{ParentRef: gw, ControllerName: "example.com/gw",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: past}}}
	ours := func(v verdict, ltt metav1.Time) gatewayv1.RouteParentStatus {
		p := gatewayv1.RouteParentStatus{ParentRef: svc, ControllerName: ControllerName}
		for _, c := range v.conditions {
			c.ObservedGeneration, c.LastTransitionTime = v.generation, ltt
			p.Conditions = append(p.Conditions, c)
		}
		return p
	}
	t.Run("unchanged verdict is equal, lastTransitionTime kept", func(t *testing.T) {
		existing := []gatewayv1.RouteParentStatus{foreign, ours(valid, past)}
		got := desiredParents(existing, []gatewayv1.ParentReference{gw, svc}, valid)
		require.True(t, equality.Semantic.DeepEqual(existing, got), "%+v", got)
	})
	t.Run("new verdict: conditions and generation change, foreign kept", func(t *testing.T) {
		existing := []gatewayv1.RouteParentStatus{ours(valid, past), foreign}
		got := desiredParents(existing, []gatewayv1.ParentReference{svc, gw, svc}, invalid)
		require.Len(t, got, 2, "one entry per parent, duplicates merged")
		require.Equal(t, foreign, got[0])
		require.Equal(t, int64(4), got[1].Conditions[0].ObservedGeneration)
		require.Equal(t, metav1.ConditionFalse, got[1].Conditions[0].Status)
		require.True(t, got[1].Conditions[0].LastTransitionTime.After(past.Time), "Accepted changed status")
		require.Equal(t, past, got[1].Conditions[1].LastTransitionTime, "ResolvedRefs held its status")
	})
	t.Run("no mesh parent left: our entries go", func(t *testing.T) {
		got := desiredParents([]gatewayv1.RouteParentStatus{foreign, ours(valid, past)}, nil, verdict{})
		require.Equal(t, []gatewayv1.RouteParentStatus{foreign}, got)
	})
}

func TestSafeConvert(t *testing.T) {
	key := l7route.RouteKey{Kind: l7route.KindHTTP, Namespace: ns, Name: "boom"}
	_, err := safeConvert(key, func() (*l7route.Route, error) { panic("nil map") })
	require.ErrorContains(t, err, "nil map")
	_, err = safeConvert(key, func() (*l7route.Route, error) { return nil, nil })
	require.Error(t, err)
}
