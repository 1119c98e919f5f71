#!/usr/bin/env bash
# The fleet benchmark (issue 18): HOSTS real trading-heal-probe processes, AGENTS agents each,
# reporting every INTERVAL seconds to one real centre (trading-heal-exporter) on 127.0.0.1 over
# tcp with CURVE, each host with its own key. No real units and no database: each host has its
# own private dbus-daemon serving bench/probe's fake_systemd (every unit loaded, active, running,
# MainPID = the fake's own process), and the agents' ages come from heartbeat files this script
# keeps fresh (the probe's DATABASE_URL names a socket directory that does not exist: every
# query fails at once and the probe falls back to the files, as it does when PostgreSQL is away).
#
#   TRADING_HEAL_BIN_DIR=build/bin bench/fleet/run_bench.sh [options]
#     --hosts N      agent hosts (default 20)
#     --agents N     agents per host (default 500)
#     --cycles N     measured cycles (default 5)
#     --interval S   the probes' interval (default 30)
#     --scrapes N    timed GET /metrics after the cycles (default 10)
#     --aligned      start every probe at once (their cycles coincide: one burst of HOSTS x AGENTS
#                    reports each interval); default: starts spread over one interval, as hosts
#                    started at different times are
#     --port P       first of 4 loopback ports: state, events, metrics, api (default 29470)
#     --keep         keep the work directory (logs, keys, the last scrape)
#
# Prints the figures (README.md: the method and what each figure means). Everything it starts is
# stopped by PID at exit. Needs: trading-heal-exporter, trading-heal-probe, trading-heal-ctl,
# fake_systemd (cmake --build build --target bench_fleet), dbus-daemon, curl, ss.
set -euo pipefail
BIN=${TRADING_HEAL_BIN_DIR:?set TRADING_HEAL_BIN_DIR (e.g. build/bin)}
BIN=$(cd "$BIN" && pwd)
HOSTS=20 AGENTS=500 CYCLES=5 INTERVAL=30 SCRAPES=10 ALIGNED=0 PORT=29470 KEEP=0
while (($#)); do
  case $1 in
    --hosts) HOSTS=$2; shift ;;
    --agents) AGENTS=$2; shift ;;
    --cycles) CYCLES=$2; shift ;;
    --interval) INTERVAL=$2; shift ;;
    --scrapes) SCRAPES=$2; shift ;;
    --aligned) ALIGNED=1 ;;
    --port) PORT=$2; shift ;;
    --keep) KEEP=1 ;;
    *) echo "unknown option $1 (see the head of $0)" >&2; exit 2 ;;
  esac
  shift
done
STATE_PORT=$PORT EVENTS_PORT=$((PORT + 1)) METRICS_PORT=$((PORT + 2)) API_PORT=$((PORT + 3))
for p in $STATE_PORT $EVENTS_PORT $METRICS_PORT $API_PORT; do
  if ss -Htln "( sport = :$p )" | grep -q .; then
    echo "port $p is in use: pick others with --port" >&2
    exit 1
  fi
done
for b in trading-heal-exporter trading-heal-probe trading-heal-ctl fake_systemd; do
  [[ -x $BIN/$b ]] || { echo "missing $BIN/$b: cmake --build build --target bench_fleet" >&2; exit 1; }
done
TOTAL=$((HOSTS * AGENTS))
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/trading-heal-fleet.XXXXXX)
PIDS=()        # everything started here, stopped in reverse order
PROBES=()      # the probes' PIDs
CENTRE=
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for i in "${PIDS[@]}"; do wait "$i" 2>/dev/null || true; done
  if ((KEEP)); then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }  # utime + stime
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
host_name() { printf 'h%02d' "$1"; }
agents_of() {  # host h's instances: S<hh><iii>_USDT, symbol S<hh><iii>-USDT
  local h=$1 i
  for ((i = 0; i < AGENTS; i++)); do printf 'S%02d%03d_USDT\n' "$h" "$i"; done
}
# The centre's received TCP payload (tcp_info bytes_received: ZMTP frames with CURVE boxes, no
# TCP/IP headers) and segments, per connection on the state port: "peer bytes segs" lines.
state_conns() {
  ss -tinH state established "( sport = :$STATE_PORT )" | awk '
    /^[0-9]/ {peer = $4; next}
    {b = 0; s = 0
     for (i = 1; i <= NF; i++) {
       if ($i ~ /^bytes_received:/) {split($i, a, ":"); b = a[2]}
       if ($i ~ /^segs_in:/) {split($i, a, ":"); s = a[2]}
     }
     print peer, b, s}'
}
scrape() { curl -fsS --max-time 10 -o "$1" -w '%{time_total} %{size_download}\n' \
  "http://127.0.0.1:$METRICS_PORT/metrics"; }
