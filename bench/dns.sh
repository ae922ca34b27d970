#!/usr/bin/env bash
# bench/dns.sh — the DNS shim against CoreDNS (file plugin) under dnsperf.
#
# Starts `causeway dev` on 127.91.0.0/16, takes cluster "west"'s DNS shim,
# serves the same answers from CoreDNS 1.15.0 with a `file` zone (no cache) on
# 127.91.250.1 and the same port, checks both answer alike, then runs dnsperf
# against each in rounds (CoreDNS then shim, shim then CoreDNS, ... so drift
# in the machine's load hits both alike) and appends a dated section with the
# median of the per-round ratios to bench/RESULTS.md.
#
# Usage: bench/dns.sh   (needs bin/causeway: `make build`; `make bench` runs it)
# Environment: DNS_BENCH_SECONDS (10) per plain run, DNS_BENCH_P99_SECONDS (5) per
#              -v run, DNS_BENCH_ROUNDS (4) rounds, DNS_BENCH_CLIENTS (4) dnsperf -c,
#              DNS_BENCH_PIN (0): 1 to run both servers on the first half
#              of the CPUs and dnsperf on the rest (taskset; needs 2+ CPUs);
#              CAUSEWAY (bin/causeway) the binary; DNS_BENCH_RESULTS
#              (bench/RESULTS.md) where the section goes, - for nowhere.
set -euo pipefail
cd "$(dirname "$0")/.."

COREDNS_VERSION=v1.15.0
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/causeway}
TOOLS_BIN=$CACHE_DIR/tools/bin
COREDNS=$TOOLS_BIN/coredns
NET=127.91.0.0/16
COREDNS_IP=127.91.250.1
CLUSTER=west
SECONDS_PER_RUN=${DNS_BENCH_SECONDS:-10}
P99_SECONDS=${DNS_BENCH_P99_SECONDS:-5}
ROUNDS=${DNS_BENCH_ROUNDS:-4}
CLIENTS=${DNS_BENCH_CLIENTS:-4}
PIN=${DNS_BENCH_PIN:-0}
NCPU=$(nproc)
# Servers on CPUs [0, NCPU/2), dnsperf on the rest: the same cores for both
# servers, and the load generator never competes with the server it measures.
server_run=() client_run=() SERVER_CPUS="all" CLIENT_CPUS="all" THREADS=$NCPU
if [ "$PIN" = 1 ] && ((NCPU >= 2)) && command -v taskset >/dev/null; then
  half=$((NCPU / 2))
  SERVER_CPUS=0-$((half - 1)) CLIENT_CPUS=$half-$((NCPU - 1)) THREADS=$((NCPU - half))
  server_run=(taskset -c "$SERVER_CPUS") client_run=(taskset -c "$CLIENT_CPUS")
fi
ZONE=clusterset.local

log() { echo "dns.sh: $*" >&2; }
die() { log "$*"; exit 1; }

CAUSEWAY=${CAUSEWAY:-bin/causeway}
RESULTS=${DNS_BENCH_RESULTS:-bench/RESULTS.md}
[ -x "$CAUSEWAY" ] || die "$CAUSEWAY missing: run 'make build' first"

# 1. Tools: dnsperf, dig and jq from Debian; CoreDNS pinned, cached like the Makefile's tools.
hack/ensure-apt.sh dnsperf:dnsperf dig:bind9-dnsutils jq:jq
if ! [ -x "$COREDNS" ] || ! "$COREDNS" -version 2>/dev/null | grep -q "CoreDNS-${COREDNS_VERSION#v}\$"; then
  log "installing CoreDNS $COREDNS_VERSION into $TOOLS_BIN (takes a few minutes)"
  mkdir -p "$TOOLS_BIN"
  GOBIN=$TOOLS_BIN go install "github.com/coredns/coredns@$COREDNS_VERSION"
fi

