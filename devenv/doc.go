// Package devenv owns `causeway dev`: a whole clusterset on one machine —
// an embedded etcd, a CA per cluster, and per cluster a federator (static
// source), a gateway, a DNS shim and demo backends, each on the cluster's
// own loopback address — plus the state file that tells users and tests
// where everything listens.
//
// Rules:
//   - Every component is the real one, wired exactly as in a deployment:
//     gateways and shims learn the federation only through Catalog.Watch,
//     and peers trust each other only through bundles published in etcd.
//   - The state file is written only once every cluster can serve every
//     demo service; Run returns only after everything it started stopped.
package devenv
