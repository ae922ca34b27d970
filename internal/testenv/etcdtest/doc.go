// Package etcdtest starts etcd for tests: a single embedded member (Start)
// and n-member clusters whose members a test can stop and restart
// (StartCluster). It is test-only code, kept apart so that no binary links
// the testing package; members are built with internal/lib/embedetcd.
//
// Rules:
//   - Everything started here is stopped by t.Cleanup.
//   - A cluster's ports stay reserved for its lifetime (see
//     embedetcd.PortReservation), so members restart on the same addresses.
//   - Clients and peers reach members through bridges owned by the
//     cluster, so stopping a member cuts its connections at once and
//     closing the cluster leaves no connection (or goroutine) behind.
package etcdtest
