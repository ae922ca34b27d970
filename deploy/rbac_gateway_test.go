package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/gateway/kuberoutes"
	"github.com/causeway-mesh/causeway/gateway/l7route"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	authv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// TestChartRBACSufficesForGatewayRoutes runs the gateway's Kubernetes
// routes (gateway/kuberoutes: informers on HTTPRoutes and GRPCRoutes, the
// status writer) against a real kube-apiserver as the chart's gateway
// ServiceAccount, with exactly the RBAC objects the chart renders: the
// informers sync and a route's status is written; nothing more is allowed.
// Over 80 lines: one scenario whose steps share the apiserver.
func TestChartRBACSufficesForGatewayRoutes(t *testing.T) {
	helmBin(t)
	const ns = "causeway"
	objs := render(t, ns, valuesCases()[0])
	c := kubetest.Start(t, kubetest.Options{Name: "rbac-gw", SkipMCSCRDs: true})
	ctx := context.Background()
	require.NoError(t, c.InstallGatewayAPICRDs(ctx, kubetest.GatewayAPIExperimental, "httproutes", "grpcroutes"))
	a := newApplier(c)
	createNamespace(t, c, ns)
	createNamespace(t, c, "demo")
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			require.NoError(t, a.apply(ctx, o, ns, false))
		}
	}
	deploy := find(t, objs, "Deployment", "causeway-gateway")
	saName, _, _ := unstructured.NestedString(deploy.Object, "spec", "template", "spec", "serviceAccountName")
	automount, _, _ := unstructured.NestedBool(deploy.Object, "spec", "template", "spec", "automountServiceAccountToken")
	require.True(t, automount, "the gateway pod needs its apiserver token")

	// Clients with the gateway's ServiceAccount token.
	tr, err := c.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, saName, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	require.NoError(t, err)
	rc := rest.CopyConfig(c.RESTConfig)
	rc.BearerToken, rc.BearerTokenFile, rc.Impersonate = tr.Status.Token, "", rest.ImpersonationConfig{}
	gc, err := gatewayclient.NewForConfig(rc)
	require.NoError(t, err)
	kc, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)

	// A route, created as a user would.
	admin, err := gatewayclient.NewForConfig(c.RESTConfig)
	require.NoError(t, err)
	hr := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "split", Namespace: "demo"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: new(gatewayv1.Group("")), Kind: new(gatewayv1.Kind("Service")), Name: "cart", Port: new(gatewayv1.PortNumber(80))}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "cart", Port: new(gatewayv1.PortNumber(80))}}}}}},
		},
	}
	_, err = admin.GatewayV1().HTTPRoutes("demo").Create(ctx, hr, metav1.CreateOptions{})
	require.NoError(t, err)

	// The gateway's route machinery, as the gateway runs it.
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	src, err := kuberoutes.NewSource(kuberoutes.SourceConfig{Client: gc, Log: log})
	require.NoError(t, err)
	w, err := kuberoutes.NewStatusWriter(kuberoutes.StatusConfig{Source: src, Log: log})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, src.Run(runCtx)) })
	wg.Go(func() { require.NoError(t, w.Run(runCtx)) })
	wg.Go(func() {
		table := l7route.NewTable(nil)
		for {
			changed := src.Changed()
			w.ReportStatus(runCtx, table.Update(src.Routes(), nil))
			select {
			case <-runCtx.Done():
				return
			case <-changed:
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-src.Synced():
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway's informers did not sync: list/watch of httproutes and grpcroutes refused?")
	}
	waitFor(t, "the route's status written by the gateway", func() error {
		got, err := admin.GatewayV1().HTTPRoutes("demo").Get(ctx, "split", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, p := range got.Status.Parents {
			if p.ControllerName == kuberoutes.ControllerName && meta.IsStatusConditionTrue(p.Conditions, "Accepted") {
				return nil
			}
		}
		return fmt.Errorf("status %+v", got.Status.Parents)
	})

	// Nothing more: not the routes' spec, not Secrets.
	_, err = gc.GatewayV1().HTTPRoutes("demo").Get(ctx, "split", metav1.GetOptions{})
	require.True(t, apierrors.IsForbidden(err), "the gateway may get routes (it reads through informers): %v", err)
	_, err = gc.GatewayV1().HTTPRoutes("demo").Update(ctx, hr, metav1.UpdateOptions{})
	require.True(t, apierrors.IsForbidden(err), "the gateway may update route specs: %v", err)
	_, err = kc.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	require.True(t, apierrors.IsForbidden(err), "the gateway may list Secrets: %v", err)
}
