// Package certs owns Causeway's trust system: SPIFFE identities, the
// per-cluster certificate authorities that issue them, the trust bundles that
// anchor them, and the mutual-TLS configurations that enforce them.
//
// Invariants:
//
//   - Each cluster is its own SPIFFE trust domain, named
//     "<cluster>.<clusterset-domain>" (for example "east.clusterset.local"),
//     with its own self-signed ECDSA P-256 CA.
//   - A workload certificate (leaf) carries exactly one URI SAN, its SPIFFE ID
//     "spiffe://<trust-domain>/<component>", and is never itself a CA.
//   - A peer is accepted only if its SPIFFE ID parses strictly, its trust
//     domain has a bundle in the configured BundleSource, and its chain
//     verifies against that trust domain's bundle alone, never another's,
//     at the current time.
//   - Every connection is TLS 1.3 with mutual authentication; there is no
//     plaintext or unauthenticated fallback anywhere, and a configured ALPN
//     protocol list must be matched by the peer.
//   - Functions in this package return errors for bad input; they never panic.
package certs
