// Package kubetest runs real kube-apiservers for Go tests: it owns each
// apiserver process, its embedded etcd, its credentials and its kubeconfig,
// from start until the test's cleanup stops them.
//
// Start gives a test a Cluster: a kube-apiserver (k8s.io/kubernetes, built
// by hack/kube-apiserver.sh and cached under the user cache dir) backed by
// its own embedded etcd, with the mcs-api ServiceExport and ServiceImport
// CRDs installed and served, and clients for the core, mcs-api and dynamic
// APIs. StartN starts several concurrently for multi-cluster tests.
//
// Rules:
//   - There is no kubelet, scheduler or controller-manager: objects are
//     stored and validated but nothing reconciles them. Pods never run,
//     EndpointSlices are not generated from Services (tests create them),
//     and a deleted Namespace stays Terminating.
//   - The apiserver validates EndpointSlices: loopback (127.0.0.0/8, ::1)
//     and link-local addresses are rejected, so slices cannot point at a
//     backend on 127.0.0.1. default/kubernetes has no endpoints.
//   - Clusters are skipped under `go test -short`.
//   - Every process Start launches is stopped by t.Cleanup (SIGTERM, then
//     SIGKILL), and on Linux also dies with the test process.
//   - The first use on a machine builds the binary (5-12 minutes); run
//     `make kube-apiserver` beforehand, or raise `go test -timeout`.
package kubetest
