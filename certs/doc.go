// Package certs owns Causeway's trust system: SPIFFE identities, the
// per-cluster certificate authorities that issue them, the trust bundles that
// anchor them, the mutual-TLS configurations that enforce them, and the
// rotation of leaves (Rotator) and of CAs (CASet, RotateCAStep). See
// docs/certificates.md.
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
//   - A published bundle is trusted only for the trust domain of the cluster
//     whose etcd key held it (CheckPublishedBundle).
//   - Every connection is TLS 1.3 with mutual authentication; there is no
//     plaintext or unauthenticated fallback anywhere, and a configured ALPN
//     protocol list must be matched by the peer. The one exception to
//     mutual authentication is BootstrapServerConfig, for Certs.Sign only,
//     whose callers authenticate with a bearer token over server-
//     authenticated TLS.
//   - Leaves are issued only from CSRs that pass CheckCSR: ECDSA P-256,
//     one SPIFFE URI of the signer's own trust domain and nothing else,
//     at most MaxCSRSize bytes. The CSR's subject is never copied.
//   - Certificates reach TLS through a Source read on every handshake; a
//     Rotator renews at two thirds of the lifetime and swaps atomically, so
//     established connections are never touched.
//   - Private keys are written 0600 and existing files are never replaced
//     unless forced.
//   - Functions in this package return errors for bad input; they never panic.
package certs
