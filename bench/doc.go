// Package bench holds Causeway's reproducible benchmarks. Each compares
// Causeway with a peer measured in the same run (a direct connection, an
// HAProxy mTLS pair, CoreDNS) and reports ratios, because absolute figures
// on a shared machine move from run to run. `make bench` runs them and
// appends the results to bench/RESULTS.md.
package bench
