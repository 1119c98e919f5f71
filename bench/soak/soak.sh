#!/usr/bin/env bash
# The soak run: the four daemons as an operator runs them — default settings (interval 30 s,
# stall threshold 600 s, OLLAMA_TIMEOUT 30 s), deployed as user units by deploy.sh --user on the
# testbed — for hours, with one agent stalled every 15 minutes (round robin). Every stall must be
# healed (a successful restart and a recovery in the audit); the daemons must not restart
# themselves; their RSS and open file descriptors are read at the start and at the end.
# Not part of .ci/run (it takes hours). Figures: $OUT/soak-report.md.
#
#   bench/soak/soak.sh [--hours H] [--every MINUTES] [--model-seconds S]
#
# Environment: BUILD_DIR (default build), TRADING_HEAL_BED_DIR (default $BUILD_DIR/soak/bed;
# the bed is started if it is not running, and stopped at the end only if this script started
# it). The fake Ollama answers in --model-seconds (default 8: Ollama's typical 5-15 s).
set -euo pipefail
# The whole script is read before it runs (a block): editing it during a long run cannot break it.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
hours=2
every_min=15
model_s=8
while (($#)); do
  case $1 in
    --hours) hours=${2:?}; shift 2 ;;
    --every) every_min=${2:?}; shift 2 ;;
    --model-seconds) model_s=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown argument $1" >&2; exit 64 ;;
  esac
done
[[ $hours =~ ^[0-9]+(\.[0-9]+)?$ && $every_min =~ ^[0-9]+$ && $model_s =~ ^[0-9]+$ ]] ||
  { echo "soak: --hours, --every and --model-seconds take numbers" >&2; exit 64; }

build=$(realpath -m "${BUILD_DIR:-$ROOT/build}")
OUT=$build/soak
export TRADING_HEAL_BED_DIR=${TRADING_HEAL_BED_DIR:-$OUT/bed}
export TRADING_HEAL_BIN_DIR=$build/bin
BED=$ROOT/tests/bed/bed.sh
NAME=soak
WORK=/tmp/th-soak-$NAME
METRICS_PORT=39120
API_PORT=39121
mkdir -p "$OUT"
REPORT=$OUT/soak-report.md
LOG=$OUT/soak.log
t_start=$(date +%s)
say() { printf '[soak %5ss] %s\n' "$(( $(date +%s) - t_start ))" "$*" | tee -a "$LOG" >&2; }
: >"$LOG"

started_bed=0
if ! "$BED" status >/dev/null 2>&1; then
  say "starting the testbed in $TRADING_HEAL_BED_DIR"
  "$BED" start >>"$LOG" 2>&1
  started_bed=1
fi
set -a
# shellcheck source=/dev/null
. "$TRADING_HEAL_BED_DIR/env"
set +a

deploy() {
  "$ROOT/deploy/deploy.sh" --user --instance "$NAME" --build-dir "$build" --prefix "$WORK/prefix" "$@"
}
cleanup() {
  say "removing the deployment"
  deploy --uninstall --purge >>"$LOG" 2>&1 || true
  curl -fsS -X POST -d '{}' "$OLLAMA_HOST/_fake/reset" >/dev/null 2>&1 || true
  if ((started_bed)); then "$BED" stop >>"$LOG" 2>&1 || true; fi
}
trap cleanup EXIT

rm -rf "$WORK"
mkdir -p "$WORK"
curl -fsS -X POST -d "{\"mode\":\"slow\",\"seconds\":$model_s}" "$OLLAMA_HOST/_fake/mode" >/dev/null
# Only what wires the daemons to the testbed; every policy setting keeps its default.
say "deploying the four daemons with default settings (instance $NAME)"
deploy --env "TRADING_HEAL_AGENTS=$TRADING_HEAL_AGENTS" --env "DATABASE_URL=$DATABASE_URL" \
  --env "TRADING_HEAL_HEARTBEAT_DIR=$TRADING_HEAL_HEARTBEAT_DIR" --env "OLLAMA_HOST=$OLLAMA_HOST" \
  --env "TRADING_HEAL_RUNTIME_DIR=$WORK/run" --env "TRADING_HEAL_DATA_DIR=$WORK/data" \
  --env "TRADING_HEAL_METRICS_LISTEN=127.0.0.1:$METRICS_PORT" \
  --env "TRADING_HEAL_API_LISTEN=127.0.0.1:$API_PORT" >>"$LOG" 2>&1

