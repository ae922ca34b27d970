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
//     through Catalog.Watch; gateways and shims get their certificates
//     from Certs.Sign on the federator's bootstrap listener with a join
//     token, and follow their cluster's bundle as the federator serves it;
//     a gateway's record is held by its own Catalog.AnnounceGateway call;
//     peers trust each other only through signed bundles, pinned as an
//     operator would.
//   - Every component is built by internal/app/component from the
//     configuration file dev writes for it (the cluster's directory of
//     the data dir also holds its CA directory, exports and join tokens),
//     on listeners dev binds first: the code a deployment runs, with its
//     own HTTP endpoint (federator, gateway, DNS shim).
//   - Readiness is seen from outside, as a user sees it: every /readyz,
//     each DNS shim's answers, each gateway's explanation and a request
//     through every VIP. The state file is written only then; Run returns
//     only after everything it started stopped.
package devenv
