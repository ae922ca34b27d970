package authz

import (
	"context"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/deploy/crds"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

var (
	crdGVR    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	authzGVR  = GroupVersion.WithResource("authorizationpolicies")
	limitsGVR = GroupVersion.WithResource("ratelimitpolicies")
)

// installCRDs creates Causeway's CRDs in c and waits until both kinds can
// be listed.
func installCRDs(ctx context.Context, t *testing.T, c dynamic.Interface) {
	t.Helper()
	for _, file := range [][]byte{crds.AuthorizationPolicy, crds.RateLimitPolicy} {
		obj := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal(file, &obj.Object))
		_, err := c.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{})
		require.NoError(t, err, "the apiserver refuses %s", obj.GetName())
	}
	require.Eventually(t, func() bool {
		_, err1 := c.Resource(authzGVR).Namespace("default").List(ctx, metav1.ListOptions{})
		_, err2 := c.Resource(limitsGVR).Namespace("default").List(ctx, metav1.ListOptions{})
		return err1 == nil && err2 == nil
	}, time.Minute, 100*time.Millisecond)
}

func toUnstructured(t *testing.T, obj runtime.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	require.NoError(t, err)
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(GroupVersion.String())
	return u
}

// TestCRDsOnAPIServer installs the CRDs into a real kube-apiserver: valid
// policies round-trip into the Go types and validate, status conditions
// are accepted, and the schema refuses what it can.
func TestCRDsOnAPIServer(t *testing.T) {
	cl := kubetest.Start(t, kubetest.Options{SkipMCSCRDs: true})
	ctx := t.Context()
	installCRDs(ctx, t, cl.Dynamic)
	ns := "default"

	p := policy("cart", "cart", ActionAllow, from(src("north", "web", "front*"), src("west", "", "")).to([]string{"GET"}, "/items/*"))
	p.Namespace, p.Spec.Ports, p.Kind = ns, []int32{8080}, KindAuthorizationPolicy
	created, err := cl.Dynamic.Resource(authzGVR).Namespace(ns).Create(ctx, toUnstructured(t, p), metav1.CreateOptions{})
	require.NoError(t, err)
	var back AuthorizationPolicy
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(created.Object, &back))
	require.Equal(t, p.Spec, back.Spec)
	require.NoError(t, back.Validate(nil))

	for _, c := range Conditions(back.Validate(lookupOf(nil))) {
		c.ObservedGeneration = back.Generation
		meta.SetStatusCondition(&back.Status.Conditions, c)
	}
	_, err = cl.Dynamic.Resource(authzGVR).Namespace(ns).UpdateStatus(ctx, toUnstructured(t, &back), metav1.UpdateOptions{})
	require.NoError(t, err, "status conditions fit the schema")

	r := rateLimit("per-caller", "cart", KeyCluster, 100, 200)
	r.Namespace, r.Kind, r.Spec.Period = ns, KindRateLimitPolicy, metav1.Duration{Duration: time.Minute}
	created, err = cl.Dynamic.Resource(limitsGVR).Namespace(ns).Create(ctx, toUnstructured(t, r), metav1.CreateOptions{})
	require.NoError(t, err)
	var rback RateLimitPolicy
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(created.Object, &rback))
	require.Equal(t, r.Spec, rback.Spec)

	// The examples of docs/authorization.md are accepted as written.
	_, err = cl.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	authz, limits := docObjects(t)
	for _, p := range authz {
		_, err := cl.Dynamic.Resource(authzGVR).Namespace("shop").Create(ctx, toUnstructured(t, p), metav1.CreateOptions{FieldValidation: "Strict"})
		require.NoError(t, err, p.Name)
	}
	for _, p := range limits {
		_, err := cl.Dynamic.Resource(limitsGVR).Namespace("shop").Create(ctx, toUnstructured(t, p), metav1.CreateOptions{FieldValidation: "Strict"})
		require.NoError(t, err, p.Name)
	}

	for _, tc := range []struct {
		name string
		gvr  schema.GroupVersionResource
		obj  map[string]any
	}{
		{"Istio's spelling of the action", authzGVR, map[string]any{"service": "cart", "action": "ALLOW", "rules": []any{map[string]any{"from": []any{map[string]any{"cluster": "*"}}}}}},
		{"no rules", authzGVR, map[string]any{"service": "cart", "rules": []any{}}},
		{"empty source", authzGVR, map[string]any{"service": "cart", "rules": []any{map[string]any{"from": []any{map[string]any{}}}}}},
		{"unknown source field", authzGVR, map[string]any{"service": "cart", "rules": []any{map[string]any{"from": []any{map[string]any{"principal": "x"}}}}}},
		{"port 0", authzGVR, map[string]any{"service": "cart", "ports": []any{0}, "rules": []any{map[string]any{"from": []any{map[string]any{"cluster": "*"}}}}}},
		{"bad service", authzGVR, map[string]any{"service": "Cart", "rules": []any{map[string]any{"from": []any{map[string]any{"cluster": "*"}}}}}},
		{"bad key", limitsGVR, map[string]any{"service": "cart", "requests": 1, "key": "Namespace"}},
		{"bare period", limitsGVR, map[string]any{"service": "cart", "requests": 1, "period": "5"}},
		{"zero requests", limitsGVR, map[string]any{"service": "cart", "requests": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind := KindAuthorizationPolicy
			if tc.gvr == limitsGVR {
				kind = KindRateLimitPolicy
			}
			u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": GroupVersion.String(), "kind": kind,
				"metadata": map[string]any{"name": "bad", "namespace": ns}, "spec": tc.obj}}
			_, err := cl.Dynamic.Resource(tc.gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"})
			require.True(t, apierrors.IsInvalid(err) || apierrors.IsBadRequest(err), "%v", err)
		})
	}
}
