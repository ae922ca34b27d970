// Package static owns the static export source: a YAML file listing the
// services a host (or a `causeway dev` cluster) exports, turned into
// export records and reloaded when it changes. docs/static-exports.md
// describes the format.
//
// Rules:
//   - A file that fails to parse or validate never replaces the last good
//     set: the error is reported and the previous exports stay published.
//   - Unknown fields are errors, so typos are not silently ignored.
package static
