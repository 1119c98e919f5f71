#!/usr/bin/env bash
# Heal time on the testbed: from an agent's last decision to its new process (the new MainPID's
# start), over many stalls, for each check interval x model behaviour; the crash path (kill -9,
# Restart=no) from the kill to the new MainPID; and whether healthy agents keep their check
# cadence while three others stall and the model takes 10 s. The four daemons run as user units
# (deploy.sh --user), stall threshold 20 s, everything else at its default except the cooldown
# (5 s, so that one agent's repeated stalls measure detection, not the rate limits).
# Figures, not pass/fail: CSV in $OUT/heal.csv, a summary in $OUT/heal-report.md.
#
#   bench/heal/run.sh [--stalls N] [--intervals "30 5"] [--models "0 10 down hang"] [--crashes N]
#
# Environment: BUILD_DIR (default build), TRADING_HEAL_BED_DIR (default $BUILD_DIR/heal/bed;
# started if not running, stopped at the end if this script started it).
set -euo pipefail
# The whole script is read before it runs (a block): editing it during a long run cannot break it.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
stalls=10
intervals="30 5"
models="0 10 down hang"
crashes=5
while (($#)); do
  case $1 in
    --stalls) stalls=${2:?}; shift 2 ;;
    --intervals) intervals=${2:?}; shift 2 ;;
    --models) models=${2:?}; shift 2 ;;
    --crashes) crashes=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "heal bench: unknown argument $1" >&2; exit 64 ;;
  esac
done

build=$(realpath -m "${BUILD_DIR:-$ROOT/build}")
OUT=$build/heal
export TRADING_HEAL_BED_DIR=${TRADING_HEAL_BED_DIR:-$OUT/bed}
export TRADING_HEAL_BIN_DIR=$build/bin
BED=$ROOT/tests/bed/bed.sh
NAME=heal
WORK=/tmp/th-bench-$NAME
API=39221
METRICS=39220
THRESHOLD=20
mkdir -p "$OUT"
CSV=$OUT/heal.csv
t_start=$(date +%s)
say() { printf '[heal %5ss] %s\n' "$(( $(date +%s) - t_start ))" "$*" >&2; }

started_bed=0
if ! "$BED" status >/dev/null 2>&1; then
  say "starting the testbed"
  "$BED" start >"$OUT/bed.log" 2>&1
  started_bed=1
fi
set -a
# shellcheck source=/dev/null
. "$TRADING_HEAL_BED_DIR/env"
set +a
read -ra AGENTS <<<"$(tr ',' ' ' <<<"$TRADING_HEAL_AGENTS")"

