// Package embedetcd runs etcd inside the process: a single-member server
// for `causeway dev` (Start). It owns the server's lifetime, data
// directory layout and ports; production federations use an external etcd
// cluster. It also owns the client TLS of a single member (NewTLSFiles,
// Config.TLS: the dev CA's key is never written). Tests start etcd through
// internal/testenv/etcdtest (plain) and internal/testenv/secureetcd (TLS and
// auth on), which build members with this package's exports, so no binary
// links test code.
//
// Rules:
//   - A port chosen here (0 in the config) is reserved from the moment it
//     is chosen until etcd has bound it (see portReservation), so parallel
//     tests and other processes cannot take it in between.
//   - Nothing here imports the testing package.
package embedetcd
