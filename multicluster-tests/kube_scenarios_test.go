package multicluster

import (
	"context"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/kubetest"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// srvPorts asks c's DNS shim for the SRV records of a named port and
// returns their ports (nil on NXDOMAIN or no answer).
func srvPorts(c *pcluster, name string) ([]uint16, int, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
	r, _, err := (&dns.Client{Net: "udp", Timeout: time.Second}).Exchange(m, c.addr(pDNS))
	if err != nil {
		return nil, 0, err
	}
	var ports []uint16
	for _, rr := range r.Answer {
		if srv, ok := rr.(*dns.SRV); ok {
			ports = append(ports, srv.Port)
		}
	}
	return ports, r.Rcode, nil
}

// TestScenarioExportLifecycleKubernetes is issue 8's scenario 1 as an
// operator sees it, with two real kube-apiservers and the federators, DNS
// shims and gateways as processes in Kubernetes mode: a ServiceExport in
// east makes demo/echo resolvable in west (the derived Service's
// ClusterIP) with its SRV port; changing the Service's port changes the
// SRV answer; a conflicting export in west (headless against east's
// ClusterSetIP) gets Conflict=True while east's older export wins; when
// both exports are deleted the name is NXDOMAIN again.
func TestScenarioExportLifecycleKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two kube-apiservers and six causeway processes")
	}
	kc := kubetest.StartN(t, "east", "west")
	ctx := context.Background()
	for _, k := range kc {
		_, err := k.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	s := startPSet(t, 90, 1, []pclusterSpec{
		{name: "east", region: "us", zone: "us-1a", kube: kc[0]},
		{name: "west", region: "us", zone: "us-1b", kube: kc[1]},
	})
	east, west := s.clusters["east"], s.clusters["west"]
	name := "echo.demo.svc.clusterset.local"

	// Create: Service, its endpoints, ServiceExport in east.
	_, err := kc[0].Kube.CoreV1().Services("demo").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "demo"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "echo"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	ready := true
	_, err = kc[0].Kube.DiscoveryV1().EndpointSlices("demo").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "echo-1", Namespace: "demo", Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(80)), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	start := time.Now()
	_, err = kc[0].MCS.MulticlusterV1beta1().ServiceExports("demo").Create(ctx,
		&mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "demo"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	vip := s.resolveVIP(west, name, 60*time.Second)
	t.Logf("scenario 1: %s resolves in west to %s %s after the ServiceExport", name, vip, time.Since(start).Round(time.Millisecond))
	derived, err := kc[1].Kube.CoreV1().Services("demo").Get(ctx, "echo-clusterset", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, derived.Spec.ClusterIP, vip, "west's answer is not its derived Service's ClusterIP")
	require.Eventually(t, func() bool {
		se, err := kc[0].MCS.MulticlusterV1beta1().ServiceExports("demo").Get(ctx, "echo", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(se.Status.Conditions, "Valid")
	}, 30*time.Second, 100*time.Millisecond, "east's ServiceExport is not Valid")
	require.Eventually(t, func() bool {
		p, _, err := srvPorts(west, "_http._tcp."+name)
		return err == nil && len(p) == 1 && p[0] == 80
	}, 30*time.Second, 100*time.Millisecond, "west's SRV answer is not port 80")

	// Update the port: the SRV answer follows.
	svc, err := kc[0].Kube.CoreV1().Services("demo").Get(ctx, "echo", metav1.GetOptions{})
	require.NoError(t, err)
	svc.Spec.Ports[0].Port = 8080
	_, err = kc[0].Kube.CoreV1().Services("demo").Update(ctx, svc, metav1.UpdateOptions{})
	require.NoError(t, err)
	start = time.Now()
	require.Eventually(t, func() bool {
		p, _, err := srvPorts(west, "_http._tcp."+name)
		return err == nil && len(p) == 1 && p[0] == 8080
	}, 30*time.Second, 100*time.Millisecond, "west's SRV answer did not follow the port change")
	t.Logf("scenario 1: port change visible in west's SRV answer after %s", time.Since(start).Round(time.Millisecond))

	// Conflict: west exports a headless echo; east's older export wins.
	_, err = kc[1].Kube.CoreV1().Services("demo").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "demo"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "echo"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kc[1].MCS.MulticlusterV1beta1().ServiceExports("demo").Create(ctx,
		&mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "demo"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	var cond *metav1.Condition
	require.Eventually(t, func() bool {
		se, err := kc[1].MCS.MulticlusterV1beta1().ServiceExports("demo").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return false
		}
		cond = meta.FindStatusCondition(se.Status.Conditions, "Conflict")
		return cond != nil && cond.Status == metav1.ConditionTrue
	}, 30*time.Second, 100*time.Millisecond, "west's conflicting export has no Conflict=True")
	t.Logf("scenario 1: west's export: Conflict=True %s: %s", cond.Reason, cond.Message)
	require.Equal(t, vip, s.resolveVIP(west, name, 10*time.Second), "the winning ClusterSetIP import changed")

	// Delete both exports: the name is gone.
	for _, k := range kc {
		require.NoError(t, k.MCS.MulticlusterV1beta1().ServiceExports("demo").Delete(ctx, "echo", metav1.DeleteOptions{}))
	}
	start = time.Now()
	for _, c := range []*pcluster{east, west} {
		require.Eventually(t, func() bool {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), dns.TypeA)
			r, _, err := (&dns.Client{Net: "udp", Timeout: time.Second}).Exchange(m, c.addr(pDNS))
			return err == nil && r.Rcode == dns.RcodeNameError
		}, 30*time.Second, 100*time.Millisecond, "%s still answers %s after the exports were deleted", c.name, name)
	}
	t.Logf("scenario 1: NXDOMAIN everywhere %s after the exports were deleted", time.Since(start).Round(time.Millisecond))
	require.Eventually(t, func() bool {
		_, err := kc[1].Kube.CoreV1().Services("demo").Get(ctx, "echo-clusterset", metav1.GetOptions{})
		return err != nil
	}, 30*time.Second, 100*time.Millisecond, "west's derived Service was not deleted")
}

func ptrTo[T any](v T) *T { return &v }
