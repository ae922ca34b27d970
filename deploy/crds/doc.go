// Package crds embeds Causeway's own CustomResourceDefinitions
// (causeway.dev), written by hand next to this file, so tests and
// installers read the very files that ship.
//
// Rules:
//   - Each CRD's schema has exactly the fields of its Go type
//     (gateway/authz: TestCRDSchemaMatchesGoTypes), and a real
//     kube-apiserver accepts it (TestCRDsOnAPIServer).
package crds
