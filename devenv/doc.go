// Package devenv owns `causeway dev`: a whole clusterset on one machine —
// an embedded etcd, a CA per cluster, and per cluster a federator (static
// source), a gateway, a DNS shim and demo backends, each on the cluster's
// own loopback address — plus the state file that tells users and tests
// where everything listens.
//
// Rules:
//   - Every component is the real one and talks to the others as in a
//     deployment: each federator writes etcd as its own cluster's etcd user
//     (TLS and auth on); gateways and shims learn the federation only
//     through Catalog.Watch; a gateway's record is held by its own
//     Catalog.AnnounceGateway call; peers trust each other only through
//     signed bundles, pinned as an operator would.
//   - Not yet as in a deployment: components get their leaves from the
//     cluster CA in process, not through Certs.Sign, and there is no CA
//     directory on disk for a watcher to follow.
//   - The state file is written only once every cluster can serve every
//     demo service; Run returns only after everything it started stopped.
package devenv
