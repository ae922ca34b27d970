package kube

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

const gatewayService = "causeway-system/causeway-gateway"

// member is one cluster of the test clusterset: a real apiserver and a
// federator with the Kubernetes source and sink.
type member struct {
	t    *testing.T
	name string
	kube *kubetest.Cluster
	cli  *clientv3.Client
	fed  *federator.Federator
	sink *Sink
	stop func()
}

func (m *member) start() {
	t := m.t
	sink, err := NewSink(SinkConfig{Cluster: m.name, Kube: m.kube.Kube, MCS: m.kube.MCS, GatewayService: gatewayService})
	require.NoError(t, err)
	fed, err := federator.New(federator.Config{
		Cluster: m.name, Region: "r1", Zone: m.name + "-a", TrustDomain: m.name + ".clusterset.local",
		VIPRanges: []netip.Prefix{netip.MustParsePrefix("10.255.0.0/24")}, Authorities: [][]byte{{1}},
		LeaderTTL: 2 * time.Second, Instance: m.name + "-0", Sink: sink,
		EgressPorts: federator.PortRange{Min: 30000, Max: 30999},
	}, store.New(m.cli, store.Options{}))
	require.NoError(t, err)
	src, err := NewSource(SourceConfig{Cluster: m.name, DefaultZone: m.name + "-a", Kube: m.kube.Kube, MCS: m.kube.MCS, Feed: fed.Feed()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fed.Run(ctx, src) }()
	m.fed, m.sink = fed, sink
	m.stop = func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatalf("federator %s did not stop", m.name)
		}
	}
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

// TestKubernetesExportImport runs one clusterset of three real apiservers
// through export, conflict, headless and invalid exports, a federator
// restart and withdrawal; each step starts from the state the one before
// left.
func TestKubernetesExportImport(t *testing.T) {
	members := startClusterset(t)
	east, west, north := members["east"], members["west"], members["north"]
	exportAndConflict(t, east, west, north)
	headlessExport(t, east, north)
	invalidExports(t, east, north)
	restartRewritesNothing(t, east, north)
	withdrawRemovesImports(t, east, west, north)
}

