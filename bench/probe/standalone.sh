#!/usr/bin/env bash
# bench_probe_cycle without the testbed: PostgreSQL (holding run_bench.sh's `load`) plus a private
# dbus-daemon serving fake_systemd (a stand-in for systemd's manager), and a writer emulating the
# live fleet: every 0.5 s a tenth of the 900 non-stale bench symbols inserts a row stamped now, so
# each writes every 5 s and the newest rows lie in the table's last pages, in time order, as a
# real fleet's inserts do (run_bench.sh's `load` lays the rows out symbol by symbol instead).
#   SUPER_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/postgres \
#   TRADING_HEAL_BIN_DIR=build/bin bench/probe/standalone.sh [AGENTS...]   (default 100 1000)
# Per agent count: cycles back to back, then paced (BENCH_PACE=1, one 5 s interval apart);
# BIN_BEFORE=dir runs a second bench_probe_cycle too, for before/after figures. The writer's rows
# are deleted at the end. The units are not real: no /proc of real agents, no real systemd
# signals (the probe's cache then refreshes 1/32 of the units per query, as on a quiet manager).
set -euo pipefail
DB=${SUPER_DATABASE_URL:?set SUPER_DATABASE_URL}
BIN=${TRADING_HEAL_BIN_DIR:?set TRADING_HEAL_BIN_DIR}
SQL="psql -X -q $DB -v ON_ERROR_STOP=1"
WORK=$(mktemp -d /tmp/trading-heal-probe-standalone.XXXXXX)
PIDS=()
max_id=$($SQL -At -c 'SELECT coalesce(max(id), 0) FROM btc.decisions')
cleanup() {
  local p
  touch "$WORK/stop"  # the writer's loop ends, then its psql
  [[ -z ${WRITER:-} ]] || wait "$WRITER" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  $SQL -c "DELETE FROM btc.decisions WHERE id > $max_id" >/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$WORK/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/>
  </policy>
  <limit name="max_match_rules_per_connection">50000</limit>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
CONF
dbus-daemon --config-file="$WORK/bus.conf" --nofork --nopidfile 2>"$WORK/dbus.log" &
PIDS+=($!)
for _ in $(seq 50); do [[ -S $WORK/bus ]] && break; sleep 0.1; done
export DBUS_SESSION_BUS_ADDRESS=unix:path=$WORK/bus
"$BIN/fake_systemd" 2>"$WORK/fake.log" &
PIDS+=($!)

writer() {  # paced here, not by the server: nothing piles up in the pipe
  local i
  for ((i = 0; ; i++)); do
    [[ ! -e $WORK/stop ]] || break
    echo "INSERT INTO btc.decisions (timestamp, symbol, profile, action)
      SELECT extract(epoch from clock_timestamp()), 'BENCH' || lpad(s::text, 4, '0') || '-USDT',
             'default', 'HOLD'
      FROM generate_series(0, 999) s WHERE s % 10 <> 9 AND (s / 10) % 10 = $((i % 10));"
    sleep 0.5
  done | $SQL >/dev/null
}
writer &
WRITER=$!
sleep 10  # two write periods: every key has a live row

run() {  # run BIN N [ENV...]
  local bin=$1 n=$2 agents
  shift 2
  agents=$(for ((i = 0; i < n; i++)); do printf 'BENCH%04d_USDT,' "$i"; done | sed 's/,$//')
  printf '%s n=%s %s load=%s: ' "$bin" "$n" "$*" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
  env -i PATH="$PATH" HOME="$WORK" DATABASE_URL="$DB" DBUS_SESSION_BUS_ADDRESS="$DBUS_SESSION_BUS_ADDRESS" \
    TRADING_HEAL_AGENTS="$agents" TRADING_HEAL_INTERVAL=5 TRADING_HEAL_LOG_LEVEL=error \
    TRADING_HEAL_SYSTEMD_SCOPE=user TRADING_HEAL_HEARTBEAT_DIR="$WORK/hb" \
    TRADING_HEAL_RUNTIME_DIR="$WORK/rt" TRADING_HEAL_DATA_DIR="$WORK/data" "$@" \
    "$bin" "${BENCH_CYCLES:-20}"
}
AGENTS=("$@")
((${#AGENTS[@]})) || AGENTS=(100 1000)
for n in "${AGENTS[@]}"; do
  for pace in 0 1; do
    [[ -z ${BIN_BEFORE:-} ]] || run "$BIN_BEFORE/bench_probe_cycle" "$n" BENCH_PACE=$pace
    run "$BIN/bench_probe_cycle" "$n" BENCH_PACE=$pace
  done
done
