#!/usr/bin/env bash
# Static checks of the deploy files (no processes, no root changes):
#  - deploy/grafana/trading-heal.json is JSON, uses only metric names trading-heal-exporter
#    defines (string literals in exporter/src/**/*.cpp), and its stall gauge turns yellow at 300 s, red at 600 s
#  - deploy/trading-heal.env.example names every setting of the README's configuration table,
#    holds no password value and no address outside loopback
#  - deploy/deploy.sh --dry-run (system mode, polkit; --sudoers refused) prints a plan and changes nothing
set -euo pipefail
SRC=${TRADING_HEAL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${TRADING_HEAL_BIN_DIR:-$SRC/build/bin}
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*" >&2; }

# --- dashboard ----------------------------------------------------------------------------------
dash=$SRC/deploy/grafana/trading-heal.json
jq -e . "$dash" >/dev/null || fail "$dash is not JSON"
defined=$(cat "$SRC"/exporter/src/*/*.cpp | grep -o '"trading_[a-z_]*"' | tr -d '"' | sort -u || true)
[[ -n $defined ]] || fail "no metric names found in metrics_model.cpp"
used=$(jq -r '.panels[].targets[]?.expr // empty, (.templating.list[].query.query? // empty)' "$dash" |
  grep -o 'trading_[a-z_]*' | sed 's/_bucket$//; s/_count$//; s/_sum$//' | sort -u)
n=0
for m in $used; do
  grep -qxF "$m" <<<"$defined" || fail "dashboard uses $m, which the exporter does not emit"
  n=$((n + 1))
done
((n >= 8)) || fail "dashboard uses only $n metrics"
ok "dashboard: JSON, $n metric names, all emitted by the exporter"
jq -e '.panels[] | select(.type == "gauge") | .fieldConfig.defaults.thresholds.steps |
  map(.value) == [null, 300, 600]' "$dash" >/dev/null || fail "stall gauge thresholds are not 300/600 s"
jq -e '[.panels[].targets[]?.expr // empty] | any(. == "increase(trading_agent_restart_total{symbol=~\"$symbol\"}[1h])")' \
  "$dash" >/dev/null || fail "no restart history panel with increase(trading_agent_restart_total[1h])"
ok "dashboard: stall gauge green < 300 s, yellow 300-600 s, red > 600 s; restart history"

# --- env example --------------------------------------------------------------------------------
shared=$SRC/deploy/trading-heal.env.example
env=$(mktemp)
cat "$shared" "$SRC"/deploy/trading-heal.{probe,diagnoser}.env.example >"$env"
table=$(sed -n '/^## Configuration/,/^## /p' "$SRC/README.md" | grep '^| `' | cut -d'|' -f2)
[[ -n $table ]] || fail "no configuration table in README.md"
names=0
while read -r cell; do
  first="" prefix=""
  for tok in $(grep -o '`[A-Z_*]*`' <<<"$cell" | tr -d '`'); do
    if [[ -z $first ]]; then
      first=$tok
      if [[ $tok == TRADING_HEAL_* ]]; then prefix=TRADING_HEAL; else prefix=${tok%%_*}; fi
      name=$tok
    elif [[ $tok == _* ]]; then
      name=$prefix$tok
    else
      name=$tok
    fi
    if [[ $name == *'*'* ]]; then  # TRADING_HEAL_*_ENDPOINT: every endpoint the config reads
      for e in $(grep -o '"TRADING_HEAL_[A-Z_]*_ENDPOINT"' "$SRC/common/src/config.cpp" | tr -d '"' | sort -u); do
        grep -Eq "^#?$e=" "$env" || fail "env example lacks $e"
        names=$((names + 1))
      done
      continue
    fi
    grep -Eq "^#?$name=" "$env" || fail "env example lacks $name (README table)"
    names=$((names + 1))
  done
done <<<"$table"
((names >= 40)) || fail "only $names settings checked"
grep -qx 'POSTGRES_PASSWORD=' "$SRC/deploy/trading-heal.probe.env.example" ||
  fail "POSTGRES_PASSWORD must be present and empty in the probe's example"
# The shared file reaches every daemon and the operators: none of the probe's or the model's.
leak=$(grep -Eo '^#?(POSTGRES_[A-Z_]*|DATABASE_URL|OLLAMA_(HOST|MODEL|API|KEEP_ALIVE))=' "$shared" || true)
[[ -z $leak ]] || fail "the shared env example has settings of one daemon: $leak"
! grep -Eq '^[A-Z_]*(PASSWORD|TOKEN)=.+' "$env" || fail "a secret value in the env example"
bad=$(grep -v '^#' "$env" | grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}' | grep -vx '127.0.0.1' || true)
[[ -z $bad ]] || fail "non-loopback address in the env example: $bad"
rm -f "$env"
ok "env examples: all $names settings of the README table, empty POSTGRES_PASSWORD in the probe's, none of the probe's or the model's in the shared one, loopback only"

# --- deploy.sh --dry-run ------------------------------------------------------------------------
[[ -x $BIN/trading-heal-exporter ]] || { ok "deploy --dry-run: skipped (no binaries in $BIN)"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/prom"
cp "$SRC/deploy/prometheus/prometheus.yml" "$SRC/deploy/prometheus/alert_rules.yml" "$work/prom/"
snapshot() { ls -lA --time-style=full-iso /etc/systemd/system /usr/local/bin /etc/polkit-1/rules.d /etc/trading-heal /etc/prometheus "$work/prom" 2>/dev/null || true; sha256sum "$work/prom/"*; }
before=$(snapshot)
"$SRC/deploy/deploy.sh" --dry-run --instance statictest --build-dir "$(dirname "$BIN")" \
  --prometheus-config "$work/prom/prometheus.yml" >"$work/dry.log" 2>&1 ||
  { cat "$work/dry.log" >&2; fail "deploy.sh --dry-run"; }
for want in "would create user trading-heal-actuator" "would create user trading-heal-probe (group trading-heal-probe)" \
  "would create group trading-heal-operators" "would install /usr/local/bin/trading-heal-probe" \
  "would install /etc/systemd/system/trading-heal-probe@.service" "would install /etc/trading-heal/statictest.env" \
  "would install /etc/trading-heal/statictest.probe.env" "would install /etc/trading-heal/statictest.diagnoser.env" \
  "would install /etc/polkit-1/rules.d/60-trading-heal-actuator.rules" "would start trading-heal@statictest.target" \
  "promtool check config: ok"; do
  grep -qF "$want" "$work/dry.log" || { cat "$work/dry.log" >&2; fail "dry-run plan lacks: $want"; }
done
# --sudoers is gone (sudo cannot run under the actuator's sandbox): refused, naming why.
if "$SRC/deploy/deploy.sh" --dry-run --sudoers --instance statictest >"$work/dry2.log" 2>&1; then
  fail "deploy.sh --sudoers was accepted"
fi
grep -q "NoNewPrivileges" "$work/dry2.log" || { cat "$work/dry2.log" >&2; fail "--sudoers refusal names no reason"; }
after=$(snapshot)
diff <(echo "$before") <(echo "$after") >&2 || true
[[ $after == "$before" ]] || fail "--dry-run changed the system"
ok "deploy.sh --dry-run: system-mode plan (users, binaries, units, env, polkit, Prometheus), nothing changed; --sudoers refused"
