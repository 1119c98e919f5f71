#!/usr/bin/env bash
# Measures trading-heal-probe's cycle on a running testbed (tests/bed/bed.sh start) for 6, 100
# and 1000 agents, with and without the composite index, and prints the fleet query's plans.
#   TRADING_HEAL_BED_DIR=... TRADING_HEAL_BIN_DIR=... bench/probe/run_bench.sh [load]
#   SUPER_DATABASE_URL=... bench/probe/run_bench.sh explain [load]
# `load` first fills btc.decisions with 10 M rows over 1000 bench symbols (BENCH0000-USDT ..),
# 10 000 rows each, 5 s apart, 10 % of the symbols stale by two hours (one INSERT from
# generate_series: about a minute). The bench units (crypto-agent@BENCHnnnn_USDT) run
# `sleep infinity` through a per-instance drop-in: real units, real MainPIDs, no DB writes.
# Everything it adds is removed at the end (units stopped, drop-ins deleted, index dropped).
# `explain` needs PostgreSQL only (e.g. bed.sh pg-start): EXPLAIN ANALYZE of the fleet query's
# cases over 1000 keys, without and with the composite index.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODE=bench
if [[ ${1:-} == explain ]]; then MODE=explain; shift; fi
if [[ $MODE == bench ]]; then
  BED=${TRADING_HEAL_BED_DIR:?set TRADING_HEAL_BED_DIR}
  BIN=${TRADING_HEAL_BIN_DIR:?set TRADING_HEAL_BIN_DIR}
  set -a; . "$BED/env"; set +a
  UNIT_DIR=$XDG_CONFIG_HOME/systemd/user
fi
SQL="psql -X -q ${SUPER_DATABASE_URL:?set SUPER_DATABASE_URL} -v ON_ERROR_STOP=1"
N_MAX=${BENCH_AGENTS_MAX:-1000}

bench_units() { for ((i = 0; i < $1; i++)); do printf 'crypto-agent@BENCH%04d_USDT.service\n' "$i"; done; }
bench_agents() { for ((i = 0; i < $1; i++)); do printf 'BENCH%04d_USDT,' "$i"; done | sed 's/,$//'; }

cleanup() {
  if [[ $MODE == bench ]]; then
    mapfile -t units < <(bench_units "$N_MAX")
    systemctl --user stop "${units[@]}" 2>/dev/null || true
    rm -rf "$UNIT_DIR"/crypto-agent@BENCH*_USDT.service.d
    systemctl --user daemon-reload
  fi
  $SQL -c 'DROP INDEX IF EXISTS btc.decisions_symbol_profile_ts_idx' || true
}
trap cleanup EXIT

if [[ ${1:-} == load ]]; then
  $SQL -c "INSERT INTO btc.decisions (timestamp, symbol, profile, action)
    SELECT extract(epoch from now()) - (k * 5) - CASE WHEN s % 10 = 9 THEN 7200 ELSE 0 END,
           'BENCH' || lpad(s::text, 4, '0') || '-USDT', 'default', 'HOLD'
    FROM generate_series(0, 9999) k, generate_series(0, $((N_MAX - 1))) s; ANALYZE btc.decisions"
fi
echo "rows: $($SQL -At -c 'SELECT count(*) FROM btc.decisions')"

