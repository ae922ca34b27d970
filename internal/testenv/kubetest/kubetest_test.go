package kubetest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClusterStoresServiceExportAndEndpoints(t *testing.T) {
	c := Start(t, Options{Name: "east"})
	ctx := t.Context()

	v, err := c.Kube.Discovery().ServerVersion()
	require.NoError(t, err)
	require.Equal(t, KubeVersion, v.GitVersion, "built without the version ldflags?")

	_, err = c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	svc, err := c.Kube.CoreV1().Services("shop").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "cart"},
			Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP,
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, svc.Spec.ClusterIP, "apiserver allocates from --service-cluster-ip-range")

	// The apiserver rejects loopback (and link-local) endpoint addresses, so
	// tests cannot point a slice at a backend on 127.0.0.1.
	_, err = c.Kube.DiscoveryV1().EndpointSlices("shop").Create(ctx, endpointSlice("cart-0", "127.0.0.1"), metav1.CreateOptions{})
	require.True(t, apierrors.IsInvalid(err), "want Invalid for a loopback endpoint, got %v", err)
	_, err = c.Kube.DiscoveryV1().EndpointSlices("shop").Create(ctx, endpointSlice("cart-1", "10.1.0.5"), metav1.CreateOptions{})
	require.NoError(t, err)

	_, err = c.MCS.MulticlusterV1beta1().ServiceExports("shop").Create(ctx, &mcsv1beta1.ServiceExport{
		ObjectMeta: metav1.ObjectMeta{Name: "cart"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	// Read everything back, through a client built from the kubeconfig file.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)

	gotSvc, err := kube.CoreV1().Services("shop").Get(ctx, "cart", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, svc.Spec.ClusterIP, gotSvc.Spec.ClusterIP)

	slices, err := kube.DiscoveryV1().EndpointSlices("shop").List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=cart",
	})
	require.NoError(t, err)
	require.Len(t, slices.Items, 1, "no endpointslice controller: only ours")
	require.Equal(t, []string{"10.1.0.5"}, slices.Items[0].Endpoints[0].Addresses)

	export, err := c.MCS.MulticlusterV1beta1().ServiceExports("shop").Get(ctx, "cart", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "cart", export.Name)

	imports, err := c.MCS.MulticlusterV1beta1().ServiceImports("shop").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, imports.Items)
}

func TestStartNClustersAreSeparate(t *testing.T) {
	cs := StartN(t, "a", "b", "c")
	require.Len(t, cs, 3)
	ctx := t.Context()

	_, err := cs[0].Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "only-in-a"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	seen := map[string]bool{}
	for i, c := range cs {
		require.Equal(t, []string{"a", "b", "c"}[i], c.Name)
		require.False(t, seen[c.URL], "clusters share %s", c.URL)
		seen[c.URL] = true
		_, err := c.Kube.CoreV1().Namespaces().Get(ctx, "only-in-a", metav1.GetOptions{})
		if i == 0 {
			require.NoError(t, err)
		} else {
			require.True(t, apierrors.IsNotFound(err), "cluster %s: %v", c.Name, err)
		}
	}

	// Taking one cluster down leaves the others serving.
	require.NoError(t, cs[1].Stop())
	require.NoError(t, cs[1].Stop(), "Stop is idempotent")
	_, err = cs[1].Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.Error(t, err)
	_, err = cs[2].Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
}

func TestStartSkipsMCSCRDs(t *testing.T) {
	c := Start(t, Options{SkipMCSCRDs: true, ServiceClusterIPRange: "10.100.0.0/24"})
	_, err := c.MCS.MulticlusterV1beta1().ServiceExports("default").List(t.Context(), metav1.ListOptions{})
	require.True(t, apierrors.IsNotFound(err), "want NotFound without the CRDs, got %v", err)
}

// endpointSlice is a one-endpoint IPv4 slice of service shop/cart.
func endpointSlice(name, addr string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{discoveryv1.LabelServiceName: "cart"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{
			Name: ptrTo("http"), Port: ptrTo[int32](8080), Protocol: ptrTo(corev1.ProtocolTCP),
		}},
	}
}

func ptrTo[T any](v T) *T { return &v }