delay_hist() {  # le count lines of trading_selfheal_report_delay_seconds from a scrape
  sed -n 's/^trading_selfheal_report_delay_seconds_bucket{le="\([^"]*\)"} \([0-9]*\)$/\1 \2/p' "$1"
}

say "work directory $WORK; $HOSTS hosts x $AGENTS agents, interval ${INTERVAL}s, $CYCLES cycles"
mkdir -p "$WORK/keys" "$WORK/hosts.d" "$WORK/centre"
"$BIN/trading-heal-ctl" keygen centre --dir "$WORK/keys" >/dev/null
for ((h = 1; h <= HOSTS; h++)); do
  "$BIN/trading-heal-ctl" keygen "$(host_name $h)" --dir "$WORK/keys" >/dev/null
  cp "$WORK/keys/$(host_name $h).pub" "$WORK/hosts.d/"
done

# The centre: the hosts' state on STATE_PORT and their records on EVENTS_PORT (CURVE server, the
# allow-list hosts.d), no agents of its own.
env -i PATH="$PATH" HOME="$WORK" TRADING_HEAL_HOST=centre TRADING_HEAL_AGENTS= \
  TRADING_HEAL_RUNTIME_DIR="$WORK/centre/run" TRADING_HEAL_DATA_DIR="$WORK/centre/data" \
  TRADING_HEAL_STATE_ENDPOINT="tcp://127.0.0.1:$STATE_PORT" \
  TRADING_HEAL_EVENTS_ENDPOINT="tcp://127.0.0.1:$EVENTS_PORT" \
  TRADING_HEAL_CURVE_SECRET_KEY_FILE="$WORK/keys/centre.key" TRADING_HEAL_HOSTS_DIR="$WORK/hosts.d" \
  TRADING_HEAL_METRICS_LISTEN="127.0.0.1:$METRICS_PORT" TRADING_HEAL_API_LISTEN="127.0.0.1:$API_PORT" \
  TRADING_HEAL_INTERVAL="$INTERVAL" TRADING_HEAL_LOG_LEVEL=warn \
  "$BIN/trading-heal-exporter" >"$WORK/centre/log" 2>&1 &
CENTRE=$!
PIDS+=("$CENTRE")
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null && break
  kill -0 "$CENTRE" 2>/dev/null || { cat "$WORK/centre/log" >&2; exit 1; }
  sleep 0.1
done
rss_idle=$(status_kib "$CENTRE" VmRSS)

# The heartbeat files (the agents' ages): written now and every 60 s by one `tee` per host, far
# below the stall threshold (600 s).
refresh_heartbeats() {
  local h t
  t=$(date +%s.%N)
  for ((h = 1; h <= HOSTS; h++)); do
    echo "$t" | tee "$WORK/$(host_name $h)"/hb/crypto_agent_*_heartbeat >/dev/null
  done
}
for ((h = 1; h <= HOSTS; h++)); do
  d=$WORK/$(host_name $h)
  mkdir -p "$d/hb" "$d/run" "$d/data" "$d/hosts.d"
  agents_of "$h" | sed "s|^|$d/hb/crypto_agent_|; s|$|_heartbeat|" | xargs touch
done
refresh_heartbeats
(while sleep 60; do refresh_heartbeats; done) &
PIDS+=($!)

