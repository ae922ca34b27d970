// Package embedetcd runs a single-member etcd server inside the process,
// for `causeway dev` and for tests. It owns the server's lifetime and data
// directory layout; production federations use an external etcd cluster.
package embedetcd
