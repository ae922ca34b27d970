#!/usr/bin/env bash
# Runs the benchmarks and appends a dated section with ratios to bench/RESULTS.md.
# Usage: bench/run.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cmd=(go test -run '^$' -bench 'BenchmarkHTTP' -benchtime "${BENCHTIME:-3s}" -count "${COUNT:-1}" "$@" ./bench/)
echo "+ ${cmd[*]}" >&2
"${cmd[@]}" | tee "$out"

# Mean req/s per sub-benchmark, then tunnel/direct ratios.
summary=$(awk '
  /^BenchmarkHTTP\// {
    name=$1; sub(/^BenchmarkHTTP\//, "", name); sub(/-[0-9]+$/, "", name)
    for (i=2; i<=NF; i++) if ($(i) == "req/s") { sum[name]+=$(i-1); n[name]++ }
  }
  END {
    for (m in sum) rate[m]=sum[m]/n[m]
    split("keepalive newconn", modes, " ")
    printf "| mode | direct req/s | tunnel req/s | tunnel / direct |\n|---|---|---|---|\n"
    for (i=1; i<=2; i++) {
      d=rate[modes[i] "/direct"]; t=rate[modes[i] "/tunnel"]
      printf "| %s | %.0f | %.0f | %.2f |\n", modes[i], d, t, (d > 0 ? t/d : 0)
    }
  }' "$out")
{
  echo
  echo "## $(date -u +%Y-%m-%d) — HTTP through the tunnel vs direct ($(nproc) cores, $(go env GOOS)/$(go env GOARCH))"
  echo
  echo "Command: \`${cmd[*]}\` (via \`make bench\`)"
  echo
  echo "$summary"
} >> bench/RESULTS.md
echo "$summary"
