// Package routefile owns the static routes file of a gateway (the `routes:`
// key of its configuration, `causeway dev --routes`): it loads the file's
// HTTPRoutes and GRPCRoutes (gateway/l7route's static format,
// docs/traffic.md), re-reads it when its content changes, and serves the
// current routes to the gateway as a gateway.RouteSource.
//
// Rules:
//   - The first load must succeed: New fails on a file that cannot be read
//     or does not parse and validate, naming the file (and the line, where
//     the YAML decoder knows it).
//   - A later version that cannot be read or does not validate never
//     replaces the last good routes, not even with an empty list: it is
//     logged at ERROR and counted once per distinct bad version, and
//     causeway_routefile_rejected stays 1 until a good version loads.
//   - Changed is closed only when a new good version is published; an
//     unchanged file (same content hash) publishes nothing.
//   - Reference checks (services, ports, clusters) are not done here: the
//     gateway validates the routes against its catalog (l7route.Table).
package routefile