deploy() {
  "$ROOT/deploy/deploy.sh" --user --instance "$NAME" --build-dir "$build" --prefix "$WORK/prefix" "$@"
}
undeploy() { deploy --uninstall --purge >/dev/null 2>&1 || true; }
fake() { curl -fsS --max-time 10 -X POST -d "$2" "$OLLAMA_HOST$1" >/dev/null; }
cleanup() {
  undeploy
  fake /_fake/reset '{}' || true
  "$BED" reset >/dev/null 2>&1 || true
  if ((started_bed)); then "$BED" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# /status wants the token deploy.sh made for this deployment.
api() {
  curl -fsS --max-time 5 -H "Authorization: Bearer $(cat "$XDG_CONFIG_HOME/trading-heal/$NAME.token")" \
    "http://127.0.0.1:$API$1"
}
main_pid() { systemctl --user show -p MainPID --value "crypto-agent@$1.service"; }
# The main process's start, epoch seconds with microseconds.
started_at() {
  local v
  v=$(systemctl --user show --timestamp=us+utc -p ExecMainStartTimestamp --value "crypto-agent@$1.service")
  date -d "$v" +%s.%6N
}
symbol() { echo "${1/_/-}"; }
last_decision_before() {  # AGENT EPOCH
  psql "$SUPER_DATABASE_URL" -X -At -c \
    "SELECT max(timestamp) FROM btc.decisions WHERE symbol = '$(symbol "$1")' AND timestamp < $2"
}
healthy() {
  api /status 2>/dev/null | jq -e --arg a "$1" '.agents[] | select(.agent == $a) | .verdict == "HEALTHY"' >/dev/null
}
fleet_healthy() {
  api /status 2>/dev/null | jq -e '[.agents[].verdict] | length > 0 and all(. == "HEALTHY")' >/dev/null
}
wait_for() {  # SECONDS CMD...
  local until=$(( $(date +%s) + $1 ))
  shift
  until "$@"; do (( $(date +%s) < until )) || return 1; sleep 0.2; done
}

setup() {  # INTERVAL MODEL
  local interval=$1 model=$2 host=$OLLAMA_HOST
  undeploy
  "$BED" reset >/dev/null 2>&1
  fake /_fake/reset '{}'
  case $model in
    0) fake /_fake/mode '{"mode":"ok"}' ;;
    down) host=http://127.0.0.1:9 ;;
    # Longer than OLLAMA_TIMEOUT (30 s): the diagnoser gives up first. Not longer: each
    # request holds one of the fake server's threads for that long.
    hang) fake /_fake/mode '{"mode":"slow","seconds":45}' ;;
    *) fake /_fake/mode "{\"mode\":\"slow\",\"seconds\":$model}" ;;
  esac
  rm -rf "$WORK" && mkdir -p "$WORK"
  deploy --env "TRADING_HEAL_AGENTS=$TRADING_HEAL_AGENTS" --env "DATABASE_URL=$DATABASE_URL" \
    --env "TRADING_HEAL_HEARTBEAT_DIR=$TRADING_HEAL_HEARTBEAT_DIR" --env "OLLAMA_HOST=$host" \
    --env "TRADING_HEAL_RUNTIME_DIR=$WORK/run" --env "TRADING_HEAL_DATA_DIR=$WORK/data" \
    --env "TRADING_HEAL_METRICS_LISTEN=127.0.0.1:$METRICS" --env "TRADING_HEAL_API_LISTEN=127.0.0.1:$API" \
    --env "TRADING_HEAL_INTERVAL=$interval" --env "TRADING_HEAL_STALL_THRESHOLD=$THRESHOLD" \
    --env "TRADING_HEAL_STARTUP_GRACE=5" --env "TRADING_HEAL_COOLDOWN=5" >"$OUT/deploy.log" 2>&1 ||
    { tail -20 "$OUT/deploy.log" >&2; exit 1; }
  wait_for 120 fleet_healthy || { say "fleet not healthy after deploy"; exit 1; }
}

# One stall of AGENT; prints the heal time (s) or "fail".
one_stall() {
  local a=$1 old new t_new last
  old=$(main_pid "$a")
  "$BED" fault "$a" stall >/dev/null 2>&1
  if ! wait_for 120 bash -c "p=\$(systemctl --user show -p MainPID --value crypto-agent@$a.service); [[ \$p != 0 && \$p != $old ]]"; then
    echo fail
    return
  fi
  new=$(main_pid "$a")
  t_new=$(started_at "$a")
  last=$(last_decision_before "$a" "$t_new")
  wait_for 60 healthy "$a" || true
  awk -v n="$t_new" -v l="$last" 'BEGIN { printf "%.2f\n", n - l }'
}

