// Package embedetcd runs etcd inside the process: a single-member server
// for `causeway dev` and for tests (Start, StartForTest), and n-member
// clusters whose members tests can stop and restart (StartClusterForTest).
// It owns the servers' lifetimes, data directory layout and ports, and
// the client TLS of a single member (NewTLSFiles, Config.TLS: the dev CA's
// key is never written); production federations use an external etcd
// cluster. Package etcdtest starts a member with TLS and auth on for tests.
//
// Rules:
//   - A port chosen here (0 in the config) is reserved from the moment it
//     is chosen until etcd has bound it (see portReservation), so parallel
//     tests and other processes cannot take it in between; a test
//     cluster's ports stay reserved for its lifetime so members restart on
//     the same addresses.
//   - Test cluster clients and peers reach members through bridges owned
//     by the cluster, so stopping a member cuts its connections at once and
//     closing the cluster leaves no connection (or goroutine) behind.
package embedetcd
