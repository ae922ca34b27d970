// Package cli implements the operator verbs of the causeway CLI (clusters,
// exports, imports, status, drain, undrain, clusters remove): it finds a
// federator's admin API and the credentials to call it (flags, environment
// or a `causeway dev` state file), calls it with a deadline, and renders
// the answers as aligned tables, JSON or YAML.
//
// Rules:
//   - Every call has a deadline; an unreachable admin API is one error
//     naming the address, never a hang.
//   - JSON and YAML field names are part of the CLI's interface: they come
//     from this package's own types, never from protobuf field names, and
//     lists are empty ([]), never null.
//   - The federator is authenticated as spiffe://<trust domain>/federator
//     of the CA file's trust domain; there is no insecure mode.
package cli
