// Package certsctl implements the `causeway certs` operator verbs: init (a
// cluster's CA directory), inspect (a certificate file or a live endpoint's
// chain, and which bundle verifies it), bundles (the trust bundles of the
// federation, from a federator's Catalog) and rotate-ca (the resumable
// three-step CA rotation of certs.RotateCAStep). Its answers render as
// tables, JSON or YAML through internal/cli.
//
// Rules:
//   - Private keys are written 0600 and existing files are never
//     overwritten without Force.
//   - inspect only reads: it completes a handshake to see the peer's chain
//     (presenting a certificate only if given one), sends no application
//     data, and reports verification against the given bundles instead of
//     trusting the endpoint.
//   - bundles authenticates the federator as
//     spiffe://<trust domain of the CA file>/federator, like every other
//     operator verb; there is no insecure mode.
//   - JSON and YAML field names come from this package's types and lists
//     are empty ([]), never null.
package certsctl
