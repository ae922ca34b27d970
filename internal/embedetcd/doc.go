// Package embedetcd runs etcd inside the process: a single-member server
// for `causeway dev` (Start). It owns the server's lifetime, data
// directory layout and ports; production federations use an external etcd
// cluster. Tests start etcd through internal/testenv/etcdtest, which builds
// its members with this package's exports, so no binary links test code.
//
// Rules:
//   - A port chosen here (0 in the config) is reserved from the moment it
//     is chosen until etcd has bound it (see portReservation), so parallel
//     tests and other processes cannot take it in between.
//   - Nothing here imports the testing package.
package embedetcd
