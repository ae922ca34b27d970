package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/causeway-mesh/causeway/internal/app/component"
	"github.com/causeway-mesh/causeway/internal/app/join"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestChartCRDsMatchMCSAPI fails when the chart's crds/ differ from what
// `make generate` writes from the mcs-api module go.mod requires.
func TestChartCRDsMatchMCSAPI(t *testing.T) {
	dir := filepath.Join(repoRoot(t), ChartDir, "crds")
	want := CRDFiles()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	var names []string
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	require.Equal(t, names, have, "crds/ holds other files than the mcs-api CRDs: run `make generate`")
	for name, body := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, string(body), string(got), "%s drifted from sigs.k8s.io/mcs-api: run `make generate`", name)
	}
}

// TestChartLint runs helm lint --strict with every values case.
func TestChartLint(t *testing.T) {
	for _, vc := range valuesCases() {
		t.Run(vc.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartPath(t)}
			for _, f := range vc.files {
				args = append(args, "-f", filepath.Join(chartPath(t), f))
			}
			for _, s := range vc.set {
				args = append(args, "--set", s)
			}
			helm(t, args...)
		})
	}
}

// TestChartRequiresClusterValues: an install without the values `causeway
// join` writes fails at render time, naming what is missing.
func TestChartRequiresClusterValues(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{nil, "cluster is required"},
		{[]string{"cluster=Bad_Name"}, "not a DNS label"},
		{[]string{"cluster=east"}, "etcd.endpoints is required"},
		{[]string{"cluster=east", "etcd.endpoints={http://etcd:2379}"}, "gateway.advertise is required"},
		{[]string{"cluster=east", "etcd.endpoints={http://etcd:2379}", "gateway.advertise={gw:4433}", "gateway.service.type=ExternalName"}, "gateway.service.type"},
		{[]string{"cluster=east", "etcd.endpoints={http://etcd:2379}", "gateway.advertise={gw:4433}", "etcd.username=east"}, "etcd.secretName is required"},
	} {
		args := []string{"template", "causeway", chartPath(t), "--kube-version", kubetest.KubeVersion}
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		_, err := helmRun(t, args...)
		require.ErrorContains(t, err, tc.want, "values %v", tc.set)
	}
}

// TestChartConfigsLoad: the component configurations the chart renders are
// accepted by the components' own strict loaders, and say what the chart
// means (ServiceAccounts allowed to sign, gateway Service, listeners).
func TestChartConfigsLoad(t *testing.T) {
	for _, vc := range valuesCases() {
		t.Run(vc.name, func(t *testing.T) {
			objs := render(t, "causeway", vc)
			cm := find(t, objs, "ConfigMap", "causeway-config")
			data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
			dir := t.TempDir()
			write := func(name string) string {
				p := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(p, []byte(data[name]), 0o600))
				return p
			}
			fed, err := component.LoadFederatorConfig(write("federator.yaml"))
			require.NoError(t, err)
			require.NotNil(t, fed.Exports.Kubernetes)
			require.Equal(t, "causeway/causeway-gateway", fed.Exports.Kubernetes.GatewayService)
			if vc.name == "custom" {
				require.Equal(t, map[string]string{"east": "sha256:3f1c0e6a4b2d8f9e7c5a1b3d5f7e9c1a3b5d7f9e1c3a5b7d9f1e3c5a7b9d1f3e"}, fed.TrustPins)
			} else {
				require.Empty(t, fed.TrustPins)
			}
			find(t, objs, "Service", "causeway-gateway")
			require.Equal(t, map[string]string{"causeway/causeway-gateway": "gateway", "causeway/causeway-dnsshim": "dnsshim"}, fed.Signing.TokenReview.Accounts)
			for sa := range fed.Signing.TokenReview.Accounts {
				find(t, objs, "ServiceAccount", strings.TrimPrefix(sa, "causeway/"))
			}
			gw, err := component.LoadGatewayConfig(write("gateway.yaml"))
			require.NoError(t, err)
			require.Equal(t, fed.Cluster, gw.Cluster)
			require.Equal(t, "/etc/causeway/ca/bundle.crt", gw.CAFile)
			if vc.name == "custom" { // limits reach both files
				require.Equal(t, 512, gw.Limits.MaxFlowsPerSource)
				require.Equal(t, 4096, gw.Limits.MaxStreamsPerPeerCluster)
				require.Equal(t, 256, fed.Limits.WatchStreamsPerIdentity)
			}
			shim, err := component.LoadDNSShimConfig(write("dnsshim.yaml"))
			require.NoError(t, err)
			require.Equal(t, fed.Domain, shim.Domain)
			require.True(t, strings.HasPrefix(shim.Federator, "causeway-federator.causeway.svc:"), shim.Federator)
		})
	}
}