# A lane: stalls its agents one after the other; appends CSV rows.
lane() {  # INTERVAL MODEL COUNT AGENT...
  local interval=$1 model=$2 count=$3 k=0 a h
  shift 3
  local agents=("$@")
  while ((k < count)); do
    a=${agents[$((k % ${#agents[@]}))]}
    h=$(one_stall "$a")
    echo "stall,$interval,$model,$a,$h" >>"$CSV"
    say "interval=$interval model=$model $a heal=${h}s"
    k=$((k + 1))
  done
}

echo "kind,interval,model,agent,seconds" >"$CSV"
half=$(( (stalls + 1) / 2 ))
for interval in $intervals; do
  for model in $models; do
    say "interval $interval s, model $model: $stalls stalls in two lanes"
    setup "$interval" "$model"
    # Two agents at most fail at once: below TRADING_HEAL_GLOBAL_MIN_AGENTS (3), no global incident.
    lane "$interval" "$model" "$half" "${AGENTS[0]}" "${AGENTS[1]}" "${AGENTS[2]}" &
    sleep 7
    lane "$interval" "$model" "$((stalls - half))" "${AGENTS[3]}" "${AGENTS[4]}" "${AGENTS[5]}"
    wait
  done
  # Crash: kill -9 with Restart=no, from the kill to the new process.
  say "interval $interval s: $crashes crashes"
  setup "$interval" 0
  for k in $(seq "$crashes"); do
    a=${AGENTS[$((k % ${#AGENTS[@]}))]}
    "$BED" restart-policy "$a" no >/dev/null 2>&1
    wait_for 30 healthy "$a" || true
    old=$(main_pid "$a")
    t_kill=$(date +%s.%6N)
    kill -9 "$old"
    wait_for 30 bash -c "p=\$(systemctl --user show -p MainPID --value crypto-agent@$a.service); [[ \$p != 0 && \$p != $old ]]" || true
    t_new=$(started_at "$a")
    c=$(awk -v n="$t_new" -v k="$t_kill" 'BEGIN { printf "%.3f\n", n - k }')
    echo "crash,$interval,0,$a,$c" >>"$CSV"
    say "interval=$interval crash $a restarted after ${c}s"
    wait_for 30 healthy "$a" || true
    sleep 6  # past the cooldown before the next agent's crash
  done
done

# Cadence: three agents stall together (one global incident) while the model takes 10 s; the
# healthy agents' reports keep coming every interval.
say "cadence: 3 stalled, model 10 s, interval 5 s"
setup 5 10
tap_out=$OUT/cadence.jsonl
TRADING_HEAL_RUNTIME_DIR=$WORK/run timeout 75 "$build/bin/trading-heal-tap" --user --instance "$NAME" \
  --kind health >"$tap_out" 2>/dev/null &
tap_pid=$!
sleep 5
for a in "${AGENTS[@]:0:3}"; do "$BED" fault "$a" stall sticky >/dev/null 2>&1; done
wait "$tap_pid" || true
for a in "${AGENTS[@]:3:3}"; do
  gap=$(jq -r --arg a "$a" 'select(.agent == $a) | .ts' "$tap_out" |
    awk 'NR > 1 { g = $1 - p; if (g > m) m = g } { p = $1 } END { printf "%.2f", m }')
  echo "cadence,5,10,$a,$gap" >>"$CSV"
  say "healthy $a: largest gap between its reports ${gap}s (interval 5 s)"
done

# Summary.
{
  echo "# Heal time"
  echo
  echo "$(date -u +%F): bench/heal/run.sh on the testbed, threshold $THRESHOLD s, $stalls stalls per row."
  echo "Heal = the new MainPID's start - the agent's last decision; goal: threshold + 2.5 s median,"
  echo "+ 4 s max with the model at 0 s or down; + 12 s at 10 s; + DIAGNOSIS_WAIT (17 s) + 1 s hanging."
  echo
  echo "| interval | model | n | median | max | median - threshold | max - threshold |"
  echo "|---|---|---|---|---|---|---|"
  for interval in $intervals; do
    for model in $models; do
      grep "^stall,$interval,$model," "$CSV" | cut -d, -f5 | grep -v fail | sort -n |
        awk -v i="$interval" -v m="$model" -v t="$THRESHOLD" '
          { v[NR] = $1 } END {
            if (NR == 0) { printf "| %s s | %s | 0 | - | - | - | - |\n", i, m; exit }
            med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "| %s s | %s | %d | %.2f s | %.2f s | +%.2f s | +%.2f s |\n", i, m, NR, med, v[NR], med - t, v[NR] - t }'
    done
  done
  echo
  echo "Failed stalls (no restart within 120 s): $(grep -c ',fail$' "$CSV" || true)."
  echo
  echo "| crash (kill -9, Restart=no) | n | median | max |"
  echo "|---|---|---|---|"
  for interval in $intervals; do
    grep "^crash,$interval," "$CSV" | cut -d, -f5 | sort -n |
      awk -v i="$interval" '{ v[NR] = $1 } END { if (NR) printf "| interval %s s | %d | %.3f s | %.3f s |\n", i, NR, v[int((NR + 1) / 2)], v[NR] }'
  done
  echo
  echo "Cadence with 3 agents stalled and the model at 10 s (interval 5 s), largest gap between a"
  echo "healthy agent's reports: $(grep '^cadence,' "$CSV" | cut -d, -f4,5 | tr '\n' ' ')"
} >"$OUT/heal-report.md"
cat "$OUT/heal-report.md"
exit
}
