// Package catalog owns the read side of the federation used by gateways
// and DNS shims: an immutable View of clusters, gateways, exports, imports,
// drains and trust bundles, and the Client that keeps it current from a
// federator's Catalog.Watch stream.
//
// Rules:
//   - A Client is not ready until its first full snapshot has arrived.
//   - Losing the federator never empties the view: the last good view is
//     kept and marked stale (StaleSince) until a new snapshot replaces it.
//   - A snapshot replaces the whole view, so deletes missed while
//     disconnected converge on reconnect.
//   - An entry of an unknown kind or schema version is not a deletion: the
//     key keeps its last good value (counted and logged).
//   - Views are immutable; readers never lock.
package catalog
