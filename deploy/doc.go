// Package deploy owns the deployment artifacts under deploy/ and the tests
// that hold them to the code: the Helm chart (deploy/helm/causeway), its
// mcs-api CRDs and the Grafana dashboard (deploy/grafana).
//
// Rules:
//   - The chart's crds/ are generated (`make generate`, hack/gencrds) from
//     the mcs-api module go.mod pins; TestChartCRDsMatchMCSAPI fails when
//     they drift.
//   - Every object the chart renders is accepted by a real kube-apiserver
//     (server-side apply, dry-run), with default and customised values.
//   - The federator's and the gateway's ClusterRoles are exactly what they
//     need: the RBAC tests run each as the chart's ServiceAccount.
//   - The dashboard names only metrics the components register.
package deploy
