// Package authzfile owns the static authorization file of a gateway (the
// `authorization:` key of its configuration): it loads the file's
// identities, AuthorizationPolicies and RateLimitPolicies (gateway/authz's
// static format, docs/authorization.md), re-reads it when its content
// changes, and serves it to the gateway both as the egress
// authz.SourceResolver (identities) and as the ingress gateway.Authorizer
// (policies and rate limits, through an authz.Table).
//
// Rules:
//   - The first load must succeed: New fails on a file that cannot be read
//     or does not parse and validate, naming the file (and the line, where
//     the YAML decoder knows it).
//   - A file is all or nothing: a later version that cannot be read or
//     has any invalid entry never replaces the last good one (identities,
//     policies and rate limits alike); it is logged at ERROR and counted
//     once per distinct bad version, and causeway_authzfile_rejected stays
//     1 until a good version loads.
//   - An unchanged file (same content hash) changes nothing; a changed one
//     keeps the token buckets of rate limits it did not change
//     (authz.Table).
//   - Reference checks (does the service or port exist) are not made:
//     a policy is enforced from the first flow of its service.
package authzfile