# /status and /audit want the token deploy.sh made for this deployment.
api() {
  curl -fsS --max-time 10 -H "Authorization: Bearer $(cat "$XDG_CONFIG_HOME/trading-heal/$NAME.token")" \
    "http://127.0.0.1:$API_PORT$1"
}
main_pid() { systemctl --user show -p MainPID --value "$1"; }
unit_of() { echo "trading-heal-$1@$NAME.service"; }
# RSS (KiB) and open fds of each daemon, one line each.
resources() {
  local c pid
  for c in probe diagnoser actuator exporter; do
    pid=$(main_pid "$(unit_of "$c")")
    printf '%s pid=%s rss_kib=%s fds=%s\n' "$c" "$pid" \
      "$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")" "$(ls "/proc/$pid/fd" | wc -l)"
  done
}
# Audit events of `symbol` with `action` since the epoch `since`, as ts lines.
events_since() {
  api "/audit?symbol=$1&action=$2&limit=1000" |
    jq -r --argjson since "$3" '.[] | select((.ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) >= ($since | floor)) | "\(.ts) \(.success)"'
}

# Settle: the fleet healthy, then the first reading.
until api /status 2>/dev/null | jq -e '[.agents[].verdict] | length > 0 and all(. == "HEALTHY")' >/dev/null; do
  (( $(date +%s) - t_start < 300 )) || { say "fleet not healthy after 300 s"; exit 1; }
  sleep 5
done
before=$(resources)
say "start:"$'\n'"$before"
read -ra agents <<<"$(tr ',' ' ' <<<"$TRADING_HEAL_AGENTS")"
end=$(awk -v s="$t_start" -v h="$hours" 'BEGIN { printf "%d", s + h * 3600 }')
stalls=() results=()
n=0 healed=0 failed=0
next=$(date +%s)
while (( $(date +%s) < end - every_min * 60 + 60 || n == 0 )); do
  while (( $(date +%s) < next )); do sleep 5; done
  victim=${agents[$(( n % ${#agents[@]} ))]}
  sym=${victim/_/-}
  old=$(main_pid "crypto-agent@$victim.service")
  t0=$(date +%s)
  "$BED" fault "$victim" stall >>"$LOG" 2>&1
  say "stall $((n + 1)): $victim (pid $old)"
  next=$(( t0 + every_min * 60 ))
  ok=0
  while (( $(date +%s) < next - 10 )); do
    if [[ -n $(events_since "$sym" recovered "$t0") ]]; then ok=1; break; fi
    sleep 10
  done
  restart=$(events_since "$sym" restart "$t0" | tail -1)
  new=$(main_pid "crypto-agent@$victim.service")
  if ((ok)) && [[ $restart == *" true" ]]; then
    healed=$((healed + 1))
    rts=$(date -d "${restart%% *}" +%s)
    line="| $((n + 1)) | $victim | healed | restart $((rts - t0)) s after the stall began | pid $old -> $new |"
  else
    failed=$((failed + 1))
    line="| $((n + 1)) | $victim | NOT HEALED | restart: ${restart:-none} | pid $old -> $new |"
  fi
  say "${line//|/ }"
  results+=("$line")
  n=$((n + 1))
done
# The daemons run the whole --hours: the last stall's heal is followed by quiet until the end.
if (( $(date +%s) < end )); then say "quiet until the end ($(( end - $(date +%s) )) s)"; fi
while (( $(date +%s) < end )); do sleep 5; done
after=$(resources)
say "end:"$'\n'"$after"

restarted_daemons=""
while read -r c pid _; do
  p0=$(grep "^$c " <<<"$before" | sed 's/.*pid=\([0-9]*\).*/\1/')
  [[ ${pid#pid=} == "$p0" ]] || restarted_daemons+=" $c"
done <<<"$after"
{
  echo "# Soak run"
  echo
  echo "$(date -u +%FT%TZ): $(( ($(date +%s) - t_start) / 60 )) min, default settings (interval 30 s,"
  echo "threshold 600 s), model answering in $model_s s, a stall every $every_min min."
  echo
  echo "Stalls: $n, healed: $healed, not healed: $failed. Daemons restarted during the run:${restarted_daemons:- none}."
  echo
  echo "| # | agent | outcome | when | agent MainPID |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${results[@]}"
  echo
  echo "| daemon | start | end |"
  echo "|---|---|---|"
  while read -r c rest; do
    echo "| $c | $rest | $(grep "^$c " <<<"$after" | cut -d' ' -f2-) |"
  done <<<"$before"
  echo
  echo "Bus reconnects: $(curl -fsS "127.0.0.1:$METRICS_PORT/metrics" | grep '^trading_selfheal_bus_reconnects_total' | tr '\n' ' ')"
} >"$REPORT"
cat "$REPORT" >&2
((failed == 0)) && [[ -z $restarted_daemons ]]
exit
}