// startClusterset starts etcd and the apiservers and federators of east,
// west and north, each with namespaces demo and causeway-system and the
// local gateway's endpoints.
func startClusterset(t *testing.T) map[string]*member {
	_, cli := etcdtest.Start(t)
	clusters := kubetest.StartN(t, "east", "west", "north")
	ctx := context.Background()
	members := map[string]*member{}
	for _, c := range clusters {
		for _, ns := range []string{"demo", "causeway-system"} {
			_, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
		// The local gateway's endpoints, as its Deployment would have them.
		createSlice(t, c, "causeway-system", "causeway-gateway", "causeway-gateway-1", "10.0.0.9", "", 4443)
		m := &member{t: t, name: c.Name, kube: c, cli: cli}
		m.start()
		t.Cleanup(func() {
			if m.stop != nil {
				m.stop()
			}
		})
		members[c.Name] = m
	}
	return members
}

// exportAndConflict: east's export of demo/echo is imported everywhere;
// west's later export with another port under the same name conflicts.
func exportAndConflict(t *testing.T, east, west, north *member) {
	ctx := context.Background()
	// east exports demo/echo.
	createService(t, east.kube, "echo", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	createSlice(t, east.kube, "demo", "echo", "echo-1", "10.1.0.5", "http", 8080)
	createExport(t, east.kube, "echo")

	for _, m := range []*member{east, west, north} {
		eventually(t, m.name+" imports demo/echo", func() error { return checkImport(m, "echo", []string{"east"}, "http", 80) })
	}
	eventually(t, "east's export conditions", func() error {
		return checkConditions(east.kube, "echo", map[string]string{"Valid": "True/Valid", "Ready": "True/Exported", "Conflict": "False/NoConflicts"})
	})

	// west exports demo/echo later with another port under the same name:
	// the younger export (west) loses; every constituent export says so.
	createService(t, west.kube, "echo", corev1.ServicePort{Name: "http", Port: 8080})
	createSlice(t, west.kube, "demo", "echo", "echo-1", "10.2.0.5", "http", 8080)
	createExport(t, west.kube, "echo")
	for _, m := range []*member{east, west} {
		eventually(t, m.name+"'s Conflict condition", func() error {
			return checkConditions(m.kube, "echo", map[string]string{"Valid": "True/Valid", "Ready": "True/Exported", "Conflict": "True/PortConflict"})
		})
	}
	se, err := west.kube.MCS.MulticlusterV1beta1().ServiceExports("demo").Get(ctx, "echo", metav1.GetOptions{})
	require.NoError(t, err)
	msg := meta.FindStatusCondition(se.Status.Conditions, "Conflict").Message
	for _, want := range []string{`port "http"`, "cluster west", "TCP/8080", "cluster east", "TCP/80", "older export"} {
		require.Contains(t, msg, want)
	}
	eventually(t, "north imports echo from both clusters, east's port", func() error {
		return checkImport(north, "echo", []string{"east", "west"}, "http", 80)
	})
}

func headlessExport(t *testing.T, east, north *member) {
	ctx := context.Background()
	// A headless export: per-cluster EndpointSlices of the exporting
	// cluster's endpoints behind a headless derived Service.
	_, err := east.kube.Kube.CoreV1().Services("demo").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	createSlice(t, east.kube, "demo", "db", "db-1", "10.1.0.7", "pg", 5432)
	createExport(t, east.kube, "db")
	eventually(t, "north imports headless db", func() error {
		si, err := north.kube.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if si.Spec.Type != mcsv1beta1.Headless || len(si.Spec.IPs) != 0 {
			return fmt.Errorf("spec %+v", si.Spec)
		}
		svc, err := north.kube.Kube.CoreV1().Services("demo").Get(ctx, DerivedName("db"), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			return fmt.Errorf("derived Service of a headless import has ClusterIP %q", svc.Spec.ClusterIP)
		}
		es, err := north.kube.Kube.DiscoveryV1().EndpointSlices("demo").Get(ctx, DerivedName("db")+"-east", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if es.Labels[LabelSourceCluster] != "east" || len(es.Endpoints) != 1 || es.Endpoints[0].Addresses[0] != "10.1.0.7" || *es.Ports[0].Port != 5432 {
			return fmt.Errorf("slice %+v", es)
		}
		return nil
	})
}

func invalidExports(t *testing.T, east, north *member) {
	ctx := context.Background()
	// Invalid exports.
	createExport(t, east.kube, "ghost")
	eventually(t, "NoService", func() error {
		return checkConditions(east.kube, "ghost", map[string]string{"Valid": "False/NoService", "Ready": "False/Failed"})
	})
	_, err := east.kube.Kube.CoreV1().Services("demo").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "demo"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	createExport(t, east.kube, "ext")
	eventually(t, "InvalidServiceType", func() error {
		return checkConditions(east.kube, "ext", map[string]string{"Valid": "False/InvalidServiceType", "Ready": "False/Failed"})
	})
	for _, name := range []string{"ghost", "ext"} {
		_, err := north.kube.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, name, metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "an invalid export was imported: %v", err)
	}
}

func restartRewritesNothing(t *testing.T, east, north *member) {
	ctx := context.Background()
	// A federator restart rewrites nothing: same resourceVersions.
	before := resourceVersions(t, north.kube)
	beforeExport := resourceVersions(t, east.kube)
	north.stop()
	north.stop = nil
	// Objects a crashed federator left behind (their import is gone) are
	// garbage-collected by label on start.
	orphanLabels := labels("north", "orphan")
	_, err := north.kube.Kube.CoreV1().Services("demo").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: DerivedName("orphan"), Namespace: "demo", Labels: orphanLabels},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = north.kube.MCS.MulticlusterV1beta1().ServiceImports("demo").Create(ctx, &mcsv1beta1.ServiceImport{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "demo", Labels: orphanLabels},
		Spec:       mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, Ports: []mcsv1beta1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	north.start()
	eventually(t, "north's new federator to lead and settle", func() error {
		if !north.fed.IsLeader() {
			return fmt.Errorf("not leader")
		}
		if !north.sink.Settled() {
			return fmt.Errorf("sink not settled")
		}
		return nil
	})
	require.Equal(t, int64(2), north.sink.Writes(), "the restarted sink wrote more than the two orphan deletions")
	_, err = north.kube.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, "orphan", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "orphan ServiceImport survived: %v", err)
	_, err = north.kube.Kube.CoreV1().Services("demo").Get(ctx, DerivedName("orphan"), metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "orphan derived Service survived: %v", err)
	require.Equal(t, before, resourceVersions(t, north.kube), "a federator restart rewrote objects")
	require.Equal(t, beforeExport, resourceVersions(t, east.kube))
}

func withdrawRemovesImports(t *testing.T, east, west, north *member) {
	ctx := context.Background()
	// Withdrawing every export removes the imports everywhere.
	for _, m := range []*member{east, west} {
		require.NoError(t, m.kube.MCS.MulticlusterV1beta1().ServiceExports("demo").Delete(ctx, "echo", metav1.DeleteOptions{}))
	}
	for _, m := range []*member{east, west, north} {
		eventually(t, m.name+" removes the import of echo", func() error {
			if _, err := m.kube.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, "echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("ServiceImport still there: %v", err)
			}
			if _, err := m.kube.Kube.CoreV1().Services("demo").Get(ctx, DerivedName("echo"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("derived Service still there: %v", err)
			}
			slices, err := m.kube.Kube.DiscoveryV1().EndpointSlices("demo").List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedByValue + "," + LabelServiceName + "=echo"})
			if err != nil || len(slices.Items) != 0 {
				return fmt.Errorf("EndpointSlices left: %v", err)
			}
			return nil
		})
	}
}

