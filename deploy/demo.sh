#!/usr/bin/env bash
# The live demo: trading-heal healing a stalled trading agent on a local testbed.
#
#   deploy/demo.sh           install, build, start everything, inject a stall into BTC_USDT,
#                            narrate detection → diagnosis → restart → recovery, print the
#                            audit, the fleet status and the URLs, then stop everything
#   deploy/demo.sh --keep    the same, but leave it all running to look around
#   deploy/demo.sh --down    stop everything a kept demo started
#
# Everything runs on loopback: PostgreSQL, journald, a systemd user manager with six simulated
# agents (tests/bed), the fake Ollama (or a real one when DEMO_OLLAMA_HOST answers), the four
# daemons as user units made from the project's own unit files, and Prometheus with the shipped
# alert rules. The daemons are installed by deploy/deploy.sh --user, as an operator without root
# would. Short thresholds (interval 2 s, stall after 20 s) so it completes in ~2 minutes.
# Ports: 9120 (metrics), 9121 (status/audit API), 9190 (Prometheus). Runs as root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DEMO_BUILD_DIR:-$ROOT/build-demo}
export TRADING_HEAL_BED_DIR=${DEMO_BED_DIR:-/tmp/trading-heal-demo}
export TRADING_HEAL_BIN_DIR=$BUILD/bin
DEMO=$TRADING_HEAL_BED_DIR/demo
INSTANCE=demo
VICTIM=${DEMO_AGENT:-BTC_USDT}
PROM_PORT=9190
T0=$(date +%s)

