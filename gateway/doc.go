// Package gateway owns a cluster's east-west data plane: egress listeners
// on imported services' addresses that carry each TCP flow as a stream of
// a long-lived mutual-TLS QUIC connection to a peer gateway, and the
// ingress side that accepts those streams and dials local backends.
//
// Rules:
//   - One QUIC connection per gateway instance of each peer cluster this
//     gateway sends flows to, shared by the flows to that instance, kept
//     open and re-dialed with back-off. A peerSet owns the active peer
//     clusters and their instances (peerset.go); an instance's state is in
//     peer_instance.go, its connect/hold/re-dial loop in peer_conn.go, its
//     re-verification in reverify.go, and choosing one for a new stream in
//     peer_pick.go.
//   - An ejected cluster is a last resort, never a reason to fail a flow
//     that it could still serve (outlier.go).
//   - A peer is accepted only with a certificate of a member cluster's
//     gateway identity; a stream's source cluster must match that identity.
//   - A bad stream gets a response code or a reset on that stream only.
//   - A stream refused before any byte was delivered is retried on the
//     next candidate cluster; the client never sees the refusal.
//   - The gateway serves from the last catalog when the federator is gone.
//   - No client address and no peer cluster gets more than its share
//     (limits.go): flows per source at egress; connections, streams and
//     half-read header memory per peer trust domain at ingress. Refusals
//     are immediate (RST, reset 0x4, close 0x2), counted and logged
//     rate-limited.
//   - A peer never learns why a local backend dial failed: only the code
//     DIAL_FAILED; the detail is logged here (dialerr.go).
package gateway
