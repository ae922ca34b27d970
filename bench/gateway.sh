#!/usr/bin/env bash
# bench/gateway.sh — the causeway tunnel against an HAProxy mTLS pair and
# against direct connections, on one backend, in one run (issue 6).
#
# Paths (all on 127.93.0.0/16; addresses below are NET=127.93):
#   direct   client → backend (Go HTTP on .0.10:8000, iperf3 -s on .0.10:5201)
#   haproxy  client → HAProxy egress (.3.1) → TLS 1.3, client certs → HAProxy
#            ingress (.4.1) → backend; two haproxy processes, `mode tcp`
#            (the l7 test: the same processes' `mode http` frontends on :8081)
#   tunnel   client → causeway gateway a (VIP .1.128) → QUIC, mTLS → causeway
#            gateway b → backend; two gwbench gateway processes (the l7 test:
#            VIP port 8081, whose appProtocol is http: gateway a terminates
#            HTTP/1.1 and sends each request on a QUIC stream of its own)
# Tests, each path in turn, DNS_BENCH-style rounds (GW_BENCH_ROUNDS):
#   keepalive  wrk -t1 -c16, keep-alive connections: req/s and p99
#   newconn    wrk -t1 -c16 -H 'Connection: close': a TCP connection per request
#   bulk       iperf3 -P1, one stream, client → server
#   l7         wrk -t1 -c16 keep-alive through the L7 paths (HAProxy `mode http`,
#              causeway L7 port; direct as the reference): req/s, p50, p99
# then: GW_BENCH_IDLE (10000) idle tunneled connections held open, and the
# gateways' RSS. Appends a dated section to bench/RESULTS.md.
#
# Usage: bench/gateway.sh   (`make bench` runs it)
# Environment: GW_BENCH_SECONDS (10) per run, GW_BENCH_ROUNDS (2), GW_BENCH_CONNS (16)
#   wrk connections, GW_BENCH_IDLE (10000), GW_BENCH_PROFILE_DIR (unset): when set,
#   CPU profiles of both gateways during round 1's tunnel runs and a heap profile
#   during the idle test (and the runtime's MemStats) are written there (read
#   with `go tool pprof`);
#   GW_BENCH_TESTS ("keepalive newconn bulk l7 idle"): the tests to run;
#   GW_BENCH_RESULTS (bench/RESULTS.md): where the section is appended;
#   GW_BENCH_SINGLE_THREAD=1: every proxy process on one thread (gateways with
#   GOMAXPROCS=1, HAProxy with nbthread 1) instead of each using both cores;
#   GW_BENCH_GATEWAY_ENV (unset): extra VAR=value words for both gateway
#   processes (a diagnostic, e.g. GODEBUG or GOMAXPROCS; the section says so).
set -euo pipefail
cd "$(dirname "$0")/.."

NET=127.93
SECONDS_PER_RUN=${GW_BENCH_SECONDS:-10}
ROUNDS=${GW_BENCH_ROUNDS:-2}
CONNS=${GW_BENCH_CONNS:-16}
IDLE=${GW_BENCH_IDLE:-10000}
PROFILE_DIR=${GW_BENCH_PROFILE_DIR:-}
TESTS=${GW_BENCH_TESTS:-keepalive newconn bulk l7 idle}
RESULTS=${GW_BENCH_RESULTS:-bench/RESULTS.md}
SINGLE=${GW_BENCH_SINGLE_THREAD:-0}
GATEWAY_ENV=${GW_BENCH_GATEWAY_ENV:-}

BACKEND=$NET.0.10
GW_A=$NET.1.1:4443 GW_B=$NET.2.1:4443 VIP=$NET.1.128
PPROF_A=$NET.1.1:6060 PPROF_B=$NET.2.1:6060
HAP_EGRESS=$NET.3.1 HAP_INGRESS=$NET.4.1
HTTP_PORT=8080 IPERF_PORT=5201 BACKEND_HTTP_PORT=8000
L7_PORT=8081 # the l7 test's port: appProtocol http at the VIP, `mode http` at HAProxy