# EXPLAIN ANALYZE of one case of the fleet query over N bench keys. Times are relative to the
# newest bench row T (the data is static: "now" = T makes the ranges hold what a fleet writing
# every 5 s would have written). Args: N SINCE_AGO [SLICE_LO_AGO SLICE_HI_AGO CHECK LATERAL_AGO]
explain() {
  local n=$1 t syms profs chks lats since lo=NULL hi=NULL chk=${5:-f} lat=NULL
  t=$($SQL -At -c "SELECT ceil(max(timestamp))::bigint FROM btc.decisions WHERE symbol LIKE 'BENCH%'")
  since=$((t - $2))
  [[ ${3:-NULL} == NULL ]] || lo=$((t - $3))
  [[ ${4:-NULL} == NULL ]] || hi=$((t - $4))
  [[ ${6:-NULL} == NULL ]] || lat=$((t - $6))
  syms=$(for ((i = 0; i < n; i++)); do printf '"BENCH%04d-USDT",' "$i"; done | sed 's/,$//')
  profs=$(for ((i = 0; i < n; i++)); do printf '"default",'; done | sed 's/,$//')
  chks=$(for ((i = 0; i < n; i++)); do printf '%s,' "$chk"; done | sed 's/,$//')
  lats=$(for ((i = 0; i < n; i++)); do printf '%s,' "$lat"; done | sed 's/,$//')
  # Run twice in one session (the first pays the session's catalog cache); show the second.
  $SQL -c "SET plan_cache_mode = force_custom_plan" -c "SET jit = off" \
    -c "PREPARE q(text[], text[], float8, float8, float8, bool[], float8[]) AS $(cat "$HERE/fleet_query.sql")" \
    -c "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE q('{$syms}', '{$profs}', $since, $lo, $hi, '{$chks}', '{$lats}')" \
    -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE q('{$syms}', '{$profs}', $since, $lo, $hi, '{$chks}', '{$lats}')" |
    awk '/QUERY PLAN/ {buf = ""} {buf = buf $0 "\n"} END {printf "%s", buf}' |
    grep -E 'Scan|Join|Execution|Planning Time' | grep -v 'never executed' | head -"${EXPLAIN_LINES:-12}" ||
    true  # head may close the pipe early (SIGPIPE under pipefail)
}

explain_all() {  # $1: label, $2: composite (1) or not (0)
  echo "--- plans ($1), $N_MAX keys:"
  echo "- steady cycle: rows of the last 10 s (a 5 s interval + the 5 s margin), nothing to catch up"
  explain "$N_MAX" 10
  echo "- first cycle: rows of the last 60 s + existence check of every key"
  explain "$N_MAX" 60 NULL NULL t
  echo "- catch-up cycle: + a 240 s slice below the first range"
  explain "$N_MAX" 10 300 60
  if (($2)); then
    echo "- catch-up with the composite index: LATERAL per key, 1800 s cap (10 % have no row in it)"
    explain "$N_MAX" 10 NULL NULL f 1800
  fi
}

run() {  # run N LABEL
  local agents
  if (($1 == 6)); then agents=$TRADING_HEAL_AGENTS; else agents=$(bench_agents "$1"); fi
  printf '%-22s ' "$2"
  TRADING_HEAL_AGENTS=$agents TRADING_HEAL_INTERVAL=5 TRADING_HEAL_LOG_LEVEL=error \
    "$BIN/bench_probe_cycle" "${BENCH_CYCLES:-10}"
}

if [[ $MODE == explain ]]; then
  $SQL -c 'DROP INDEX IF EXISTS btc.decisions_symbol_profile_ts_idx'
  explain_all "operators' indexes only" 0
  echo "--- creating the composite index (deploy/sql/001)"
  $SQL -f "$HERE/../../deploy/sql/001_decisions_symbol_profile_ts.sql"
  $SQL -c 'ANALYZE btc.decisions'
  explain_all "with the composite index" 1
  exit 0
fi

for ((i = 0; i < N_MAX; i++)); do
  d=$(printf '%s/crypto-agent@BENCH%04d_USDT.service.d' "$UNIT_DIR" "$i")
  mkdir -p "$d"
  printf '[Service]\nExecStart=\nExecStart=/bin/sleep infinity\n' >"$d/bench.conf"
done
systemctl --user daemon-reload
mapfile -t units < <(bench_units "$N_MAX")
systemctl --user start "${units[@]}"

for n in 6 100 "$N_MAX"; do run "$n" "no-composite n=$n"; done
explain_all "operators' indexes only" 0
echo "--- creating the composite index (deploy/sql/001)"
$SQL -f "$HERE/../../deploy/sql/001_decisions_symbol_profile_ts.sql"
$SQL -c 'ANALYZE btc.decisions'
for n in 6 100 "$N_MAX"; do run "$n" "composite n=$n"; done
explain_all "with the composite index" 1