tmp=$(mktemp -d)
dev_pid="" coredns_pid=""
stop() { # stop PID: SIGTERM, wait up to 5 s, then SIGKILL.
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$coredns_pid"
  stop "$dev_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 2. The clusterset; west's shim.
state=$tmp/state.json
"${server_run[@]}" "$CAUSEWAY" dev --net "$NET" --state-file "$state" >"$tmp/dev.log" 2>&1 &
dev_pid=$!
for ((i = 0; ; i++)); do
  if [ -s "$state" ] && jq -e --arg c "$CLUSTER" '.clusters[] | select(.name == $c) | .dns' "$state" >/dev/null 2>&1; then break; fi
  kill -0 "$dev_pid" 2>/dev/null || { cat "$tmp/dev.log" >&2; die "causeway dev exited early"; }
  ((i < 300)) || { tail -20 "$tmp/dev.log" >&2; die "causeway dev not ready after 30 s"; }
  sleep 0.1
done
shim=$(jq -r --arg c "$CLUSTER" '.clusters[] | select(.name == $c) | .dns' "$state")
shim_ip=${shim%:*} port=${shim##*:}
vip_echo=$(jq -r --arg c "$CLUSTER" '.clusters[] | select(.name == $c) | .vips["demo/echo"]' "$state")
vip_clock=$(jq -r --arg c "$CLUSTER" '.clusters[] | select(.name == $c) | .vips["demo/clock"]' "$state")
log "shim of $CLUSTER at $shim_ip:$port (echo $vip_echo, clock $vip_clock)"

q() { # q SERVER NAME TYPE: the answer section, TTLs included, sorted.
  dig @"$1" -p "$port" +norec +noall +answer +time=1 +tries=1 "$2" "$3" | sort
}
rcode() { dig @"$1" -p "$port" +norec +time=1 +tries=1 "$2" "$3" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

# The shim answers A once the catalog has reached it: wait for west's VIP.
for ((i = 0; ; i++)); do
  [ "$(dig @"$shim_ip" -p "$port" +short +time=1 +tries=1 echo.demo.svc.$ZONE A)" = "$vip_echo" ] && break
  ((i < 100)) || die "shim does not answer echo.demo.svc.$ZONE A = $vip_echo"
  sleep 0.1
done

# 3. The same zone for CoreDNS. SOA serial and SRV records are copied from the
# shim's own answers (the serial is the catalog revision, ports come from the
# exports), so the answers match by construction; checked below.
soa_serial=$(dig @"$shim_ip" -p "$port" +short "$ZONE" SOA | awk '{print $3}')
[ -n "$soa_serial" ] || die "no SOA from the shim"
{
  echo "\$ORIGIN $ZONE."
  echo "\$TTL 5"
  echo "@ IN SOA ns.dns.$ZONE. hostmaster.$ZONE. $soa_serial 7200 1800 86400 5"
  echo "@ IN NS ns.dns.$ZONE."
  echo "ns.dns IN A $shim_ip"
  echo "dns-version IN TXT \"1.0.0\""
  echo "echo.demo.svc IN A $vip_echo"
  echo "clock.demo.svc IN A $vip_clock"
  for svc in echo clock; do
    dig @"$shim_ip" -p "$port" +short "$svc.demo.svc.$ZONE" SRV | while read -r prio weight p target; do
      echo "$svc.demo.svc IN SRV $prio $weight $p $target"
    done
  done
} >"$tmp/db.$ZONE"
cat >"$tmp/Corefile" <<EOF
$ZONE:$port {
    bind $COREDNS_IP
    file $tmp/db.$ZONE
}
EOF
"${server_run[@]}" "$COREDNS" -conf "$tmp/Corefile" -quiet >"$tmp/coredns.log" 2>&1 &
coredns_pid=$!
for ((i = 0; ; i++)); do
  [ "$(dig @"$COREDNS_IP" -p "$port" +short +time=1 +tries=1 echo.demo.svc.$ZONE A)" = "$vip_echo" ] && break
  kill -0 "$coredns_pid" 2>/dev/null || { cat "$tmp/coredns.log" >&2; die "coredns exited early"; }
  ((i < 100)) || { cat "$tmp/coredns.log" >&2; die "coredns not answering after 10 s"; }
  sleep 0.1
done
log "coredns $("$COREDNS" -version | head -1) at $COREDNS_IP:$port"

# 4. One query mix for both: mostly A of echo/clock, some SRV, TXT, NXDOMAIN.
queries=$tmp/queries.txt
{
  for _ in 1 2 3 4 5 6 7 8; do echo "echo.demo.svc.$ZONE A"; done
  for _ in 1 2 3 4 5 6 7; do echo "clock.demo.svc.$ZONE A"; done
  echo "echo.demo.svc.$ZONE SRV"
  echo "clock.demo.svc.$ZONE SRV"
  echo "dns-version.$ZONE TXT"
  echo "nope.demo.svc.$ZONE A"
  echo "missing.$ZONE A"
} >"$queries"

# Same answers and rcodes from both peers, for every distinct query.
sort -u "$queries" | while read -r name type; do
  a=$(q "$shim_ip" "$name" "$type"; rcode "$shim_ip" "$name" "$type")
  b=$(q "$COREDNS_IP" "$name" "$type"; rcode "$COREDNS_IP" "$name" "$type")
  [ "$a" = "$b" ] || die "answers differ for $name $type:
shim:
$a
coredns:
$b"
done
log "both peers give the same answer sections and rcodes for the $(sort -u "$queries" | wc -l) distinct queries"

# 5. dnsperf, CoreDNS and the shim alternately. dnsperf 2.10 has no percentile
# output (only avg/min/max/stddev), but -v prints every response's latency:
# each turn is a plain run (qps, avg, max, lost) then a shorter -v run whose
# latencies give p99 (1 µs buckets). -v alone costs ~12% qps on both peers,
# hence the separate runs.
flags=(-p "$port" -d "$queries" -c "$CLIENTS" -T "$THREADS" -l "$SECONDS_PER_RUN")
vflags=(-p "$port" -d "$queries" -c "$CLIENTS" -T "$THREADS" -l "$P99_SECONDS" -v)
perf() { # perf OUT IP FLAGS...: dnsperf, or the reason it failed.
  local out=$1 ip=$2; shift 2
  "${client_run[@]}" dnsperf -s "$ip" "$@" >"$out" 2>"$out.err" || { cat "$out.err" >&2; die "dnsperf -s $ip $* failed"; }
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # user + system CPU of a process, in clock ticks
CLK_TCK=$(getconf CLK_TCK)
run() { # run PEER IP PID ROUND -> appends "peer qps avg_ms p99_ms max_ms lost sent cpu_us_per_query" to $tmp/runs
  local peer=$1 ip=$2 pid=$3 r=$4 out=$tmp/$1.$4.out vout=$tmp/$1.$4.vout t0 t1
  log "round $r: dnsperf against $peer ($ip:$port), ${SECONDS_PER_RUN}s + ${P99_SECONDS}s -v"
  t0=$(cpu_ticks "$pid")
  perf "$out" "$ip" "${flags[@]}"
  t1=$(cpu_ticks "$pid")
  perf "$vout" "$ip" "${vflags[@]}"
  awk -v peer="$peer" -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" '
    FNR == NR && /Queries sent:/          { sent = $3 }
    FNR == NR && /Queries lost:/          { lost = $3 }
    FNR == NR && /Queries per second:/    { qps = $4 }
    FNR == NR && /Queries completed:/     { done = $3 }
    FNR == NR && /Average Latency \(s\):/ { avg = $4 * 1000; mx = $8 * 1000 }
    FNR != NR && $1 == ">" && $NF ~ /^[0-9.]+$/ { us = int($NF * 1e6 + 0.5); b[us]++; n++; if (us > maxus) maxus = us }
    FNR != NR && /Queries lost:/          { lost += $3 }
    FNR != NR && /Queries sent:/          { sent += $3 }
    END {
      want = int(n * 0.99); if (want < n * 0.99) want++
      c = 0; p99 = -1
      for (us = 0; us <= maxus && p99 < 0; us++) { c += b[us]; if (c >= want) p99 = us / 1000 }
      if (maxus / 1000 > mx) mx = maxus / 1000
      printf "%s %.0f %.3f %.3f %.3f %d %d %.2f\n", peer, qps, avg, p99, mx, lost, sent, (done > 0 ? ticks / hz * 1e6 / done : 0)
    }' "$out" "$vout" | tee -a "$tmp/runs" >&2
  rm -f "$out" "$vout"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then
    run coredns "$COREDNS_IP" "$coredns_pid" "$r"
    run shim "$shim_ip" "$dev_pid" "$r"
  else
    run shim "$shim_ip" "$dev_pid" "$r"
    run coredns "$COREDNS_IP" "$coredns_pid" "$r"
  fi
done

# 6. Summary, appended to bench/RESULTS.md: per peer the median over rounds
# of qps, avg and p99 (max: the largest; lost: the sum), and the median of
# the per-round qps ratios.
table=$(awk '
  function median(s,    a, k, t, i, j) {
    k = split(s, a, " ")
    for (i = 2; i <= k; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  { r = ++n[$1]; qps[$1, r] = $2; q[$1] = q[$1] " " $2; avg[$1] = avg[$1] " " $3; p99[$1] = p99[$1] " " $4
    if ($5 > mx[$1]) mx[$1] = $5; lost[$1] += $6; sent[$1] += $7; cpu[$1] = cpu[$1] " " $8
    runs[$1] = runs[$1] (runs[$1] == "" ? "" : ", ") $2 }
  END {
    print "| peer | qps | avg ms | p99 ms | max ms | lost | server CPU µs/query | qps per round |"
    print "|---|---|---|---|---|---|---|---|"
    split("coredns shim", order, " ")
    label["coredns"] = "CoreDNS 1.15.0 `file`"; label["shim"] = "Causeway DNS shim"
    for (i = 1; i <= 2; i++) { p = order[i]
      printf "| %s | %.0f | %.2f | %.2f | %.2f | %d of %d | %.1f | %s |\n", label[p], median(q[p]), median(avg[p]), median(p99[p]), mx[p], lost[p], sent[p], median(cpu[p]), runs[p] }
    for (r = 1; r <= n["shim"] && r <= n["coredns"]; r++) {
      x = qps["coredns", r] > 0 ? qps["shim", r] / qps["coredns", r] : 0
      ratios = ratios " " x; rs = rs (r > 1 ? ", " : "") sprintf("%.2f", x)
    }
    printf "\nshim / CoreDNS qps, median of the per-round ratios: **%.2f** (rounds: %s)\n", median(ratios), rs
  }' "$tmp/runs")
cmdline="${client_run[*]}${client_run:+ }dnsperf -s <peer> ${flags[*]}\` then \`${client_run[*]}${client_run:+ }dnsperf -s <peer> ${vflags[*]}"
cmdline=${cmdline//$tmp\//}
pinning="not pinned"
[ ${#server_run[@]} -eq 0 ] || pinning="servers pinned to CPU $SERVER_CPUS, dnsperf to CPU $CLIENT_CPUS (taskset)"
section=$(
  echo "## $(date -u +%Y-%m-%d) — DNS: the shim vs CoreDNS, dnsperf ($NCPU cores, $(go env GOOS)/$(go env GOARCH))"
  echo
  echo "Commands: \`$cmdline\`; $ROUNDS rounds alternating CoreDNS, shim / shim, CoreDNS (via \`bench/dns.sh\`, \`make bench\`); $pinning."
  echo "Tree: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- dnsshim 2>/dev/null || echo ' + uncommitted dnsshim changes'). Load average (1/5/15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Shim: cluster \`$CLUSTER\` of \`$CAUSEWAY dev --net $NET\` ($shim_ip:$port; the rest of the clusterset runs in the same process)."
  echo "CoreDNS $COREDNS_VERSION on $COREDNS_IP:$port with only \`bind\` + \`file\` (**\`cache\` off**, no \`log\`/\`errors\`), zone built from the shim's answers (checked identical)."
  echo "One difference remains: CoreDNS also returns the apex NS in the authority section of positive answers (the shim leaves it empty), ~30 bytes more per response."
  echo "Query mix ($(wc -l <"$queries") lines, looped): 8 × echo A, 7 × clock A, 2 × service SRV, 1 × TXT dns-version, 2 × NXDOMAIN."
  echo "qps, avg: each plain run's dnsperf summary; p99: from the -v run's per-response latencies (dnsperf 2.10 prints no percentiles; -v costs qps, so p99 is at slightly lower load); lost: both runs, summed; server CPU: user + system time of the server process (for the shim the whole \`causeway dev\` process) during the plain run, per completed query. Per peer the median over rounds; max is the largest."
  echo
  echo "$table"
)
[ "$RESULTS" = - ] || printf '\n%s\n' "$section" >>"$RESULTS"
echo "$section"