# One host: its private bus, its fake systemd, its probe.
start_host() {
  local h=$1 name d agents
  name=$(host_name "$h")
  d=$WORK/$name
  cat >"$d/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$d/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/>
  </policy>
  <limit name="max_match_rules_per_connection">50000</limit>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
CONF
  dbus-daemon --config-file="$d/bus.conf" --nofork --nopidfile 2>"$d/dbus.log" &
  PIDS+=($!)
  for _ in $(seq 50); do [[ -S $d/bus ]] && break; sleep 0.1; done
  # The socket can exist a moment before the daemon accepts on it: again until the fake is ready.
  local fake= try
  for try in $(seq 20); do
    DBUS_SESSION_BUS_ADDRESS=unix:path=$d/bus "$BIN/fake_systemd" 2>"$d/fake.log" &
    fake=$!
    for _ in $(seq 50); do
      grep -q ready "$d/fake.log" 2>/dev/null && break 2
      kill -0 "$fake" 2>/dev/null || break
      sleep 0.1
    done
    wait "$fake" 2>/dev/null || true
    fake=
    sleep 0.2
  done
  [[ -n $fake ]] || { echo "$name: fake_systemd not ready: $(cat "$d/fake.log")" >&2; exit 1; }
  PIDS+=("$fake")
  agents=$(agents_of "$h" | paste -sd,)
  env -i PATH="$PATH" HOME="$d" DBUS_SESSION_BUS_ADDRESS="unix:path=$d/bus" \
    TRADING_HEAL_HOST="$name" TRADING_HEAL_AGENTS="$agents" TRADING_HEAL_INTERVAL="$INTERVAL" \
    TRADING_HEAL_SYSTEMD_SCOPE=user TRADING_HEAL_LOG_LEVEL=warn \
    TRADING_HEAL_HEARTBEAT_DIR="$d/hb" TRADING_HEAL_RUNTIME_DIR="$d/run" \
    TRADING_HEAL_DATA_DIR="$d/data" TRADING_HEAL_HOSTS_DIR="$d/hosts.d" DATABASE_URL="postgresql:///bench?host=$d/no-postgres" \
    TRADING_HEAL_STATE_ENDPOINT="tcp://127.0.0.1:$STATE_PORT" \
    TRADING_HEAL_EVENTS_ENDPOINT="tcp://127.0.0.1:$EVENTS_PORT" \
    TRADING_HEAL_CURVE_SECRET_KEY_FILE="$WORK/keys/$name.key" \
    TRADING_HEAL_CURVE_SERVER_KEY_FILE="$WORK/keys/centre.pub" \
    "$BIN/trading-heal-probe" >"$d/probe.log" 2>&1 &
  PIDS+=($!)
  PROBES+=($!)
}
t_start=$(now)
for ((h = 1; h <= HOSTS; h++)); do
  start_host "$h"
  # Spread: host h starts (h-1)/HOSTS of an interval after the first (minus its own setup time).
  if ((!ALIGNED && h < HOSTS)); then
    wait_s=$(awk -v t0="$t_start" -v t="$(now)" -v h="$h" -v n="$HOSTS" -v i="$INTERVAL" \
      'BEGIN {w = t0 + h * i / n - t; print (w > 0 ? w : 0)}')
    sleep "$wait_s"
  fi
done
say "$HOSTS probes started ($(awk -v a="$t_start" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s)"

# Warm-up: every agent reported once (its series exist), then one more interval. During that
# interval the state connections are sampled every second: a second without a report burst
# (under 4 KiB) carries only the background, ZMTP's heartbeats (PING/PONG every second on CURVE
# sockets, common/peer_guard_curve.cpp) and the link's keepalive (every 2 s): its mean rate per
# connection is subtracted from the cycles' bytes below.
deadline=$(($(date +%s) + 3 * INTERVAL + 60))
while :; do
  scrape "$WORK/warm.prom" >/dev/null || true
  up=$(grep -c '^trading_agent_up{.*} 1$' "$WORK/warm.prom" || true)
  ((up >= TOTAL)) && break
  if (($(date +%s) > deadline)); then
    say "only $up of $TOTAL agents up at the centre after the warm-up; logs in $WORK"
    KEEP=1
    exit 1
  fi
  sleep 2
done
say "all $TOTAL agents up at the centre; one more interval of warm-up"
conns=$(state_conns | wc -l)
t_end=$(($(date +%s) + INTERVAL))
state_conns >"$WORK/calib.prev"
: >"$WORK/calib.deltas"
while (($(date +%s) < t_end)); do
  sleep 1
  state_conns >"$WORK/calib.cur"
  awk 'NR == FNR {b[$1] = $2; next} ($1 in b) {print $2 - b[$1]}' "$WORK/calib.prev" \
    "$WORK/calib.cur" >>"$WORK/calib.deltas"
  mv "$WORK/calib.cur" "$WORK/calib.prev"
done
bg_rate=$(awk '$1 < 4096 {s += $1; n++} END {printf "%.1f", n ? s / n : 0}' "$WORK/calib.deltas")

