package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/kube"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/app/component"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
)

// TestChartRBACSufficesForFederator runs the federator (Kubernetes source
// and sink, TokenReview for Certs.Sign) against a real kube-apiserver as
// the chart's federator ServiceAccount, with a token from the TokenRequest
// API and exactly the RBAC objects the chart renders, and drives the whole
// export/import flow through it: ServiceExport in, export record in etcd,
// conditions on the export, ServiceImport + derived Service + gateway
// EndpointSlice out, and everything removed again on unexport.
// Over 80 lines: one scenario whose steps share the servers it starts.
func TestChartRBACSufficesForFederator(t *testing.T) {
	helmBin(t)
	const ns = "causeway"
	objs := render(t, ns, valuesCases()[0])
	c := kubetest.Start(t, kubetest.Options{Name: "rbac"})
	ctx := context.Background()
	a := newApplier(c)
	createNamespace(t, c, ns)
	createNamespace(t, c, "demo")

	// The chart's ServiceAccounts and the federator's RBAC, for real.
	var applied []string
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			require.NoError(t, a.apply(ctx, o, ns, false))
			applied = append(applied, o.GetKind()+"/"+o.GetName())
		}
	}
	t.Logf("applied %v", applied)

	// The federator's configuration, as the chart renders it.
	cm := find(t, objs, "ConfigMap", "causeway-config")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	cfgPath := filepath.Join(t.TempDir(), "federator.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(data["federator.yaml"]), 0o600))
	cfg, err := component.LoadFederatorConfig(cfgPath)
	require.NoError(t, err)
	deploy := find(t, objs, "Deployment", "causeway-federator")
	saName, _, _ := unstructured.NestedString(deploy.Object, "spec", "template", "spec", "serviceAccountName")

	// Clients that authenticate as the federator's pod would: its
	// ServiceAccount's token, for the apiserver's audience.
	tr, err := c.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, saName, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	require.NoError(t, err)
	rc := rest.CopyConfig(c.RESTConfig)
	rc.BearerToken, rc.BearerTokenFile, rc.Impersonate = tr.Status.Token, "", rest.ImpersonationConfig{}
	kc, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	mc, err := mcsclient.NewForConfig(rc)
	require.NoError(t, err)
	// The token is the federator's and grants no more than the chart says.
	_, err = kc.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	require.True(t, apierrors.IsForbidden(err), "the federator's ServiceAccount may list Secrets: %v", err)

	// The gateway's endpoints, as its Deployment would have them.
	gwNS, gwName := splitKey(t, cfg.Exports.Kubernetes.GatewayService)
	createSlice(t, c, gwNS, gwName, gwName+"-abcde", "10.0.0.9", "quic", 4433, corev1.ProtocolUDP)

	_, cli := etcdtest.Start(t)
	m := startFederator(t, cfg, kc, mc, cli)

	// Certs.Sign's TokenReview with the federator's token: the gateway's
	// projected token (audience from the chart) maps to "gateway".
	auth, err := federator.NewTokenReviewAuthenticator(federator.TokenReviewConfig{Client: kc,
		Accounts: cfg.Signing.TokenReview.Accounts, Audiences: cfg.Signing.TokenReview.Audiences})
	require.NoError(t, err)
	gwTok, err := c.Kube.CoreV1().ServiceAccounts(gwNS).CreateToken(ctx, gwName, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{Audiences: cfg.Signing.TokenReview.Audiences, ExpirationSeconds: new(int64(600))}}, metav1.CreateOptions{})
	require.NoError(t, err)
	p, err := auth.Authenticate(ctx, gwTok.Status.Token)
	require.NoError(t, err)
	require.Equal(t, "gateway", p.Component)

	// demo/echo is exported (created as the admin, as a user would).
	_, err = c.Kube.CoreV1().Services("demo").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "demo"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}, Selector: map[string]string{"app": "echo"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	createSlice(t, c, "demo", "echo", "echo-1", "10.1.0.5", "http", 80, corev1.ProtocolTCP)
	_, err = c.MCS.MulticlusterV1beta1().ServiceExports("demo").Create(ctx,
		&mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "demo"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	waitFor(t, "the export record in etcd", func() error {
		resp, err := cli.Get(ctx, store.ExportKeyOf(cfg.Cluster, "demo", "echo"))
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("no %s", store.ExportKeyOf(cfg.Cluster, "demo", "echo"))
		}
		return nil
	})
	waitFor(t, "the ServiceExport's conditions", func() error {
		se, err := c.MCS.MulticlusterV1beta1().ServiceExports("demo").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, want := range []string{"Valid", "Ready"} {
			if !meta.IsStatusConditionTrue(se.Status.Conditions, want) {
				return fmt.Errorf("condition %s not True: %+v", want, se.Status.Conditions)
			}
		}
		return nil
	})
	derived := kube.DerivedName("echo")
	waitFor(t, "ServiceImport, derived Service and gateway EndpointSlice", func() error {
		si, err := c.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(si.Status.Conditions, "Ready") || len(si.Spec.IPs) != 1 {
			return fmt.Errorf("ServiceImport not ready: %+v %+v", si.Spec, si.Status)
		}
		svc, err := c.Kube.CoreV1().Services("demo").Get(ctx, derived, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Spec.ClusterIP != si.Spec.IPs[0] {
			return fmt.Errorf("ServiceImport ips %v, derived ClusterIP %s", si.Spec.IPs, svc.Spec.ClusterIP)
		}
		es, err := c.Kube.DiscoveryV1().EndpointSlices("demo").Get(ctx, derived+"-gateway", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(es.Endpoints) != 1 || es.Endpoints[0].Addresses[0] != "10.0.0.9" {
			return fmt.Errorf("gateway slice endpoints %+v", es.Endpoints)
		}
		return nil
	})

	// Unexport: the import and its objects are deleted (delete verbs).
	require.NoError(t, c.MCS.MulticlusterV1beta1().ServiceExports("demo").Delete(ctx, "echo", metav1.DeleteOptions{}))
	waitFor(t, "the import's objects to be deleted", func() error {
		if _, err := c.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, "echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("ServiceImport still there: %v", err)
		}
		if _, err := c.Kube.CoreV1().Services("demo").Get(ctx, derived, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("derived Service still there: %v", err)
		}
		if _, err := c.Kube.DiscoveryV1().EndpointSlices("demo").Get(ctx, derived+"-gateway", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("gateway EndpointSlice still there: %v", err)
		}
		return nil
	})
	m.stop()
	require.Empty(t, m.forbidden.lines(), "the federator was refused something along the way")
}

// forbiddenLog records log lines that mention an authorization refusal.
type forbiddenLog struct {
	mu  sync.Mutex
	got []string
}

func (f *forbiddenLog) Write(p []byte) (int, error) {
	if strings.Contains(strings.ToLower(string(p)), "forbidden") {
		f.mu.Lock()
		f.got = append(f.got, string(p))
		f.mu.Unlock()
	}
	return len(p), nil
}

func (f *forbiddenLog) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// runningFederator is a federator started by startFederator.
type runningFederator struct {
	stop      func() // idempotent; also run by t.Cleanup
	forbidden *forbiddenLog
}

// startFederator runs a federator with the Kubernetes source and sink of
// cfg over the given clients, as RunFederator wires them.
func startFederator(t *testing.T, cfg *component.FederatorConfig, kc kubernetes.Interface, mc mcsclient.Interface, cli *clientv3.Client) *runningFederator {
	t.Helper()
	k := cfg.Exports.Kubernetes
	forbidden := &forbiddenLog{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(forbidden, testWriter{t}), nil))
	sink, err := kube.NewSink(kube.SinkConfig{Cluster: cfg.Cluster, Kube: kc, MCS: mc, GatewayService: k.GatewayService, Logger: log})
	require.NoError(t, err)
	lo, hi := parseRange(t, k.EgressPorts)
	fed, err := federator.New(federator.Config{
		Cluster: cfg.Cluster, Region: cfg.Region, Zone: cfg.Zone, TrustDomain: cfg.TrustDomain(),
		VIPRanges: []netip.Prefix{netip.MustParsePrefix("10.255.0.0/24")}, Authorities: [][]byte{{1}},
		LeaderTTL: 2 * time.Second, Instance: cfg.Cluster + "-0", Sink: sink,
		EgressPorts: federator.PortRange{Min: lo, Max: hi}, Logger: log,
	}, store.New(cli, store.Options{Logger: log}))
	require.NoError(t, err)
	src, err := kube.NewSource(kube.SourceConfig{Cluster: cfg.Cluster, DefaultZone: k.DefaultZone, Kube: kc, MCS: mc, Feed: fed.Feed(), Logger: log})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fed.Run(ctx, src) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatalf("federator did not stop")
		}
	}
	t.Cleanup(stop)
	return &runningFederator{stop: stop, forbidden: forbidden}
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
