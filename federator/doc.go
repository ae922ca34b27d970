// Package federator owns a cluster's control plane: it publishes the
// cluster's exports to the federation etcd, turns the federation's exports
// into this cluster's imports (with clusterset IPs), and serves the
// federation catalog to the cluster's gateways and DNS shims over gRPC.
//
// Rules:
//   - Only the federator writes etcd; it writes only its own cluster's keys.
//   - Export records are persistent: a federator restart or an etcd blip
//     removes nothing; only an export leaving the source deletes its record.
//   - The import side is level-based: every pass recomputes the desired
//     imports from the whole mirrored view, so it is idempotent.
//   - The mirror re-lists after a compacted watch and never serves a
//     partial view. A value that does not decode never deletes a key: the
//     last good value stays.
//   - This cluster's exports in the served catalog come from its export
//     source, never from etcd (every replica runs the source).
//   - The leader puts its own records (cluster, bundle, exports, imports)
//     back when something else deletes, corrupts or changes them; an
//     announcement puts its gateway record back while it lasts, and a
//     gateway record belongs to the leaf key that announced it.
package federator
