package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository root (tests run in deploy/).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	return root
}

// chartPath is the chart's directory.
func chartPath(t testing.TB) string { return filepath.Join(repoRoot(t), ChartDir) }

// helmBin finds helm on PATH, or skips t: `make test` installs the pinned
// helm first (and puts its tools directory on PATH), so CI always runs these.
func helmBin(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("helm")
	if err != nil {
		t.Skip("helm is not installed: run `make tools` (or `make test`, which installs it) to run the chart tests")
	}
	return p
}

// helm runs helm with args and returns its stdout, failing t on error.
func helm(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := helmRun(t, args...)
	require.NoError(t, err)
	return out
}

func helmRun(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helmBin(t), args...)
	// helm must not read or write the user's helm configuration.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

// valuesCase is one set of values the chart is rendered with.
type valuesCase struct {
	name  string
	files []string // relative to the chart
	set   []string
}

// valuesCases: the least an install needs, every option on, and the
// gateway Service's remaining type.
func valuesCases() []valuesCase {
	return []valuesCase{
		{name: "default", files: []string{"ci/default-values.yaml"}},
		{name: "custom", files: []string{"ci/custom-values.yaml"}},
		{name: "clusterip", files: []string{"ci/default-values.yaml"}, set: []string{"gateway.service.type=ClusterIP", "metrics.service.enabled=false", "federator.replicas=1"}},
	}
}

// render runs helm template for release "causeway" in namespace ns and
// returns every object it renders (CRDs included).
func render(t testing.TB, ns string, vc valuesCase, extraValues ...string) []*unstructured.Unstructured {
	t.Helper()
	chart := chartPath(t)
	// A helm built by `go install` assumes Kubernetes v1.20 offline; render
	// for the apiserver the tests run.
	args := []string{"template", "causeway", chart, "--namespace", ns, "--include-crds", "--kube-version", kubetest.KubeVersion}
	for _, f := range vc.files {
		args = append(args, "-f", filepath.Join(chart, f))
	}
	for _, f := range extraValues {
		args = append(args, "-f", f)
	}
	for _, s := range vc.set {
		args = append(args, "--set", s)
	}
	return decodeObjects(t, helm(t, args...))
}

// decodeObjects splits a multi-document YAML stream into objects. Each
// document is decoded strictly: a duplicated key fails t.
func decodeObjects(t testing.TB, b []byte) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		obj := map[string]any{}
		require.NoError(t, yaml.UnmarshalStrict(doc, &obj), "document:\n%s", doc)
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
}

// find returns the rendered object of kind and name, failing t if absent.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("the chart renders no %s %s", kind, name)
	return nil
}

// applier applies unstructured objects to a cluster with server-side apply.
type applier struct {
	c      *kubetest.Cluster
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(c *kubetest.Cluster) *applier {
	return &applier{c: c, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Kube.Discovery()))}
}

// apply server-side applies obj (into ns when namespaced and unset);
// dryRun asks the apiserver to validate and admit without persisting.
func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured, ns string, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset() // a CRD may have been installed since discovery was cached
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return fmt.Errorf("map %s: %w", gvk, err)
	}
	opts := metav1.ApplyOptions{FieldManager: "causeway-chart-test", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	r := a.c.Dynamic.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj = obj.DeepCopy()
			obj.SetNamespace(ns)
		}
		_, err = r.Namespace(obj.GetNamespace()).Apply(ctx, obj.GetName(), obj, opts)
	} else {
		_, err = r.Apply(ctx, obj.GetName(), obj, opts)
	}
	if err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs applies CRDs for real and waits until each is Established.
func (a *applier) installCRDs(t testing.TB, crds []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	for _, crd := range crds {
		require.NoError(t, a.apply(ctx, crd, "", false))
	}
	for _, crd := range crds {
		waitFor(t, "CRD "+crd.GetName()+" Established", func() error {
			got, err := a.c.Dynamic.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
			return errors.New("not Established")
		})
	}
	a.mapper.Reset()
}

// createNamespace creates ns unless it exists.
func createNamespace(t testing.TB, c *kubetest.Cluster, ns string) {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	_, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(context.Background(), obj, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// waitFor polls cond until it returns nil, failing t after a deadline.
func waitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		<-tick.C
	}
}

// serviceMonitorCRD is a stand-in for the Prometheus Operator's CRD (the
// chart's ServiceMonitor needs its kind to exist); its schema accepts any
// spec, so only the object's envelope is checked.
func serviceMonitorCRD() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "servicemonitors.monitoring.coreos.com"},
		"spec": map[string]any{
			"group": "monitoring.coreos.com", "scope": "Namespaced",
			"names": map[string]any{"kind": "ServiceMonitor", "listKind": "ServiceMonitorList", "plural": "servicemonitors", "singular": "servicemonitor"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
}

// splitKey splits "namespace/name".
func splitKey(t testing.TB, key string) (string, string) {
	t.Helper()
	ns, name, ok := strings.Cut(key, "/")
	require.True(t, ok, "%q is not namespace/name", key)
	return ns, name
}

// parseRange parses "min-max".
func parseRange(t testing.TB, s string) (uint16, uint16) {
	t.Helper()
	var lo, hi uint16
	_, err := fmt.Sscanf(s, "%d-%d", &lo, &hi)
	require.NoError(t, err, "port range %q", s)
	return lo, hi
}

// createSlice creates an EndpointSlice of service svc with one ready
// endpoint addr at port.
func createSlice(t testing.TB, c *kubetest.Cluster, ns, svc, name, addr, portName string, port int32, proto corev1.Protocol) {
	t.Helper()
	ready := true
	_, err := c.Kube.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}