// TestChartAppliesToAPIServer renders the chart with every values case and
// server-side applies each object with dry-run against a real
// kube-apiserver: the CRDs from the chart's crds/ are installed for real
// first (the cluster starts without any), then every object must be
// accepted. The Secret manifests `causeway join` writes, and the chart
// rendered with join's values file, are applied the same way.
func TestChartAppliesToAPIServer(t *testing.T) {
	helmBin(t)
	c := kubetest.Start(t, kubetest.Options{Name: "chart", SkipMCSCRDs: true})
	a := newApplier(c)
	ctx := context.Background()

	// join against a federation etcd: its values file and Secrets.
	srv, _ := etcdtest.Start(t)
	jr, err := join.Run(ctx, join.Options{Cluster: "north", Region: "eu", Zone: "eu-1a", Out: filepath.Join(t.TempDir(), "north"),
		Etcd: join.EtcdOptions{Endpoints: []string{"http://" + srv.Endpoint()}}, Advertise: []string{"gw.north.example:4433"}})
	require.NoError(t, err)

	cases := append(valuesCases(), valuesCase{name: "join"})
	for i, vc := range cases {
		ns := []string{"causeway", "mesh-system", "causeway-min", "causeway"}[i]
		var objs []*unstructured.Unstructured
		if vc.name == "join" {
			objs = render(t, ns, vc, jr.ValuesFile)
		} else {
			objs = render(t, ns, vc)
		}
		var crds, rest []*unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o)
			} else {
				rest = append(rest, o)
			}
		}
		require.Len(t, crds, 2, "the chart ships the ServiceExport and ServiceImport CRDs")
		if i == 0 { // the CRDs are the same in every case
			a.installCRDs(t, append(crds, serviceMonitorCRD()))
		}
		createNamespace(t, c, ns)
		if vc.name == "join" {
			for _, f := range []string{jr.CASecret, jr.EtcdSecret} {
				if f == "" {
					continue
				}
				b, err := os.ReadFile(f)
				require.NoError(t, err)
				rest = append(rest, decodeObjects(t, b)...)
			}
		}
		kinds := map[string]int{}
		for _, o := range rest {
			require.NoError(t, a.apply(ctx, o, ns, true), "values %s", vc.name)
			kinds[o.GetKind()]++
		}
		t.Logf("values %s: %d objects accepted (dry-run) in namespace %s: %v", vc.name, len(rest), ns, kinds)
		for _, k := range []string{"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap"} {
			require.NotZero(t, kinds[k], "values %s render no %s", vc.name, k)
		}
	}

	// The dry-run validates: an invalid object is refused.
	bad := find(t, render(t, "causeway", valuesCases()[1]), "Service", "causeway-gateway").DeepCopy()
	ports, _, _ := unstructured.NestedSlice(bad.Object, "spec", "ports")
	ports[0].(map[string]any)["port"] = int64(70000)
	require.NoError(t, unstructured.SetNestedSlice(bad.Object, ports, "spec", "ports"))
	require.ErrorContains(t, a.apply(ctx, bad, "causeway", true), "spec.ports[0].port")
}
