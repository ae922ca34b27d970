// Package cli implements the operator verbs of the causeway CLI (clusters,
// exports, imports, status, drain, undrain, clusters remove): it finds a
// federator API (the federator's gRPC address, :7443 by default; never the
// HTTP endpoint) and the credentials to call its Admin service (flags,
// environment or a `causeway dev` state file), calls it with a deadline,
// and renders the answers as aligned tables, JSON or YAML. EtcdAdmin does
// the clusterset admin's writes (drain, undrain, remove of any cluster;
// etcd migrate, cluster users, auth setup) directly in the federation etcd,
// with the same checks as the Admin API.
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
//   - A write about another cluster than the asked federator's goes to
//     etcd as the clusterset admin (flags or the state file), never through
//     a federator, which refuses it.
//   - The federator is authenticated as spiffe://<trust domain>/federator
//     of the CA file's trust domain; there is no insecure mode.
package cli
