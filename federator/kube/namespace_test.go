package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// lateNamespaceDeadline is how soon after its namespace is created an
// import's objects must be in place.
const lateNamespaceDeadline = 2 * time.Second

// TestImportIntoLateNamespace: east exports demo/echo while west has no
// demo namespace. Creating demo in west afterwards gets it the
// ServiceImport, the derived Service and the gateway EndpointSlice within
// 2 s; deleting demo and creating it again does the same.
func TestImportIntoLateNamespace(t *testing.T) {
	_, cli := etcdtest.Start(t)
	clusters := kubetest.StartN(t, "east", "west")
	members := map[string]*member{}
	for _, c := range clusters {
		createNamespace(t, c, "causeway-system")
		createSlice(t, c, "causeway-system", "causeway-gateway", "causeway-gateway-1", "10.0.0.9", "", 4443)
		m := &member{t: t, name: c.Name, kube: c, cli: cli}
		m.start()
		t.Cleanup(func() { m.stop() })
		members[c.Name] = m
	}
	east, west := members["east"], members["west"]

	// east exports demo/echo; west has no demo namespace.
	createNamespace(t, east.kube, "demo")
	createService(t, east.kube, "echo", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	createSlice(t, east.kube, "demo", "echo", "echo-1", "10.1.0.5", "http", 8080)
	createExport(t, east.kube, "echo")
	eventually(t, "east imports demo/echo", func() error { return checkImport(east, "echo", []string{"east"}, "http", 80) })
	// west has the import and has tried to write it (and found no
	// namespace): it is settled with the import in its view.
	eventually(t, "west's sink to settle with the import of demo/echo", func() error {
		if _, ok := west.fed.Feed().View().Import("west", serviceKey("demo", "echo")); !ok {
			return fmt.Errorf("no import of demo/echo in west's view")
		}
		if !west.sink.Settled() {
			return fmt.Errorf("sink not settled")
		}
		return nil
	})

	// The namespace is created after the export.
	start := time.Now()
	createNamespace(t, west.kube, "demo")
	requireImportObjects(t, west, "echo", start)

	// The namespace is deleted (and its objects with it, as the namespace
	// controller would), then created again.
	deleteNamespace(t, west.kube, "demo")
	start = time.Now()
	createNamespace(t, west.kube, "demo")
	requireImportObjects(t, west, "echo", start)
}

// requireImportObjects asserts that m's cluster holds the ServiceImport,
// the derived Service and the gateway EndpointSlice of demo/name within
// lateNamespaceDeadline of start.
func requireImportObjects(t *testing.T, m *member, name string, start time.Time) {
	t.Helper()
	ctx := context.Background()
	derived := DerivedName(name)
	check := func(c *assert.CollectT) {
		si, err := m.kube.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, name, metav1.GetOptions{})
		if !assert.NoError(c, err, "ServiceImport") {
			return
		}
		assert.Equal(c, mcsv1beta1.ClusterSetIP, si.Spec.Type)
		assert.True(c, meta.IsStatusConditionTrue(si.Status.Conditions, "Ready"), "ServiceImport Ready: %+v", si.Status.Conditions)
		svc, err := m.kube.Kube.CoreV1().Services("demo").Get(ctx, derived, metav1.GetOptions{})
		if !assert.NoError(c, err, "derived Service") {
			return
		}
		assert.Equal(c, []string{svc.Spec.ClusterIP}, si.Spec.IPs, "ServiceImport ips against the derived ClusterIP")
		es, err := m.kube.Kube.DiscoveryV1().EndpointSlices("demo").Get(ctx, derived+"-gateway", metav1.GetOptions{})
		if !assert.NoError(c, err, "gateway EndpointSlice") {
			return
		}
		if assert.Len(c, es.Endpoints, 1) {
			assert.Equal(c, []string{"10.0.0.9"}, es.Endpoints[0].Addresses)
		}
		if assert.Len(c, es.Ports, 1) && assert.Len(c, svc.Spec.Ports, 1) {
			assert.Equal(c, svc.Spec.Ports[0].TargetPort.IntValue(), int(*es.Ports[0].Port), "slice port against the derived Service's egress port")
		}
	}
	require.EventuallyWithT(t, check, time.Until(start.Add(lateNamespaceDeadline)), 20*time.Millisecond,
		"%s's objects for demo/%s within %s of creating the namespace", m.name, name, lateNamespaceDeadline)
	t.Logf("%s: ServiceImport, derived Service and EndpointSlice of demo/%s %s after the namespace was created",
		m.name, name, time.Since(start).Round(time.Millisecond))
}

func createNamespace(t *testing.T, c *kubetest.Cluster, ns string) {
	t.Helper()
	_, err := c.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// deleteNamespace deletes ns and waits until it is gone. kubetest runs no
// controller-manager, so this does the namespace controller's part: once
// ns is Terminating (the apiserver refuses new objects in it), it deletes
// the objects of the kinds the sink writes and removes the "kubernetes"
// finalizer.
func deleteNamespace(t *testing.T, c *kubetest.Cluster, ns string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, c.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	all := metav1.ListOptions{}
	require.NoError(t, c.MCS.MulticlusterV1beta1().ServiceImports(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, all))
	require.NoError(t, c.MCS.MulticlusterV1beta1().ServiceExports(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, all))
	require.NoError(t, c.Kube.DiscoveryV1().EndpointSlices(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, all))
	svcs, err := c.Kube.CoreV1().Services(ns).List(ctx, all)
	require.NoError(t, err)
	for _, svc := range svcs.Items {
		require.NoError(t, c.Kube.CoreV1().Services(ns).Delete(ctx, svc.Name, metav1.DeleteOptions{}))
	}
	n, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, n.DeletionTimestamp, "namespace %s is not being deleted", ns)
	n.Spec.Finalizers = nil
	_, err = c.Kube.CoreV1().Namespaces().Finalize(ctx, n, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 20*time.Millisecond, "namespace %s is not gone", ns)
}