# The measured cycles: no scrape inside (the scrapes' cost is measured apart below). The report
# count (the histogram's, in a scrape) and the bytes (ss) are read one after the other: a burst
# falling between the two readings (~30 ms of a 30 s interval) would count on one side only.
scrape "$WORK/m0.prom" >/dev/null
state_conns >"$WORK/ss0"
cpu0=$(cpu_ticks "$CENTRE")
declare -A pcpu0
for p in "${PROBES[@]}"; do pcpu0[$p]=$(cpu_ticks "$p"); done
t0=$(now)
cycle_cpu=()
rss_max=0
for ((c = 1; c <= CYCLES; c++)); do
  c_cpu=$(cpu_ticks "$CENTRE")
  c_end=$(awk -v t0="$t0" -v c="$c" -v i="$INTERVAL" 'BEGIN {printf "%.3f", t0 + c * i}')
  while awk -v e="$c_end" -v t="$(now)" 'BEGIN {exit !(t < e)}'; do
    r=$(status_kib "$CENTRE" VmRSS)
    ((r > rss_max)) && rss_max=$r
    sleep 1
  done
  cycle_cpu+=("$(($(cpu_ticks "$CENTRE") - c_cpu))")
  say "cycle $c/$CYCLES: centre CPU $(awk -v t="${cycle_cpu[-1]}" -v k="$TICK" 'BEGIN {printf "%.0f ms", t * 1000 / k}')"
done
t1=$(now)
cpu1=$(cpu_ticks "$CENTRE")
state_conns >"$WORK/ss1"
scrape "$WORK/m1.prom" >/dev/null
probe_ticks=0
for p in "${PROBES[@]}"; do probe_ticks=$((probe_ticks + $(cpu_ticks "$p") - ${pcpu0[$p]})); done
probe_rss=0
for p in "${PROBES[@]}"; do probe_rss=$((probe_rss + $(status_kib "$p" VmRSS))); done
rss_end=$(status_kib "$CENTRE" VmRSS)
hwm=$(status_kib "$CENTRE" VmHWM)

# Timed scrapes (curl's total time: connect, request, the whole body read), one a second.
scpu0=$(cpu_ticks "$CENTRE")
ts0=$(now)
: >"$WORK/scrapes"
for ((s = 0; s < SCRAPES; s++)); do
  scrape "$WORK/last.prom" >>"$WORK/scrapes"
  sleep 1
done
scpu1=$(cpu_ticks "$CENTRE")
ts1=$(now)
# The centre's CPU over the scrape phase, minus what the reports cost over the same time.
scrape_cpu_ms=$(awk -v a="$scpu0" -v b="$scpu1" -v k="$TICK" -v t="$(awk -v a="$ts0" -v b="$ts1" 'BEGIN {print b - a}')" \
  -v base="$((cpu1 - cpu0))" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" -v n="$SCRAPES" \
  'BEGIN {printf "%.1f", ((b - a) - base * t / w) * 1000 / k / n}')
series=$(grep -vc '^#' "$WORK/last.prom")

# Figures.
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
reports=$(awk '$1 == "trading_selfheal_report_delay_seconds_count" {print $2}' "$WORK/m1.prom")
reports0=$(awk '$1 == "trading_selfheal_report_delay_seconds_count" {print $2}' "$WORK/m0.prom")
reports=$((reports - reports0))
echo
echo "== fleet: $HOSTS hosts x $AGENTS agents = $TOTAL, interval ${INTERVAL}s, $CYCLES cycles" \
  "($wall s), $( ((ALIGNED)) && echo aligned starts || echo starts spread over an interval)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
awk -v t="$((cpu1 - cpu0))" -v k="$TICK" -v w="$wall" -v c="$CYCLES" -v i="$INTERVAL" 'BEGIN {
  printf "centre CPU: %.0f ms per cycle (%.0f ms over %.1f s) = %.2f %% of a core\n",
    t * 1000 / k / c, t * 1000 / k, w, t / k / w * 100}'
printf 'centre CPU per cycle, each (ms):'
for v in "${cycle_cpu[@]}"; do awk -v t="$v" -v k="$TICK" 'BEGIN {printf " %.0f", t * 1000 / k}'; done
echo
awk -v r="$reports" -v e="$((TOTAL * CYCLES))" -v t="$((cpu1 - cpu0))" -v k="$TICK" 'BEGIN {
  printf "reports handled: %d (expected about %d) = %.1f us of centre CPU per report (everything: heartbeats, ticks included)\n",
    r, e, r ? t / k / r * 1e6 : 0}'
