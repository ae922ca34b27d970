// Package multicluster holds Causeway's end-to-end tests: they build the
// causeway binary and drive it as a user would (state file, DNS over UDP
// and TCP, HTTP through clusterset VIPs, signals), asserting what users see.
package multicluster
