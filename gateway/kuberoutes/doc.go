// Package kuberoutes owns a gateway's Kubernetes view of its L7 routes: it
// reads HTTPRoute and GRPCRoute objects (Gateway API, GAMMA style: parentRefs
// name a Service or a multicluster.x-k8s.io ServiceImport) through shared
// informers into l7route.Route values (Source, a gateway.RouteSource), and
// writes the gateway's verdict on each route back to the route's
// status.parents (StatusWriter).
//
// Rules:
//   - Only routes with at least one mesh parentRef (l7route.IsMeshParent)
//     are read; routes that attach only to Gateways belong to other
//     controllers and are neither served nor written.
//   - Conversion never fails a route out of existence: an object that does
//     not convert is served as its last good conversion (if any) and
//     reported Accepted=False.
//   - Source.Changed fires on a spec, annotation, create or delete event,
//     not on a status-only update, so the gateway's own status writes do
//     not revalidate the routes.
//   - The StatusWriter owns the status.parents entries whose controllerName
//     is ControllerName, one per mesh parentRef, and never touches other
//     controllers' entries. It writes only when the entries differ from
//     what is stored (lastTransitionTime is kept while a condition's status
//     holds), so replicas that reach the same verdict write once between
//     them; a replica that lost an optimistic-concurrency race re-reads and
//     finds nothing left to do.
//   - A status is written only for the generation it was computed from: if
//     the stored route is newer, the write waits for the verdict on the
//     newer generation.
//   - API errors never stop the writer: they are logged and the route is
//     retried with exponential back-off; a route written repeatedly (two
//     replicas that disagree) backs off too.
package kuberoutes
