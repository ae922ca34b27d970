// Package cli implements the operator verbs of the causeway CLI (clusters,
// exports, imports, status, drain, undrain, clusters remove): it finds a
// federator API (the federator's gRPC address, :7443 by default; never the
// HTTP endpoint) and the credentials to call its Admin service (flags,
// environment or a `causeway dev` state file), calls it with a deadline,
// and renders the answers as aligned tables, JSON or YAML.
//
// Rules:
//   - Every call has a deadline; an unreachable admin API is one error
//     naming the address, never a hang.
//   - JSON and YAML field names are part of the CLI's interface: they come
//     from this package's own types, never from protobuf field names, and
//     lists are empty ([]), never null; an empty table says so on stderr;
//     integers that may exceed 2^53 are JSON strings.
//   - Old names (--admin, CAUSEWAY_ADMIN, state file keys adminAPI/admin)
//     keep working for one release, with a notice.
//   - The federator is authenticated as spiffe://<trust domain>/federator
//     of the CA file's trust domain; there is no insecure mode.
package cli
