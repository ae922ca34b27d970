package kube

import (
	"crypto/sha256"
	"encoding/hex"

	"google.golang.org/protobuf/proto"

	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// Labels and annotations Causeway reads or writes.
const (
	// LabelManagedBy marks every object the federator creates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "causeway"
	// LabelImportingCluster names the cluster an object was created in
	// by its federator.
	LabelImportingCluster = "causeway.dev/importing-cluster"
	// LabelServiceName and LabelSourceCluster are the mcs-api labels.
	LabelServiceName   = mcsv1beta1.LabelServiceName
	LabelSourceCluster = mcsv1beta1.LabelSourceCluster
	// AnnotationRouting on a ServiceExport selects the routing policy:
	// "gateway" (default) or "local-direct".
	AnnotationRouting = "causeway.dev/routing"
	// FieldManager is the server-side apply field manager of every write.
	FieldManager = "causeway"
	// DerivedSuffix is appended to a service's name to name its derived
	// Service: echo → echo-clusterset.
	DerivedSuffix = "-clusterset"
	// labelSliceService is the EndpointSlice → Service label of core/v1.
	labelSliceService = "kubernetes.io/service-name"
)

// DerivedName is the name of the derived Service of an imported service:
// name + "-clusterset", or, when that is longer than a DNS label, the
// first 40 characters of name, a dash and 12 hex digits of its SHA-256,
// then the suffix. Clients that cannot resolve clusterset.local use
// <DerivedName>.<namespace>.svc.cluster.local.
func DerivedName(name string) string {
	if len(name)+len(DerivedSuffix) <= 63 {
		return name + DerivedSuffix
	}
	sum := sha256.Sum256([]byte(name))
	return name[:40] + "-" + hex.EncodeToString(sum[:])[:12] + DerivedSuffix
}

// labels returns the labels of an object created for the import of name.
func labels(cluster, name string) map[string]string {
	return map[string]string{
		LabelManagedBy:        ManagedByValue,
		LabelServiceName:      name,
		LabelImportingCluster: cluster,
	}
}

func protoEqual(a, b proto.Message) bool { return proto.Equal(a, b) }