awk -v a="$rss_end" -v m="$rss_max" -v h="$hwm" -v i="$rss_idle" 'BEGIN {
  printf "centre RSS: %.1f MiB at the end, %.1f MiB peak sampled over the cycles, VmHWM %.1f MiB (whole run); %.1f MiB before the hosts came\n",
    a / 1024, m / 1024, h / 1024, i / 1024}'
sort -n "$WORK/scrapes" | awk -v cpu="$scrape_cpu_ms" -v s="$series" '
  {t[NR] = $1 * 1000; size = $2}
  END {printf "/metrics: %d scrapes, median %.1f ms, max %.1f ms, %.2f MB (%d series), centre CPU %.1f ms per scrape\n",
         NR, (NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2), t[NR], size / 1e6, s, cpu}'
# Report latency: trading_selfheal_report_delay_seconds over the cycles (the difference of the
# two scrapes), quantiles interpolated in the buckets as Prometheus' histogram_quantile does.
join <(delay_hist "$WORK/m0.prom" | sort) <(delay_hist "$WORK/m1.prom" | sort) |
  awk '{print $1, $3 - $2}' | sort -g | awk '
  {le[NR] = $1; c[NR] = $2}
  function q(p,   rank, i, lo, below) {
    rank = p * c[NR]
    for (i = 1; i <= NR; i++) if (c[i] >= rank) break
    if (le[i] == "+Inf") return "> " le[i - 1] " s"
    lo = i > 1 ? le[i - 1] : 0; below = i > 1 ? c[i - 1] : 0
    return sprintf("%.2f ms (bucket %g-%g ms)", (lo + (le[i] - lo) * (rank - below) / (c[i] - below)) * 1000, lo * 1000, le[i] * 1000)
  }
  END {
    for (i = 1; i <= NR; i++) if (le[i] == 0.1) within = c[i]
    printf "report latency (centre receipt - envelope ts): p50 %s, p99 %s; %.3f %% within 100 ms; max bucket: ",
      q(0.5), q(0.99), c[NR] ? within * 100 / c[NR] : 0
    for (i = 1; i <= NR; i++) if (c[i] == c[NR]) {print "<= " le[i] " s"; break}
  }'
# Bytes per report: the centre's received TCP payload on the state port over the cycles, less the
# background (its rate measured in the warm-up, times the cycles' time, per connection), over the
# reports.
join <(sort "$WORK/ss0") <(sort "$WORK/ss1") | awk -v bg="$bg_rate" -v w="$wall" -v r="$reports" \
  -v n="$conns" '
  {bytes += $4 - $2; segs += $5 - $3; k++}
  END {
    printf "wire (TCP payload: ZMTP frames, CURVE boxes): %d bytes on %d connections (%d at the start), %d segments in; background %.0f B/s per connection\n",
      bytes, k, n, segs, bg
    printf "bytes per report: %.0f (background subtracted), %.0f (all bytes / reports); %.1f reports per TCP segment\n",
      r ? (bytes - bg * w * k) / r : 0, r ? bytes / r : 0, segs ? r / segs : 0
  }'
# Cross-check: in the warm-up's samples, a second holding a host's whole burst (AGENTS reports,
# its background second and the cycle's heartbeat with it) over AGENTS.
awk -v a="$AGENTS" -v bg="$bg_rate" '$1 >= 4096' "$WORK/calib.deltas" | sort -n |
  awk -v a="$AGENTS" -v bg="$bg_rate" '{v[NR] = $1}
    END {if (NR) printf "bytes per report, cross-check: a burst second carries %d bytes (median of %d) = %.0f per report after the background\n",
           v[int((NR + 1) / 2)], NR, (v[int((NR + 1) / 2)] - bg) / a}'
awk -v t="$probe_ticks" -v k="$TICK" -v c="$CYCLES" -v h="$HOSTS" -v a="$AGENTS" -v r="$probe_rss" 'BEGIN {
  printf "probes: %.1f ms CPU per probe per cycle (%.1f us per agent), RSS %.1f MiB each on average\n",
    t * 1000 / k / c / h, t * 1e6 / k / c / h / a, r / 1024 / h}'
refused=$(awk '/^trading_selfheal_messages_rejected_total/ {s += $2} END {print s + 0}' "$WORK/last.prom")
hosts_up=$(grep -c '^trading_selfheal_host_up{host="h[0-9]*"} 1$' "$WORK/last.prom" || true)
echo "centre: $hosts_up of $HOSTS hosts up, $refused messages rejected"
