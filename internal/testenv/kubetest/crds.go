package kubetest

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/mcs-api/config/crd"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

// crdGVR is the resource CustomResourceDefinitions are served as.
var crdGVR = schema.GroupVersionResource{
	Group:    "apiextensions.k8s.io",
	Version:  "v1",
	Resource: "customresourcedefinitions",
}

// installMCSCRDs creates the mcs-api CRDs and waits until they are
// Established and ServiceExports and ServiceImports can be listed.
func (c *Cluster) installMCSCRDs(ctx context.Context) error {
	var names []string
	for _, doc := range [][]byte{crd.ServiceExportCRD, crd.ServiceImportCRD} {
		obj, err := decodeYAML(doc)
		if err != nil {
			return fmt.Errorf("decode mcs-api CRD: %w", err)
		}
		if _, err := c.Dynamic.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", obj.GetName(), err)
		}
		names = append(names, obj.GetName())
	}
	for _, name := range names {
		err := poll(ctx, func(ctx context.Context) error {
			obj, err := c.Dynamic.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !conditionTrue(obj, "Established") {
				return fmt.Errorf("CRD %s not Established yet", name)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s: %w", name, err)
		}
	}
	err := poll(ctx, func(ctx context.Context) error {
		gv := mcsv1beta1.GroupVersion.String()
		list, err := c.Kube.Discovery().ServerResourcesForGroupVersion(gv)
		if err != nil {
			return err
		}
		for _, want := range []string{mcsv1beta1.ServiceExportPluralName, mcsv1beta1.ServiceImportPluralName} {
			if !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == want }) {
				return fmt.Errorf("%s not in discovery of %s yet", want, gv)
			}
		}
		if _, err := c.MCS.MulticlusterV1beta1().ServiceExports("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return fmt.Errorf("list serviceexports: %w", err)
		}
		if _, err := c.MCS.MulticlusterV1beta1().ServiceImports("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return fmt.Errorf("list serviceimports: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for mcs-api resources to be served: %w", err)
	}
	return nil
}

// decodeYAML turns one YAML document into an Unstructured. Going through
// JSON keeps integers int64, as the dynamic client expects.
func decodeYAML(doc []byte) (*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		return nil, err
	}
	return obj, nil
}

// conditionTrue reports whether obj's status has condition typ with status True.
func conditionTrue(obj *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}