func createService(t *testing.T, c *kubetest.Cluster, name string, ports ...corev1.ServicePort) {
	t.Helper()
	_, err := c.Kube.CoreV1().Services("demo").Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"},
		Spec:       corev1.ServiceSpec{Ports: ports, Selector: map[string]string{"app": name}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func createSlice(t *testing.T, c *kubetest.Cluster, ns, svc, name, addr, portName string, port int32) {
	t.Helper()
	_, err := c.Kube.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{labelSliceService: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func createExport(t *testing.T, c *kubetest.Cluster, name string) {
	t.Helper()
	_, err := c.MCS.MulticlusterV1beta1().ServiceExports("demo").Create(context.Background(),
		&mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// checkImport checks the ServiceImport, derived Service and gateway
// EndpointSlice of demo/name in m's cluster.
func checkImport(m *member, name string, clusters []string, portName string, port int32) error {
	ctx := context.Background()
	si, err := m.kube.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var got []string
	for _, c := range si.Status.Clusters {
		got = append(got, c.Cluster)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(clusters, ",") {
		return fmt.Errorf("status.clusters %v, want %v", got, clusters)
	}
	if si.Spec.Type != mcsv1beta1.ClusterSetIP || len(si.Spec.Ports) != 1 || si.Spec.Ports[0].Name != portName || si.Spec.Ports[0].Port != port {
		return fmt.Errorf("spec %+v", si.Spec)
	}
	if c := meta.FindStatusCondition(si.Status.Conditions, "Ready"); c == nil || c.Status != metav1.ConditionTrue {
		return fmt.Errorf("Ready condition %+v", c)
	}
	if si.Labels[LabelManagedBy] != ManagedByValue || si.Labels[LabelServiceName] != name {
		return fmt.Errorf("labels %v", si.Labels)
	}
	svc, err := m.kube.Kube.CoreV1().Services("demo").Get(ctx, DerivedName(name), metav1.GetOptions{})
	if err != nil {
		return err
	}
	if len(si.Spec.IPs) != 1 || si.Spec.IPs[0] != svc.Spec.ClusterIP {
		return fmt.Errorf("ServiceImport ips %v, derived ClusterIP %s", si.Spec.IPs, svc.Spec.ClusterIP)
	}
	imp, ok := m.fed.Feed().View().Import(m.name, serviceKey("demo", name))
	if !ok || len(imp.GetIps()) != 1 || imp.GetIps()[0] != svc.Spec.ClusterIP {
		return fmt.Errorf("import record %v does not carry the derived ClusterIP %s", imp, svc.Spec.ClusterIP)
	}
	egress := svc.Spec.Ports[0].TargetPort.IntValue()
	if egress < 30000 || egress > 30999 {
		return fmt.Errorf("derived Service targets port %d, not an egress port", egress)
	}
	es, err := m.kube.Kube.DiscoveryV1().EndpointSlices("demo").Get(ctx, DerivedName(name)+"-gateway", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if es.Labels[labelSliceService] != DerivedName(name) || len(es.Endpoints) != 1 || es.Endpoints[0].Addresses[0] != "10.0.0.9" ||
		len(es.Ports) != 1 || int(*es.Ports[0].Port) != egress {
		return fmt.Errorf("gateway slice %+v", es)
	}
	return nil
}

func checkConditions(c *kubetest.Cluster, name string, want map[string]string) error {
	se, err := c.MCS.MulticlusterV1beta1().ServiceExports("demo").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for typ, w := range want {
		cond := meta.FindStatusCondition(se.Status.Conditions, typ)
		if cond == nil {
			return fmt.Errorf("no %s condition", typ)
		}
		if got := string(cond.Status) + "/" + cond.Reason; got != w {
			return fmt.Errorf("%s = %s (%s), want %s", typ, got, cond.Message, w)
		}
		if cond.ObservedGeneration != se.Generation {
			return fmt.Errorf("%s observedGeneration %d, generation %d", typ, cond.ObservedGeneration, se.Generation)
		}
	}
	return nil
}

// resourceVersions lists every Causeway-relevant object of demo.
func resourceVersions(t *testing.T, c *kubetest.Cluster) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	sis, err := c.MCS.MulticlusterV1beta1().ServiceImports("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, o := range sis.Items {
		out["si/"+o.Name] = o.ResourceVersion
	}
	ses, err := c.MCS.MulticlusterV1beta1().ServiceExports("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, o := range ses.Items {
		out["se/"+o.Name] = o.ResourceVersion
	}
	svcs, err := c.Kube.CoreV1().Services("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, o := range svcs.Items {
		out["svc/"+o.Name] = o.ResourceVersion
	}
	slices, err := c.Kube.DiscoveryV1().EndpointSlices("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, o := range slices.Items {
		out["slice/"+o.Name] = o.ResourceVersion
	}
	return out
}

func serviceKey(ns, name string) catalog.ServiceKey {
	return catalog.ServiceKey{Namespace: ns, Name: name}
}
