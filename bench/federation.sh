#!/usr/bin/env bash
# bench/federation.sh — federation benchmarks of issue 4: export→import
# convergence across 3 clusters (target p99 ≤ 500 ms) and the initial sync of
# 10,000 services × 3 clusters (targets ≤ 30 s and ≤ 500 MB peak RSS per
# federator). Runs the Go benchmarks of federator/bench_test.go (a real etcd
# in the test process, each federator a child process), prints a summary and
# appends a dated section to bench/RESULTS.md. Linux only (peak RSS from /proc).
#
# Usage: bench/federation.sh [extra go test flags]   (`make bench` runs it)
# Environment: the benchmarks' knobs, recorded in the section when set:
#   CAUSEWAY_BENCH_SYNC_SERVICES (10000), CAUSEWAY_BENCH_SYNC_DEADLINE (10m),
#   CAUSEWAY_BENCH_CONV_SERVICES (100), CAUSEWAY_BENCH_CONV_ROUNDS (200),
#   CAUSEWAY_BENCH_PROFILE_DIR (unset: no profiles).
# Exits 1 when a benchmark failed (e.g. the sync missed its deadline), after
# recording the failure; a figure over its target is recorded as "missed".
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp)
trap 'rm -f "$out"' EXIT
cmd=(go test -run '^$' -bench 'Federation' -benchtime 1x -timeout 1h "$@" ./federator/)
knobs=$(env | grep '^CAUSEWAY_BENCH_' | sort | tr '\n' ' ' || true)
echo "+ ${knobs}${cmd[*]}" >&2
# The tree as built (go test compiles right away).
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no -- federator catalog 2>/dev/null)" ]; then rev="$rev + uncommitted changes to tracked files of federator/ or catalog/"; fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
"${cmd[@]}" 2>&1 | tee "$out" || status=$?
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Each benchmark line is "Name-P  1  value unit  value unit ...".
summary=$(awk -v n="${CAUSEWAY_BENCH_SYNC_SERVICES:-10000}" -v base="${CAUSEWAY_BENCH_CONV_SERVICES:-100}" '
  function metric(u,   i) { for (i = 3; i < NF; i++) if ($(i+1) == u) return $(i); return "" }
  function verdict(v, max) { return (v != "" && v + 0 <= max) ? "met" : "**missed**" }
  function commas(x) { return x >= 1000 ? sprintf("%d,%03d", x / 1000, x % 1000) : x }
  /^BenchmarkFederationInitialSync10k/ {
    s = metric("sync-s"); r = metric("max-peak-RSS-MB")
    sync = sprintf("| %s | %s | %s | %s / %s / %s | %s | %s / %s / %s | %s, %s |", \
      s, metric("exports-s"), metric("imports-s"), \
      metric("east-peak-RSS-MB"), metric("west-peak-RSS-MB"), metric("north-peak-RSS-MB"), r, \
      metric("east-cpu-s"), metric("west-cpu-s"), metric("north-cpu-s"), \
      n == 10000 ? verdict(s, 30) : "n/a", n == 10000 ? verdict(r, 500) : "n/a")
  }
  /^BenchmarkFederationConvergence/ {
    p = metric("p99-ms")
    conv = sprintf("| %s | %s | %s / %s | %s / %s | %s | %s | %s |", \
      metric("p50-ms"), p, metric("add-p50-ms"), metric("add-p99-ms"), \
      metric("del-p50-ms"), metric("del-p99-ms"), metric("max-ms"), metric("samples") + 0, verdict(p, 500))
  }
  /^--- FAIL: BenchmarkFederation/ { failing = $3 }
  failing != "" && /bench_test\.go:[0-9]+:/ { sub(/^[ \t]+/, ""); fails = fails "- " failing ": " $0 "\n" }
  END {
    print "Convergence over " commas(base) " base services per cluster (add a service to east, until the imports of west and north are written; remove it, until both are deleted):"
    print ""
    print "| p50 ms | p99 ms (≤ 500) | add p50 / p99 ms | remove p50 / p99 ms | max ms | samples | target |"
    print "|---|---|---|---|---|---|---|"
    print (conv != "" ? conv : "| — | — | — | — | — | — | not measured |")
    print ""
    print "Initial sync (" commas(n) " services exported by each of 3 clusters, until " commas(3 * n) " exports and " commas(3 * n) " complete imports):"
    print ""
    print "| sync s (≤ 30) | all exports s | all imports s | peak RSS MB east / west / north | max MB (≤ 500) | CPU s east / west / north | target time, RSS |"
    print "|---|---|---|---|---|---|---|"
    print (sync != "" ? sync : "| — | — | — | — | — | — | not measured |")
    if (fails != "") { print ""; print "Failed:"; print ""; printf "%s", fails }
  }' "$out")

{
  echo
  echo "## $(date -u +%Y-%m-%d) — Federation: convergence and 10k initial sync ($(nproc) cores, $(go env GOOS)/$(go env GOARCH))"
  echo
  echo "Command: \`${knobs}${cmd[*]}\` (via \`bench/federation.sh\`, \`make bench\`)"
  echo "Tree: $rev. Load average (1/5/15 min) before: $load_before; after: $load_after."
  echo
  echo "$summary"
} >> bench/RESULTS.md
echo
echo "$summary"
exit "$status"