# The state dir (default in /tmp, and the demo runs as root): nothing is sourced from it or
# signalled from its PID files unless it is ours, no symlink, writable by nobody else.
trusted_dir() {
  local d=$1 mode
  [[ -e $d || -L $d ]] || return 0
  [[ ! -L $d && -d $d ]] || { echo "not a plain directory"; return 1; }
  [[ $(stat -c %u "$d") == "$(id -u)" ]] || { echo "owned by uid $(stat -c %u "$d")"; return 1; }
  mode=$(stat -c %a "$d")
  (( (8#$mode & 8#022) == 0 )) || { echo "writable by group or others (mode $mode)"; return 1; }
}
for d in "$TRADING_HEAL_BED_DIR" "$DEMO"; do
  why=$(trusted_dir "$d") || { echo "demo: error: refusing $d: $why" >&2; exit 1; }
done
# A PID file holds "PID STARTTIME": signalled only while that PID is still that process.
start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
save_pid() { echo "$1 $(start_time "$1")" >"$2"; }
still_ours() {  # still_ours FILE: prints the PID when it still runs as the recorded process
  local pid start
  read -r pid start <"$1" 2>/dev/null || return 1
  [[ $pid =~ ^[0-9]+$ && -n $start && $(start_time "$pid") == "$start" ]] && echo "$pid"
}

say() { printf '\033[1m[demo %3ss]\033[0m %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }
bed() { "$ROOT/tests/bed/bed.sh" "$@"; }
bed_env() { set -a; . "$TRADING_HEAL_BED_DIR/env"; set +a; }
# The API wants the token deploy.sh made for /status and /audit (not for /health).
api() {
  local token=${XDG_CONFIG_HOME:-$HOME/.config}/trading-heal/$INSTANCE.token auth=()
  [[ -r $token ]] && auth=(-H "Authorization: Bearer $(<"$token")")
  curl -fsS --max-time 5 "${auth[@]}" "http://127.0.0.1:9121$1"
}

down() {
  if [[ -f $TRADING_HEAL_BED_DIR/env ]]; then
    bed_env
    "$ROOT/deploy/deploy.sh" --user --instance "$INSTANCE" --uninstall --purge >/dev/null 2>&1 ||
      systemctl --user stop "trading-heal@$INSTANCE.target" 'trading-heal-*@*.service' 2>/dev/null || true
  fi
  for f in "$DEMO"/*.pid; do
    [[ -f $f ]] || continue
    local pid
    pid=$(still_ours "$f") || { rm -f "$f"; continue; }
    # Narrators were started as process groups (set -m); Prometheus is a single process.
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  bed stop 2>/dev/null || true
}

if [[ ${1:-} == --down ]]; then
  down
  echo "demo stopped"
  exit 0
fi
KEEP=0
[[ ${1:-} == --keep ]] && KEEP=1
[[ $# -eq 0 || $KEEP == 1 ]] || die "usage: deploy/demo.sh [--keep | --down]"
[[ $(id -u) -eq 0 ]] || die "run as root (the testbed starts PostgreSQL as postgres and a user manager)"

say "installing what is missing (Debian packages)"
"$ROOT/deploy/install-deps.sh"

say "building (RelWithDebInfo, -j2) into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRADING_HEAL_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j2 --target trading-heal-probe trading-heal-diagnoser trading-heal-actuator \
  trading-heal-exporter trading-heal-tap trading-heal-ctl trading-heal-agent-sim \
  trading-heal-fake-ollama 2>&1 | grep -E "error|warning|Built target trading-heal" || true
for b in probe diagnoser actuator exporter tap ctl agent-sim fake-ollama; do
  [[ -x $BUILD/bin/trading-heal-$b ]] || die "build failed: no $BUILD/bin/trading-heal-$b"
done

for port in 9120 9121 $PROM_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is busy (a demo left running? deploy/demo.sh --down)"
  fi
done

say "starting the testbed: PostgreSQL, journald, systemd user manager, six agents, fake Ollama"
down >/dev/null 2>&1 || true
rm -rf "$DEMO"  # a fresh audit and fresh state: the demo shows this run only
bed start
bed_env
trap 'status=$?; if [[ $KEEP == 0 || $status != 0 ]]; then say "stopping everything"; down >/dev/null 2>&1; fi' EXIT
(umask 022 && mkdir -p "$DEMO/run" "$DEMO/data" "$DEMO/prometheus")
why=$(trusted_dir "$DEMO") || die "refusing $DEMO: $why"

ollama=$OLLAMA_HOST
if [[ -n ${DEMO_OLLAMA_HOST:-} ]] && curl -fsS --max-time 2 "$DEMO_OLLAMA_HOST/api/version" >/dev/null 2>&1; then
  ollama=$DEMO_OLLAMA_HOST
  say "using the real Ollama at $ollama"
else
  # A model's typical latency, so the narration shows the restart waiting for the diagnosis.
  curl -fsS -X POST -d '{"mode":"slow","seconds":3}' "$OLLAMA_HOST/_fake/mode" >/dev/null
  say "using the fake Ollama at $ollama (answers in 3 s; set DEMO_OLLAMA_HOST for a real one)"
fi

# The demo's settings: short thresholds, the testbed's database, heartbeats and Ollama.
settings=(
  "TRADING_HEAL_AGENTS=$TRADING_HEAL_AGENTS" TRADING_HEAL_SYSTEMD_SCOPE=user
  TRADING_HEAL_INTERVAL=2 TRADING_HEAL_STALL_THRESHOLD=20 TRADING_HEAL_STARTUP_GRACE=15
  TRADING_HEAL_COOLDOWN=10 TRADING_HEAL_DIAGNOSIS_WAIT=12
  "TRADING_HEAL_RUNTIME_DIR=$DEMO/run" "TRADING_HEAL_DATA_DIR=$DEMO/data"
  "TRADING_HEAL_HEARTBEAT_DIR=$TRADING_HEAL_HEARTBEAT_DIR"
  TRADING_HEAL_METRICS_LISTEN=127.0.0.1:9120 TRADING_HEAL_API_LISTEN=127.0.0.1:9121
  "DATABASE_URL=$DATABASE_URL" "OLLAMA_HOST=$ollama" OLLAMA_TIMEOUT=8
)
printf '%s\n' "${settings[@]}" >"$DEMO/$INSTANCE.env"
env_args=()
for kv in "${settings[@]}"; do env_args+=(--env "$kv"); done

say "deploying the four daemons as user units (deploy/deploy.sh --user: the project's units, hardened)"
"$ROOT/deploy/deploy.sh" --user --instance "$INSTANCE" --build-dir "$BUILD" "${env_args[@]}" |
  sed 's/^/    /'
for i in $(seq 100); do
  api /health >/dev/null 2>&1 && break
  sleep 0.2
done
api /health >/dev/null 2>&1 || {
  journalctl -n 30 --no-pager -u 'trading-heal-*' >&2 || true
  die "trading-heal did not become healthy"
}
say "trading-heal is up: $(api /health)"

say "starting Prometheus on 127.0.0.1:$PROM_PORT with the shipped alert rules"
cp "$ROOT/deploy/prometheus/alert_rules.yml" "$DEMO/prometheus/"
cat >"$DEMO/prometheus/prometheus.yml" <<PROM
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: [alert_rules.yml]
scrape_configs:
  - job_name: trading-selfheal
    static_configs: [{targets: ['127.0.0.1:9120']}]
PROM
promtool check config "$DEMO/prometheus/prometheus.yml" >/dev/null
setsid prometheus --config.file="$DEMO/prometheus/prometheus.yml" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.path="$DEMO/prometheus/data" \
  </dev/null >"$DEMO/prometheus/prometheus.log" 2>&1 &
save_pid $! "$DEMO/prometheus.pid"

# The narration: the tap stream (probe, diagnoser, actuator) condensed to one line an event,
# plus the actuator's SELF-HEAL log line and the audit events as they become durable.
narrate() {
  declare -A verdict phase
  ( set -a; . "$DEMO/$INSTANCE.env"; set +a; exec "$BUILD/bin/trading-heal-tap" ) 2>/dev/null |
    jq -r --unbuffered '[.kind, .agent // "", .verdict // .fields.state // "",
        (.decision_age_seconds // "" | tostring), (.consecutive_failures // "" | tostring),
        .cause // "", .origin // "", (.latency_seconds // "" | tostring), .detail // ""]
        | map(tostring | gsub("\u001f"; " ")) | join("\u001f")' |
    # \x1f, not a tab: read would merge the tabs around an empty field.
    while IFS=$'\x1f' read -r kind agent state age fails cause origin latency detail; do
      case $kind in
        health)
          if [[ ${verdict[$agent]:-HEALTHY} != "$state" ]]; then
            say "probe     $agent: ${verdict[$agent]:-HEALTHY} → $state (decision age ${age%.*}s, consecutive failures $fails) $detail"
            verdict[$agent]=$state
          fi ;;
        diagnosis)
          say "diagnoser $agent: \"$cause\" (from $origin, ${latency:0:4}s)" ;;
        event)
          if [[ -n $state && ${phase[$agent]:-HEALTHY} != "$state" ]]; then
            say "actuator  $agent: ${phase[$agent]:-HEALTHY} → $state"
            phase[$agent]=$state
          fi ;;
      esac
    done
}
set -m  # background jobs get process groups of their own: stopping one stops its whole pipeline
narrate &
save_pid $! "$DEMO/narrate.pid"
journalctl -f -n 0 -o cat -u "trading-heal-actuator@$INSTANCE.service" 2>/dev/null |
  grep --line-buffered -E "SELF-HEAL|restart done|recovered" |
  while read -r line; do say "journal   ${line#<[0-9]>}"; done &
save_pid $! "$DEMO/journal.pid"
set +m

sleep 4  # let the fleet show healthy for a couple of cycles before the fault
say "injecting a stall into $VICTIM: alive, logs 'Price unavailable' and a DB lock error, writes no rows"
injected=$(date +%s)
bed fault "$VICTIM" stall
IFS=_ read -r base quote _ <<<"$VICTIM"
symbol=$base-$quote
deadline=$(($(date +%s) + 180))
rule_seen=inactive
rule_state() {
  curl -fsS --max-time 2 "http://127.0.0.1:$PROM_PORT/api/v1/rules" 2>/dev/null |
    jq -r '[.data.groups[].rules[] | select(.name=="TradingAgentStalled") | .state] | first // "inactive"'
}
until api "/audit?symbol=$symbol&action=recovered&since=$injected" 2>/dev/null | jq -e 'length > 0' >/dev/null; do
  (($(date +%s) < deadline)) || die "no recovery within 180 s; see trading-heal-ctl status and journalctl"
  state=$(rule_state)
  if [[ $state != inactive && $rule_seen == inactive ]]; then
    rule_seen=$state
    say "prometheus TradingAgentStalled{symbol=\"$symbol\"} is $state (it fires after 5 min)"
  fi
  sleep 1
done
sleep 3
for f in "$DEMO/narrate.pid" "$DEMO/journal.pid"; do
  pid=$(still_ours "$f") && kill -- "-$pid" 2>/dev/null
done
rm -f "$DEMO/narrate.pid" "$DEMO/journal.pid"

say "the audit (GET :9121/audit?symbol=$symbol):"
api "/audit?symbol=$symbol" | jq -c '.[] | {ts, action, success, reason, diagnosis, detail}'
say "trading-heal-ctl status:"
"$BUILD/bin/trading-heal-ctl" --user --instance "$INSTANCE" status || true
say "Prometheus scraped trading-heal: up=$(curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query?query=up%7Bjob%3D%22trading-selfheal%22%7D" |
  jq -r '.data.result[0].value[1] // "?"'); TradingAgentStalled: $(
  now=$(rule_state); [[ $rule_seen != inactive ]] && echo "$rule_seen during the stall, now $now" ||
  echo "$now (Prometheus evaluates every 5 s; it fires after 5 min)")"
cat <<URLS

  metrics      http://127.0.0.1:9120/metrics
  status       http://127.0.0.1:9121/status      (trading-heal-ctl status)
  audit        http://127.0.0.1:9121/audit       (trading-heal-ctl audit, /audit/stream for live)
  prometheus   http://127.0.0.1:$PROM_PORT/alerts
  live stream  $BUILD/bin/trading-heal-tap  (with TRADING_HEAL_RUNTIME_DIR=$DEMO/run)
URLS
if [[ $KEEP == 1 ]]; then
  say "left running (--keep); stop it with: deploy/demo.sh --down"
else
  say "done in $(($(date +%s) - T0)) s; stopping everything (use --keep to look around)"
fi
