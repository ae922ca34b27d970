// Package l7route owns Causeway's L7 routing model: the HTTP and gRPC routes
// attached to an imported service's ports, how a request selects a rule and a
// weighted backend, the retry policy and retry budget of a request, and the
// validation that turns bad routes into Gateway API status conditions.
//
// It is pure logic: no sockets, no goroutines, no metrics (callers count), no
// Kubernetes clients. Routes come from Gateway API objects (FromHTTPRoute,
// FromGRPCRoute) or from the static YAML format (ParseStatic); both produce
// the same Route values and run the same validation.
//
// Rules the package keeps:
//   - A Table serves the last good version of every route: an update whose
//     version of a route is invalid keeps the previous valid version of that
//     route (if any) and reports the errors; a route missing from an update
//     is removed.
//   - A Snapshot is immutable; Table.Snapshot is safe to call from any
//     goroutine while Update runs, and Select on a Snapshot never locks.
//   - Matching precedence is Gateway API's (exact path, longest prefix,
//     method, most headers, most query params; then oldest route, then
//     namespace/name, then rule and match order). RegularExpression paths,
//     whose precedence the API leaves open, rank after Exact and before
//     PathPrefix.
//   - A service with no route attached is routed as a whole (every cluster
//     exporting it) under the default retry policy; a service with routes
//     answers 404 (ErrNoRoute) for a request no rule matches.
//   - Randomness and time are injected (Rand, BudgetConfig.Now) so tests are
//     deterministic.
package l7route