log() { echo "gateway.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# 1. Tools from Debian; the harness built from this tree.
hack/ensure-apt.sh haproxy:haproxy wrk:wrk iperf3:iperf3 jq:jq curl:curl
tmp=$(mktemp -d)
pids=()
stop() { # stop PID: SIGTERM, wait up to 5 s, then SIGKILL.
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
go build -o "$tmp/gwbench" ./bench/cmd/gwbench
gwbench=$tmp/gwbench
# Every process below holds up to GW_BENCH_IDLE sockets.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || ulimit -n "$((IDLE * 2))" 2>/dev/null || true
(($(ulimit -n) > IDLE + 1000)) || die "ulimit -n $(ulimit -n) is too low for $IDLE idle connections"
[ -z "$PROFILE_DIR" ] || mkdir -p "$PROFILE_DIR"

start() { # start NAME CMD...: runs CMD in the background, output in $tmp/NAME.log.
  local name=$1; shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}

# 2. Backend, certificates, both gateways, both HAProxies.
"$gwbench" certs -dir "$tmp/certs"
start backend "$gwbench" backend -http "$BACKEND:$BACKEND_HTTP_PORT"
start iperf3 iperf3 -s -B "$BACKEND" -p "$IPERF_PORT"
topo=(-dir "$tmp/certs" -gw-a "$GW_A" -gw-b "$GW_B" -vip "$VIP"
  -service "http=$HTTP_PORT:$BACKEND:$BACKEND_HTTP_PORT" -service "iperf=$IPERF_PORT:$BACKEND:$IPERF_PORT"
  -service "web=$L7_PORT:$BACKEND:$BACKEND_HTTP_PORT" -app-protocol web=http)
gwenv=(env)
if [ "$SINGLE" = 1 ]; then gwenv+=(GOMAXPROCS=1); fi
read -ra extra_env <<<"$GATEWAY_ENV"
gwenv+=("${extra_env[@]}")
start gw_b "${gwenv[@]}" "$gwbench" gateway -cluster b -pprof "$PPROF_B" "${topo[@]}"
start gw_a "${gwenv[@]}" "$gwbench" gateway -cluster a -pprof "$PPROF_A" "${topo[@]}"

c=$tmp/certs
# The global and defaults sections of both HAProxies.
haproxy_common=$(
  cat <<EOF
global
  maxconn 4096
$([ "$SINGLE" = 1 ] && echo "  nbthread 1")
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
EOF
)
cat >"$tmp/haproxy-egress.cfg" <<EOF
$haproxy_common
frontend egress_http
  bind $HAP_EGRESS:$HTTP_PORT
  default_backend ingress_http
frontend egress_iperf
  bind $HAP_EGRESS:$IPERF_PORT
  default_backend ingress_iperf
backend ingress_http
  server ingress $HAP_INGRESS:8443 ssl crt $c/client.pem ca-file $c/ca.pem verify required
backend ingress_iperf
  server ingress $HAP_INGRESS:8444 ssl crt $c/client.pem ca-file $c/ca.pem verify required
frontend egress_l7
  mode http
  bind $HAP_EGRESS:$L7_PORT
  default_backend ingress_l7
backend ingress_l7
  mode http
  server ingress $HAP_INGRESS:8445 ssl crt $c/client.pem ca-file $c/ca.pem verify required ssl-min-ver TLSv1.3
EOF
cat >"$tmp/haproxy-ingress.cfg" <<EOF
$haproxy_common
frontend ingress_http
  bind $HAP_INGRESS:8443 ssl crt $c/server.pem ca-file $c/ca.pem verify required
  default_backend app_http
frontend ingress_iperf
  bind $HAP_INGRESS:8444 ssl crt $c/server.pem ca-file $c/ca.pem verify required
  default_backend app_iperf
backend app_http
  server app $BACKEND:$BACKEND_HTTP_PORT
backend app_iperf
  server app $BACKEND:$IPERF_PORT
frontend ingress_l7
  mode http
  bind $HAP_INGRESS:8445 ssl crt $c/server.pem ca-file $c/ca.pem verify required ssl-min-ver TLSv1.3
  default_backend app_l7
backend app_l7
  mode http
  server app $BACKEND:$BACKEND_HTTP_PORT
EOF
start hap_ingress haproxy -db -f "$tmp/haproxy-ingress.cfg"
start hap_egress haproxy -db -f "$tmp/haproxy-egress.cfg"

declare -A url=(
  [direct]="http://$BACKEND:$BACKEND_HTTP_PORT/"
  [haproxy]="http://$HAP_EGRESS:$HTTP_PORT/"
  [tunnel]="http://$VIP:$HTTP_PORT/"
)
# The l7 test's URLs: an HTTP-aware hop on each proxied path.
declare -A url_l7=(
  [direct]="http://$BACKEND:$BACKEND_HTTP_PORT/"
  [haproxy]="http://$HAP_EGRESS:$L7_PORT/"
  [tunnel]="http://$VIP:$L7_PORT/"
)
declare -A iperf_host=([direct]=$BACKEND [haproxy]=$HAP_EGRESS [tunnel]=$VIP)
paths=(direct haproxy tunnel)

# Ready when one request through each path (L4 and L7 ports) succeeds.
for u in "${url[@]}" "${url_l7[@]}"; do
  hostport=${u#http://}; hostport=${hostport%/}
  for ((i = 0; ; i++)); do
    "$gwbench" idle -addr "$hostport" -n 1 -hold 0s </dev/null 2>/dev/null | grep -q '^ready 1 ' && break
    ((i < 100)) || { tail -n 20 "$tmp"/*.log >&2; die "$u not answering after 10 s"; }
    sleep 0.1
  done
done
log "all paths answer; $(haproxy -v | head -1 | cut -d' ' -f1-3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(iperf3 -v | head -1 | cut -d' ' -f1-2)"

# 3. The runs. Results go to $tmp/runs as "test path value..." lines.
profile() { # profile NAME: CPU profiles of both gateways during the next run.
  [ -n "$PROFILE_DIR" ] && [ "$r" = 1 ] || return 0
  local s=$((SECONDS_PER_RUN > 3 ? SECONDS_PER_RUN - 2 : 1))
  curl -s -o "$PROFILE_DIR/$1-a.cpu.pprof" "http://$PPROF_A/debug/pprof/profile?seconds=$s" &
  prof_pids+=($!)
  curl -s -o "$PROFILE_DIR/$1-b.cpu.pprof" "http://$PPROF_B/debug/pprof/profile?seconds=$s" &
  prof_pids+=($!)
}
profile_wait() { local p; for p in "${prof_pids[@]}"; do wait "$p" || true; done; prof_pids=(); }
prof_pids=()
# CPU time of a path's two proxy processes is read from /proc around each run:
# unlike req/s it barely depends on what else the shared machine runs.
declare -A proxies=([direct]="" [haproxy]="hap_egress hap_ingress" [tunnel]="gw_a gw_b")
HZ=$(getconf CLK_TCK)
cpu_ticks() { # cpu_ticks PATH: user+system ticks of the path's proxies so far.
  local name t=0 pid
  for name in ${proxies[$1]}; do
    pid=pid_$name
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/${!pid}/stat")))
  done
  echo "$t"
}
ctx_switches() { # ctx_switches PATH: context switches (voluntary + involuntary) of the path's proxies' threads so far.
  local name pid f t=0
  for name in ${proxies[$1]}; do
    pid=pid_$name
    for f in /proc/"${!pid}"/task/*/status; do # a thread may end meanwhile: it counts 0
      t=$((t + $(cat "$f" 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }')))
    done
  done
  echo "$t"
}
wrk_run() { # wrk_run TEST PATH [wrk flags]: appends "TEST PATH req/s p99_ms errors proxy_cpu_us_per_request proxy_ctx_switches_per_request p50_ms".
  local test=$1 p=$2 out=$tmp/wrk.out t0 cs0 u; shift 2
  u=${url[$p]}
  if [ "$test" = l7 ]; then u=${url_l7[$p]}; fi
  if [ "$p" = tunnel ]; then profile "$test"; fi
  t0=$(cpu_ticks "$p") cs0=$(ctx_switches "$p")
  wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" --latency "$@" "$u" >"$out" 2>&1 || { cat "$out" >&2; die "wrk $test $p failed"; }
  local ticks=$(($(cpu_ticks "$p") - t0)) cs=$(($(ctx_switches "$p") - cs0))
  profile_wait
  awk -v test="$test" -v p="$p" -v ticks="$ticks" -v cs="$cs" -v hz="$HZ" '
    function ms(v) { if (v ~ /us$/) return v * 0.001; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $2 == "requests" && $3 == "in" { reqs = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
    /Non-2xx/ { errs += $NF }
    END { printf "%s %s %.0f %.3f %d %.1f %.2f %.3f\n", test, p, rps, p99, errs, (reqs > 0 ? ticks / hz * 1e6 / reqs : 0), (reqs > 0 ? cs / reqs : 0), p50 }' "$out" | tee -a "$tmp/runs" >&2
}
iperf_run() { # iperf_run PATH: appends "bulk PATH Gbit/s retransmits proxy_cpu_seconds_per_GB".
  local p=$1 out=$tmp/iperf.json t0
  if [ "$p" = tunnel ]; then profile bulk; fi
  t0=$(cpu_ticks "$p")
  iperf3 -c "${iperf_host[$p]}" -p "$IPERF_PORT" -t "$SECONDS_PER_RUN" -O 1 -P 1 -J >"$out" || { cat "$out" >&2; die "iperf3 $p failed"; }
  local ticks=$(($(cpu_ticks "$p") - t0))
  profile_wait
  jq -r --arg p "$p" --argjson s "$(echo "$ticks $HZ" | awk '{ print $1 / $2 }')" \
    '"bulk \($p) \(.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000) \(.end.sum_sent.retransmits // 0) \($s / (.end.sum_received.bytes / 1e9) * 1000 | round / 1000)"' \
    "$out" | tee -a "$tmp/runs" >&2
}
want() { [[ " $TESTS " == *" $1 "* ]]; }
touch "$tmp/runs"
for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r of $ROUNDS: ${SECONDS_PER_RUN}s per run"
  if want keepalive; then for p in "${paths[@]}"; do wrk_run keepalive "$p"; done; fi
  if want l7; then for p in "${paths[@]}"; do wrk_run l7 "$p"; done; fi
  if want newconn; then for p in "${paths[@]}"; do wrk_run newconn "$p" -H 'Connection: close'; done; fi
  if want bulk; then for p in "${paths[@]}"; do iperf_run "$p"; done; fi
done

# 4. Idle connections through the tunnel; RSS of both gateways.
idle_test() {
  rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
  hwm() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
  rss_a0=$(rss "$pid_gw_a") rss_b0=$(rss "$pid_gw_b")
  log "holding $IDLE idle tunneled connections (gateway RSS before: a $rss_a0 MB, b $rss_b0 MB)"
  mkfifo "$tmp/idle.in"
  "$gwbench" idle -addr "$VIP:$HTTP_PORT" -n "$IDLE" -parallel 64 -hold 5m <"$tmp/idle.in" >"$tmp/idle.out" 2>"$tmp/idle.err" &
  idle_pid=$!
  exec 3>"$tmp/idle.in"
  for ((i = 0; ; i++)); do
    grep -q '^ready' "$tmp/idle.out" 2>/dev/null && break
    kill -0 "$idle_pid" 2>/dev/null || { cat "$tmp/idle.err" >&2; die "idle client exited early"; }
    ((i < 1200)) || die "idle connections not open after 120 s"
    sleep 0.1
  done
  sleep 3 # let the gateways settle (GC) with every connection idle
  idle_line=$(cat "$tmp/idle.out")
  rss_a=$(rss "$pid_gw_a") rss_b=$(rss "$pid_gw_b") hwm_a=$(hwm "$pid_gw_a") hwm_b=$(hwm "$pid_gw_b")
  goroutines() { curl -s "http://$1/debug/pprof/goroutine?debug=1" | awk 'NR == 1 { print $4 }'; }
  gor_a=$(goroutines "$PPROF_A") gor_b=$(goroutines "$PPROF_B")
  if [ -n "$PROFILE_DIR" ]; then
    curl -s -o "$PROFILE_DIR/idle-a.heap.pprof" "http://$PPROF_A/debug/pprof/heap"
    curl -s -o "$PROFILE_DIR/idle-b.heap.pprof" "http://$PPROF_B/debug/pprof/heap"
    curl -s -o "$PROFILE_DIR/idle-a.memstats.txt" "http://$PPROF_A/debug/pprof/heap?debug=1"
    curl -s -o "$PROFILE_DIR/idle-b.memstats.txt" "http://$PPROF_B/debug/pprof/heap?debug=1"
  fi
  exec 3>&-
  wait "$idle_pid" || true
  log "idle: $idle_line; RSS a $rss_a MB (peak $hwm_a), b $rss_b MB (peak $hwm_b); goroutines a $gor_a, b $gor_b"
  echo "idle tunnel $rss_a $rss_b $hwm_a $hwm_b $gor_a $gor_b $idle_line" >>"$tmp/runs"
}
if want idle; then idle_test; fi

# 5. Summary, appended to bench/RESULTS.md.
table=$(awk '
  $1 == "idle" { n["idle"] = 1; ra = $3; rb = $4; ha = $5; hb = $6; ga = $7; gb = $8; ok = $10; bad = $12; next }
  { k = $1 " " $2; n[k]++; v[k] += $3; turns[k] = turns[k] (turns[k] == "" ? "" : ", ") $3
    if ($1 == "bulk") { rt[k] += $4; cpu[k] += $5 } else { p99[k] += $4; errs[k] += $5; cpu[k] += $6; cs[k] += $7; p50[k] += $8 } }
  function m(k) { return n[k] ? v[k] / n[k] : 0 }
  function q(k) { return n[k] ? p99[k] / n[k] : 0 }
  function h(k) { return n[k] ? p50[k] / n[k] : 0 }
  function c(k) { return n[k] ? cpu[k] / n[k] : 0 }
  function x(k) { return n[k] ? cs[k] / n[k] : 0 }
  function ratio(a, b) { return b > 0 ? a / b : 0 }
  function verdict(ok, k) { return !n[k] ? "not run" : ok ? "met" : "**missed**" }
  function row(label, fmt, f, t, target, ok) {
    printf "| %s | " fmt " | " fmt " | " fmt " | %.2f | %s | %s |\n", label, f == "q" ? q(t " direct") : m(t " direct"),
      f == "q" ? q(t " haproxy") : m(t " haproxy"), f == "q" ? q(t " tunnel") : m(t " tunnel"),
      f == "q" ? ratio(q(t " tunnel"), q(t " haproxy")) : ratio(m(t " tunnel"), m(t " haproxy")), target, verdict(ok, t " tunnel")
  }
  function cpurow(label, t) {
    printf "| %s | %.2f | %.2f | %.2f |\n", label, c(t " haproxy"), c(t " tunnel"), ratio(c(t " tunnel"), c(t " haproxy"))
  }
  function csrow(label, t) {
    printf "| %s | %.2f | %.2f | %.2f |\n", label, x(t " haproxy"), x(t " tunnel"), ratio(x(t " tunnel"), x(t " haproxy"))
  }
  function l7row(label, fmt, d, hp, tu, target, ok) {
    printf "| %s | %s | " fmt " | " fmt " | %.2f | %s | %s |\n", label, d, hp, tu, ratio(tu, hp), target, target == "" ? "" : verdict(ok, "l7 tunnel")
  }
  function l7table() {
    print "L7 (the `l7` test): keep-alive HTTP through an HTTP-aware hop on each path, HAProxy pair in `mode http` and the causeway L7 port (appProtocol `http`):"
    print ""
    print "| L7 keep-alive HTTP | direct | HAProxy pair, `mode http` | causeway L7 port | causeway / HAProxy | target | |"
    print "|---|---|---|---|---|---|---|"
    l7row("req/s", "%.0f", sprintf("%.0f", m("l7 direct")), m("l7 haproxy"), m("l7 tunnel"), "≥ 1.0", m("l7 tunnel") >= m("l7 haproxy"))
    l7row("p50 ms", "%.2f", sprintf("%.2f", h("l7 direct")), h("l7 haproxy"), h("l7 tunnel"), "", 1)
    l7row("p99 ms", "%.2f", sprintf("%.2f", q("l7 direct")), q("l7 haproxy"), q("l7 tunnel"), "≤ 1.0", q("l7 tunnel") <= q("l7 haproxy"))
    l7row("proxy CPU µs per request", "%.2f", "–", c("l7 haproxy"), c("l7 tunnel"), "", 1)
    l7row("proxy context switches per request", "%.2f", "–", x("l7 haproxy"), x("l7 tunnel"), "", 1)
    print ""
  }
  END {
    print "| test | direct | HAProxy pair | causeway tunnel | tunnel / HAProxy | target | |"
    print "|---|---|---|---|---|---|---|"
    row("keep-alive HTTP req/s", "%.0f", "m", "keepalive", "≥ 1.0", m("keepalive tunnel") >= m("keepalive haproxy"))
    row("keep-alive HTTP p99 ms", "%.2f", "q", "keepalive", "≤ 1.0", q("keepalive tunnel") <= q("keepalive haproxy"))
    row("new connection per request, req/s", "%.0f", "m", "newconn", "≥ 20", m("newconn tunnel") >= 20 * m("newconn haproxy"))
    row("new connection per request, p99 ms", "%.2f", "q", "newconn", "", 1)
    row("bulk, iperf3 1 stream, Gbit/s", "%.2f", "m", "bulk", "≥ 0.8", m("bulk tunnel") >= 0.8 * m("bulk haproxy"))
    printf "| %s idle tunneled connections: gateway RSS MB, a (egress) / b (ingress) | | | %s / %s | | ≤ 300 each | %s |\n",
      ok + bad, ra, rb, verdict(bad == 0 && ra <= 300 && rb <= 300, "idle")
    print ""
    print "CPU time of the two proxy processes (user + system, from /proc), and context switches of their threads (voluntary + involuntary, from /proc), lower is better:"
    print ""
    print "| unit | HAProxy pair | causeway tunnel | tunnel / HAProxy |"
    print "|---|---|---|---|"
    cpurow("keep-alive, µs per request", "keepalive")
    cpurow("new connection, µs per request", "newconn")
    cpurow("bulk, CPU seconds per GB", "bulk")
    csrow("keep-alive, context switches per request", "keepalive")
    csrow("new connection, context switches per request", "newconn")
    print ""
    if (n["l7 tunnel"]) l7table()
    print "Per turn (req/s or Gbit/s):"
    print ""
    split("keepalive newconn bulk l7", tests, " "); split("direct haproxy tunnel", ps, " ")
    for (i = 1; i <= 4; i++) for (j = 1; j <= 3; j++) { k = tests[i] " " ps[j]
      if (n[k]) printf "- %s %s: %s%s%s\n", tests[i], ps[j], turns[k], (errs[k] ? "; socket errors " errs[k] : ""), (rt[k] ? "; TCP retransmits " rt[k] : "") }
    if (n["idle"]) printf "\nIdle test: %d connections open (%d failed); gateway peak RSS a %s MB / b %s MB; goroutines a %s / b %s.\n", ok, bad, ha, hb, ga, gb
  }' "$tmp/runs")
section=$(
  echo "## $(date -u +%Y-%m-%d) — gateway: causeway tunnel vs HAProxy mTLS pair vs direct$(want l7 && echo ", L4 and L7") ($(nproc) cores, $(go env GOOS)/$(go env GOARCH))"
  echo
  knobs=$(env | grep -E '^GW_BENCH_(SECONDS|ROUNDS|CONNS|IDLE|TESTS|SINGLE_THREAD|GATEWAY_ENV|PROFILE_DIR)=' | sort | sed 's/=\(.*\)/="\1"/' | tr '\n' ' ' || true)
  echo "Command: \`${knobs}bench/gateway.sh\` (\`make bench\` runs it with the defaults): $ROUNDS rounds, each path in turn, ${SECONDS_PER_RUN} s per run; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "HTTP: \`wrk -t1 -c$CONNS -d${SECONDS_PER_RUN}s --latency URL\`, and with \`-H 'Connection: close'\` for a new TCP connection per request;"
  echo "bulk: \`iperf3 -c HOST -t $SECONDS_PER_RUN -O 1 -P 1\`; idle: \`gwbench idle -n $IDLE\` (one GET per connection, then held), RSS from /proc after 3 s."
  echo "One backend for all paths (a Go HTTP server answering 30 bytes of JSON; \`iperf3 -s\`). HAProxy $(haproxy -v | head -1 | cut -d' ' -f3): two processes, \`mode tcp\`,"
  echo "TLS with client certificates (ECDSA P-256) between them. Causeway: two \`gwbench gateway\` processes (clusters a and b, QUIC mTLS, static catalog). Means over rounds."
  if want l7; then
    echo "L7: \`wrk -t1 -c$CONNS -d${SECONDS_PER_RUN}s --latency URL\` against port $L7_PORT of the causeway VIP (the import's port has appProtocol \`http\`: gateway a terminates HTTP/1.1"
    echo "and sends each request on a QUIC stream of its own to gateway b, which keeps pooled HTTP/1.1 connections to the backend) and of the same two HAProxy processes' \`mode http\`"
    echo "frontends (TLS 1.3 with client certificates between them, HAProxy's default keep-alive and \`http-reuse safe\`), and direct to the backend; no routes configured."
  fi
  if [ "$SINGLE" = 1 ]; then echo "**Single-threaded proxies** (\`GW_BENCH_SINGLE_THREAD=1\`): gateways with GOMAXPROCS=1, HAProxy with \`nbthread 1\`."; else echo "Every proxy process may use both cores (Go's default GOMAXPROCS, HAProxy's default nbthread)."; fi
  if [ -n "$GATEWAY_ENV" ]; then echo "**Gateway environment** (\`GW_BENCH_GATEWAY_ENV\`, a diagnostic, not the default): \`$GATEWAY_ENV\`."; fi
  echo
  echo "$table"
)
printf '\n%s\n' "$section" >>"$RESULTS"
echo "$section"
