#!/usr/bin/env bash
# Measures trading-heal-probe's cycle on a running testbed (tests/bed/bed.sh start) for 6, 100
# and 1000 agents, with and without the composite index, and prints the fleet query's plans.
#   TRADING_HEAL_BED_DIR=... TRADING_HEAL_BIN_DIR=... bench/probe/run_bench.sh [load]
# `load` first fills btc.decisions with 10 M rows over 1000 bench symbols (BENCH0000-USDT ..),
# 10 % of them stale by two hours. The bench units (crypto-agent@BENCHnnnn_USDT) run
# `sleep infinity` through a per-instance drop-in: real units, real MainPIDs, no DB writes.
# Everything it adds is removed at the end (units stopped, drop-ins deleted, index dropped).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BED=${TRADING_HEAL_BED_DIR:?set TRADING_HEAL_BED_DIR}
BIN=${TRADING_HEAL_BIN_DIR:?set TRADING_HEAL_BIN_DIR}
set -a; . "$BED/env"; set +a
UNIT_DIR=$XDG_CONFIG_HOME/systemd/user
SQL="psql -X -q $SUPER_DATABASE_URL -v ON_ERROR_STOP=1"
N_MAX=${BENCH_AGENTS_MAX:-1000}

bench_units() { for ((i = 0; i < $1; i++)); do printf 'crypto-agent@BENCH%04d_USDT.service\n' "$i"; done; }
bench_agents() { for ((i = 0; i < $1; i++)); do printf 'BENCH%04d_USDT,' "$i"; done | sed 's/,$//'; }

cleanup() {
  mapfile -t units < <(bench_units "$N_MAX")
  systemctl --user stop "${units[@]}" 2>/dev/null || true
  rm -rf "$UNIT_DIR"/crypto-agent@BENCH*_USDT.service.d
  systemctl --user daemon-reload
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

for ((i = 0; i < N_MAX; i++)); do
  d=$(printf '%s/crypto-agent@BENCH%04d_USDT.service.d' "$UNIT_DIR" "$i")
  mkdir -p "$d"
  printf '[Service]\nExecStart=\nExecStart=/bin/sleep infinity\n' >"$d/bench.conf"
done
systemctl --user daemon-reload
mapfile -t units < <(bench_units "$N_MAX")
systemctl --user start "${units[@]}"

explain() {  # the plan for N bench keys
  local n=$1 syms profs since chk
  syms=$(for ((i = 0; i < n; i++)); do printf '"BENCH%04d-USDT",' "$i"; done | sed 's/,$//')
  profs=$(for ((i = 0; i < n; i++)); do printf '"default",'; done | sed 's/,$//')
  since=$(for ((i = 0; i < n; i++)); do printf '%s,' "$(($(date +%s) - 1800))"; done | sed 's/,$//')
  chk=$(for ((i = 0; i < n; i++)); do printf 'f,'; done | sed 's/,$//')
  $SQL -c "PREPARE q(text[], text[], float8[], bool[]) AS
    $(cat "$HERE/fleet_query.sql");
    EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE q('{$syms}', '{$profs}', '{$since}', '{$chk}')"
}

run() {  # run N LABEL
  local agents
  if (($1 == 6)); then agents=$TRADING_HEAL_AGENTS; else agents=$(bench_agents "$1"); fi
  printf '%-22s ' "$2"
  TRADING_HEAL_AGENTS=$agents TRADING_HEAL_INTERVAL=5 TRADING_HEAL_LOG_LEVEL=error \
    "$BIN/bench_probe_cycle" "${BENCH_CYCLES:-10}"
}

for n in 6 100 "$N_MAX"; do run "$n" "no-composite n=$n"; done
echo "--- plan, operators' indexes only, 1000 keys:"; explain "$N_MAX" | grep -E 'Index|Scan|Execution|Planning' | sort | uniq -c | head -20
echo "--- creating the composite index (deploy/sql/001)"
$SQL -f "$HERE/../../deploy/sql/001_decisions_symbol_profile_ts.sql"
$SQL -c 'ANALYZE btc.decisions'
for n in 6 100 "$N_MAX"; do run "$n" "composite n=$n"; done
echo "--- plan, with the composite index, 1000 keys:"; explain "$N_MAX" | grep -E 'Index|Scan|Execution|Planning' | sort | uniq -c | head -20
