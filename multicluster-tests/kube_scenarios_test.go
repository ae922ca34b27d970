package multicluster

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
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

// TestScenarioExportLifecycleKubernetes is fault scenario 1 as an
// operator sees it, with two real kube-apiservers and the federators, DNS
// shims and gateways as processes in Kubernetes mode: a ServiceExport in
// east makes demo/echo resolvable in west (the derived Service's
// ClusterIP) with its SRV port; changing the Service's port changes the
// SRV answer; a conflicting export in west (headless against east's
// ClusterSetIP) gets Conflict=True while east's older export wins; when
// both exports are deleted the name is NXDOMAIN again.
// Over 80 lines: one scenario whose steps share the servers it starts.
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
	createServiceWithEndpoint(t, kc[0], "demo", "echo", "http", 80, "10.1.0.5", 80)
	start := time.Now()
	_, err := kc[0].MCS.MulticlusterV1beta1().ServiceExports("demo").Create(ctx,
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

// TestScenarioEndpointsUnreadyKubernetes is fault scenario 3 as
// Kubernetes reports it: west and north (two real kube-apiservers, the
// federators in Kubernetes mode) both export demo/echo; west's clients
// reach it through west's derived Service (resolved here as kube-proxy
// would, from the EndpointSlice the federator writes) and are served by
// west's own backend. When the Ready condition of that backend's
// endpoint in west's EndpointSlice turns false, traffic moves to north
// with no failed request; the backend then stops (as its pod would) and
// nothing notices; ready again, traffic comes back to west.
//
// The backends' addresses are in an EndpointSlice, which Kubernetes
// refuses for loopback addresses, so the test runs in a network
// namespace of its own (see runInNetns) where 10.202.n.0/24 is local.
func TestScenarioEndpointsUnreadyKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two kube-apiservers and six causeway processes")
	}
	t.Parallel() // in a network namespace of its own
	l, err := runInNetns(t, []string{"west", "north"}, false)
	if err != nil {
		t.Skipf("scenario 3 needs endpoint addresses Kubernetes accepts, so a network namespace: %v "+
			"(TestGatewayFailover covers unready endpoints with the static source)", err)
	}
	if l == nil {
		return // the test ran in the namespace
	}
	kc := kubetest.StartN(t, "west", "north")
	ctx := context.Background()
	specs := []pclusterSpec{
		{name: "west", region: "us", zone: "us-1a", exports: []string{"echo"}, kube: kc[0]},
		{name: "north", region: "eu", zone: "eu-1a", exports: []string{"echo"}, kube: kc[1]},
	}
	for i, k := range kc {
		for _, ns := range []string{"demo", "causeway"} {
			_, err := k.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
		// The gateway's own Service: its endpoint is where the federator
		// points derived Services.
		gwIP := l.cluster(specs[i].name).IP
		createServiceWithEndpoint(t, k, "causeway", "causeway-gateway", "quic", 4433, gwIP, 4433)
	}
	s := startPSetIn(t, l, 1, specs)
	west := s.clusters["west"]
	for i, k := range kc {
		c := s.clusters[specs[i].name]
		createServiceWithEndpoint(t, k, "demo", "echo", "http", 8080, c.backendIP, c.backendPort("echo"))
		_, err := k.MCS.MulticlusterV1beta1().ServiceExports("demo").Create(ctx,
			&mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "demo"}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	target := kubeProxyTarget(t, kc[0], "demo", "echo", "http", 60*time.Second)
	t.Logf("scenario 3: west's clients reach demo/echo at %s (derived Service endpoint)", target)
	traffic := startOpenTraffic("http://"+target+"/", 10*time.Millisecond)
	defer traffic.stop()
	traffic.waitServedBy(t, time.Now(), "west", 20, 60*time.Second)

	at := time.Now()
	setEndpointReady(t, kc[0], "demo", "echo", false)
	first := traffic.waitServedBy(t, at, "north", 20, 30*time.Second)
	t.Logf("scenario 3: west's endpoint Ready=false: traffic on north %s later", max(first.Sub(at), 0).Round(time.Millisecond))
	addr := west.stopBackend("echo")
	stopped := time.Now()
	traffic.waitServedBy(t, stopped, "north", 50, 30*time.Second)

	west.restartBackend(t, "echo", addr)
	at2 := time.Now()
	setEndpointReady(t, kc[0], "demo", "echo", true)
	back := traffic.waitServedBy(t, at2, "west", 20, 30*time.Second)
	t.Logf("scenario 3: Ready=true again: traffic back on west %s later", max(back.Sub(at2), 0).Round(time.Millisecond))
	reportLoop(t, "scenario 3", traffic, at)
}

// createServiceWithEndpoint creates Service ns/name with one TCP port and
// an EndpointSlice of one ready endpoint, as a Deployment's controller
// would.
func createServiceWithEndpoint(t *testing.T, k *kubetest.Cluster, ns, name, port string, servicePort int32, ip string, targetPort int32) {
	t.Helper()
	ctx := context.Background()
	_, err := k.Kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: port, Port: servicePort, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = k.Kube.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo(port), Port: ptrTo(targetPort), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// setEndpointReady sets the Ready condition of the endpoints in the
// EndpointSlice createServiceWithEndpoint made for ns/name.
func setEndpointReady(t *testing.T, k *kubetest.Cluster, ns, name string, ready bool) {
	t.Helper()
	ctx := context.Background()
	es, err := k.Kube.DiscoveryV1().EndpointSlices(ns).Get(ctx, name+"-1", metav1.GetOptions{})
	require.NoError(t, err)
	for i := range es.Endpoints {
		es.Endpoints[i].Conditions.Ready = ptrTo(ready)
	}
	_, err = k.Kube.DiscoveryV1().EndpointSlices(ns).Update(ctx, es, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// kubeProxyTarget waits for the derived Service of ns/name in cluster k
// and returns the address kube-proxy would send its port to: a ready
// endpoint of the Service's EndpointSlices, with that port's target.
func kubeProxyTarget(t *testing.T, k *kubetest.Cluster, ns, name, port string, timeout time.Duration) string {
	t.Helper()
	ctx := context.Background()
	var target string
	require.Eventually(t, func() bool {
		slices, err := k.Kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + name + "-clusterset"})
		if err != nil {
			return false
		}
		for _, es := range slices.Items {
			for _, p := range es.Ports {
				if p.Name == nil || *p.Name != port || p.Port == nil {
					continue
				}
				for _, ep := range es.Endpoints {
					if len(ep.Addresses) > 0 && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
						target = net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(*p.Port)))
						return true
					}
				}
			}
		}
		return false
	}, timeout, 100*time.Millisecond, "no ready endpoint for port %s of %s/%s's derived Service", port, ns, name)
	return target
}
