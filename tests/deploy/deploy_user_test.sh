#!/usr/bin/env bash
# Integration tests of deploy/deploy.sh --user and of the Grafana dashboard, on the testbed's
# systemd user manager (the CTest fixture `testbed` starts it; TRADING_HEAL_BED_DIR names it).
#
#   deploy_user_test.sh deploy      deploy twice (the second run changes nothing: same files,
#                                   same MainPIDs), the four daemons run as user units and answer
#                                   on :19121/health and :19120/metrics, the merged prometheus.yml
#                                   passes `promtool check config`, --uninstall --purge leaves
#                                   nothing and restores prometheus.yml byte for byte
#   deploy_user_test.sh dashboard   deploy, stall one agent until an LLM diagnosis exists, run a
#                                   real Prometheus scraping the exporter, and require every PromQL
#                                   expression of deploy/grafana/trading-heal.json to parse and
#                                   return data through /api/v1/query; the audit table's URL
#                                   answers a JSON array
# Environment (CTest): TRADING_HEAL_BED_DIR, TRADING_HEAL_BIN_DIR, TRADING_HEAL_SOURCE_DIR.
# Ports: 19120 (metrics), 19121 (API), 19190 (Prometheus), all on 127.0.0.1.
set -euo pipefail

mode=${1:?usage: deploy_user_test.sh deploy|dashboard}
SRC=${TRADING_HEAL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${TRADING_HEAL_BIN_DIR:?TRADING_HEAL_BIN_DIR (the build bin dir)}
BED=${TRADING_HEAL_BED_DIR:?TRADING_HEAL_BED_DIR (the running testbed)}
INSTANCE=deploytest$$
METRICS_PORT=19120
API_PORT=19121
PROM_PORT=19190
VICTIM=BTC_USDT
T0=$(date +%s%N)

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf 'ok   [%3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_for() {  # wait_for WHAT SECONDS CMD...
  local what=$1 secs=$2 deadline=$(( $(now_ms) + $2 * 1000 ))
  shift 2
  until "$@" >/dev/null 2>&1; do
    (( $(now_ms) < deadline )) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[[ -f $BED/env ]] || fail "no running testbed at $BED (tests/bed/bed.sh start)"
set -a
# shellcheck source=/dev/null
. "$BED/env"
set +a
for p in $METRICS_PORT $API_PORT $PROM_PORT; do
  port_busy "$p" && fail "port 127.0.0.1:$p is busy"
done
"$SRC/tests/bed/bed.sh" reset >/dev/null 2>&1 || fail "bed.sh reset"

work=$(mktemp -d /tmp/th-deploy-test.XXXXXX)
prom_pid=""
cleanup() {
  local rc=$?
  if [[ -n $prom_pid ]]; then kill "$prom_pid" 2>/dev/null || true; wait "$prom_pid" 2>/dev/null || true; fi
  "$SRC/tests/bed/bed.sh" fault "$VICTIM" ok >/dev/null 2>&1 || true
  if [[ -f $XDG_CONFIG_HOME/trading-heal/$INSTANCE.env || -f $XDG_CONFIG_HOME/systemd/user/trading-heal@.target ]]; then
    "${deploy[@]}" --uninstall --purge >/dev/null 2>&1 || true
  fi
  if ((rc != 0)); then
    echo "--- journal of the trading-heal units" >&2
    journalctl --no-pager -n 40 "_SYSTEMD_UNIT=trading-heal-exporter@$INSTANCE.service" + \
      "_SYSTEMD_UNIT=trading-heal-probe@$INSTANCE.service" + "USER_UNIT=trading-heal-probe@$INSTANCE.service" \
      + "USER_UNIT=trading-heal-exporter@$INSTANCE.service" >&2 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# Prometheus config to merge into: the shipped example (it has `trading-selfheal` and
# `crypto-exporters` jobs already: deploy adds trading-selfheal-$INSTANCE only).
mkdir -p "$work/prom"
cp "$SRC/deploy/prometheus/prometheus.yml" "$SRC/deploy/prometheus/alert_rules.yml" "$work/prom/"
cp "$work/prom/prometheus.yml" "$work/prometheus.orig.yml"
# The env file deploy creates: the bed's database and fake Ollama, fast checks, test ports.
deploy=("$SRC/deploy/deploy.sh" --user --instance "$INSTANCE" --build-dir "$(dirname "$BIN")"
  --prefix "$work/prefix" --prometheus-config "$work/prom/prometheus.yml")
settings=(
  --env "TRADING_HEAL_AGENTS=$TRADING_HEAL_AGENTS"
  --env "TRADING_HEAL_METRICS_LISTEN=127.0.0.1:$METRICS_PORT"
  --env "TRADING_HEAL_API_LISTEN=127.0.0.1:$API_PORT"
  --env "DATABASE_URL=$DATABASE_URL"
  --env "TRADING_HEAL_HEARTBEAT_DIR=$TRADING_HEAL_HEARTBEAT_DIR"
  --env "TRADING_HEAL_INTERVAL=1"
  --env "TRADING_HEAL_STALL_THRESHOLD=3"
  --env "TRADING_HEAL_STARTUP_GRACE=0"
  --env "TRADING_HEAL_DIAGNOSIS_WAIT=8"
  --env "TRADING_HEAL_COOLDOWN=5"
  # CI runs sanitizer builds: LeakSanitizer cannot stop threads inside the units' seccomp
  # sandbox (no ptrace) and would fail every unit at exit. Ignored by normal builds.
  --env "ASAN_OPTIONS=detect_leaks=0"
)
if [[ -n ${OLLAMA_HOST:-} ]]; then
  settings+=(--env "OLLAMA_HOST=$OLLAMA_HOST" --env "OLLAMA_TIMEOUT=5")
else
  settings+=(--env "OLLAMA_ENABLED=false")
fi
units=()
for c in probe diagnoser actuator exporter; do units+=("trading-heal-$c@$INSTANCE.service"); done
unit_dir=$XDG_CONFIG_HOME/systemd/user
state_dir=${XDG_STATE_HOME:-$HOME/.local/state}/trading-heal/$INSTANCE

main_pids() { systemctl --user show -p MainPID --value "${units[@]}" | xargs; }
fingerprint() {  # every file deploy manages, with content hashes, plus the unit dir listing
  (cd / && sha256sum "$unit_dir"/trading-heal* "$XDG_CONFIG_HOME/trading-heal/$INSTANCE".*env \
    "$work/prefix/bin/"* "$work/prom/"*) 2>/dev/null
  stat -c '%n %Y %a' "$unit_dir"/trading-heal* "$work/prefix/bin/"* "$work/prom/"* 2>/dev/null
}

# --- first run ----------------------------------------------------------------------------------
t=$(now_ms)
"${deploy[@]}" "${settings[@]}" >"$work/run1.log" 2>&1 || { cat "$work/run1.log" >&2; fail "first deploy failed"; }
ok "first deploy in $(( $(now_ms) - t )) ms: $(grep -c '^  - ' "$work/run1.log") changes"
for u in "${units[@]}"; do
  [[ $(systemctl --user show -p ActiveState,SubState --value "$u" | xargs) == "active running" ]] ||
    fail "$u is not active/running"
  grep -q "^ExecStart=$work/prefix/bin/" "$unit_dir/${u%%@*}@.service" || fail "$u: ExecStart not rewritten"
  ! grep -Eq '^(User|Group|SupplementaryGroups|PrivateUsers|PrivateMounts|ProtectSystem|LoadCredential)=|^Environment=TRADING_HEAL_PEERS' "$unit_dir/${u%%@*}@.service" ||
    fail "$u: user-manager incompatible directives left"
done
ok "four user units active (running): ${units[*]}"
[[ $(curl -fsS --max-time 5 "http://127.0.0.1:$API_PORT/health") == *'"status":"ok"'* ]] || fail "GET :$API_PORT/health"
# (read whole, then searched: grep -q would end the pipe early and curl fail with SIGPIPE)
grep -q '^trading_selfheal_component_up' <<<"$(curl -fsS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics")" ||
  fail "no metrics on :$METRICS_PORT"
ok "GET :$API_PORT/health answers ok, :$METRICS_PORT/metrics serves trading-heal metrics"
grep -q '^TRADING_HEAL_SYSTEMD_SCOPE=user$' "$XDG_CONFIG_HOME/trading-heal/$INSTANCE.env" || fail "env file scope"
# The database's settings are the probe's alone, the model's the diagnoser's: not in the shared file.
! grep -Eq '^(POSTGRES_|DATABASE_URL|OLLAMA_HOST)' "$XDG_CONFIG_HOME/trading-heal/$INSTANCE.env" ||
  fail "the shared env file has the probe's or the diagnoser's settings"
probe_env=$XDG_CONFIG_HOME/trading-heal/$INSTANCE.probe.env
[[ $(stat -c %a "$probe_env") == 600 ]] || fail "$probe_env mode $(stat -c %a "$probe_env")"
grep -qx "DATABASE_URL=$DATABASE_URL" "$probe_env" || fail "$probe_env lacks DATABASE_URL"
grep -q '^EnvironmentFile=-%E/trading-heal/%i.probe.env$' "$unit_dir/trading-heal-probe@.service" ||
  fail "the probe's unit does not read its own env file"
! grep -q 'probe.env' "$unit_dir/trading-heal-exporter@.service" || fail "the exporter reads the probe's env file"
grep -q "job_name: trading-selfheal-$INSTANCE" "$work/prom/prometheus.yml" || fail "scrape job not merged"
grep -q "labels: {service: trading-heal, deployment: $INSTANCE}" "$work/prom/prometheus.yml" ||
  fail "scrape job without its labels"
# The API token: made by deploy, private, named in the env file, never printed; the API wants it.
token=$XDG_CONFIG_HOME/trading-heal/$INSTANCE.token
[[ $(stat -c %a "$token") == 600 ]] || fail "token file mode $(stat -c %a "$token")"
grep -qx "TRADING_HEAL_API_TOKEN_FILE=$token" "$XDG_CONFIG_HOME/trading-heal/$INSTANCE.env" || fail "env file lacks the token"
! grep -rqF "$(cat "$token")" "$work"/*.log 2>/dev/null || fail "deploy printed the token"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API_PORT/status")
[[ $code == 401 ]] || fail "GET /status without the token answered $code"
curl -fsS -H "Authorization: Bearer $(cat "$token")" "http://127.0.0.1:$API_PORT/status" | jq -e .agents >/dev/null ||
  fail "GET /status with the token"
ok "API token $token (0600) in the env file, not printed; /status: 401 without it, 200 with it"
grep -q "targets: \['127.0.0.1:$METRICS_PORT'\]" "$work/prom/prometheus.yml" || fail "scrape target not the env's port"
promtool check config "$work/prom/prometheus.yml" >"$work/promtool.log" 2>&1 ||
  { cat "$work/promtool.log" >&2; fail "promtool check config of the merged prometheus.yml"; }
ok "merged prometheus.yml: job trading-selfheal-$INSTANCE -> 127.0.0.1:$METRICS_PORT; promtool check config passes"

if [[ $mode == deploy ]]; then
  # --- second run: nothing changes --------------------------------------------------------------
  before=$(fingerprint)
  pids=$(main_pids)
  t=$(now_ms)
  "${deploy[@]}" "${settings[@]}" >"$work/run2.log" 2>&1 || { cat "$work/run2.log" >&2; fail "second deploy failed"; }
  grep -q "nothing to change" "$work/run2.log" || { cat "$work/run2.log" >&2; fail "second run changed something"; }
  [[ $(fingerprint) == "$before" ]] || fail "second run modified files"
  [[ $(main_pids) == "$pids" ]] || fail "second run restarted daemons ($pids -> $(main_pids))"
  ok "second deploy in $(( $(now_ms) - t )) ms: nothing to change, same files, same MainPIDs ($pids)"

  # --- dry run of the uninstall changes nothing -------------------------------------------------
  "${deploy[@]}" --uninstall --dry-run >"$work/dry.log" 2>&1 || { cat "$work/dry.log" >&2; fail "uninstall --dry-run"; }
  [[ $(fingerprint) == "$before" && $(main_pids) == "$pids" ]] || fail "--dry-run changed something"
  grep -q "would stop trading-heal@$INSTANCE.target" "$work/dry.log" || fail "--dry-run plan lacks the stop"
  ok "uninstall --dry-run prints the plan and changes nothing"
fi

if [[ $mode == dashboard ]]; then
  # --- a diagnosis, so that the Ollama panels have data -----------------------------------------
  "$SRC/tests/bed/bed.sh" fault "$VICTIM" stall >/dev/null 2>&1
  have_latency() { grep -q '^trading_ollama_analysis_latency_seconds{' <<<"$(curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics")"; }
  t=$(now_ms)
  wait_for "an Ollama analysis of $VICTIM (trading_ollama_analysis_latency_seconds)" 60 have_latency
  ok "stalled $VICTIM diagnosed by the LLM after $(( $(now_ms) - t )) ms"

  # --- Prometheus scraping the deployed exporter ------------------------------------------------
  cat >"$work/prom-test.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: trading-heal
    static_configs: [{targets: ['127.0.0.1:$METRICS_PORT']}]
EOF
  prometheus --config.file="$work/prom-test.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$work/tsdb" --log.level=warn >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  up_scraped() {
    curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=count_over_time(up{job="trading-heal"}[1m]) >= 3' |
      jq -e '.data.result[0].value[1] | tonumber >= 3'
  }
  t=$(now_ms)
  wait_for "Prometheus to scrape the exporter 3 times" 60 up_scraped ||
    { cat "$work/prometheus.log" >&2; fail "prometheus"; }
  ok "Prometheus on :$PROM_PORT scraped the exporter 3 times ($(( $(now_ms) - t )) ms)"

  # Every PromQL expression of the dashboard, with the template variable set to "All".
  dash=$SRC/deploy/grafana/trading-heal.json
  jq -e . "$dash" >/dev/null || fail "dashboard is not JSON"
  mapfile -t exprs < <(jq -r '.panels[] | select(.datasource.type == "prometheus") | .targets[].expr' "$dash")
  ((${#exprs[@]} >= 10)) || fail "only ${#exprs[@]} PromQL expressions in the dashboard"
  # the template variable's own query
  var_q=$(jq -r '.templating.list[] | select(.name == "symbol") | .query.query' "$dash")
  [[ $var_q =~ ^label_values\(([a-z_]+),\ *symbol\)$ ]] || fail "unexpected variable query $var_q"
  exprs+=("count by (symbol) (${BASH_REMATCH[1]})")
  all=$(jq -r '.templating.list[] | select(.name == "symbol") | .allValue' "$dash")
  all_hosts=$(jq -r '.templating.list[] | select(.name == "host") | .allValue' "$dash")
  [[ $all_hosts == ".+" ]] || fail "the host variable's All is $all_hosts, not .+"
  query() {  # query EXPR: prints the number of series; fails on an error or an empty result
    local r
    r=$(curl -sS --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1") || return 1
    [[ $(jq -r .status <<<"$r") == success ]] || { echo "error: $(jq -r .error <<<"$r")"; return 1; }
    jq -e '.data.result | length > 0' <<<"$r" >/dev/null || { echo "empty"; return 1; }
    jq '.data.result | length' <<<"$r"
  }
  for e in "${exprs[@]}"; do
    q=${e//\$symbol/$all}
    q=${q//\$host/$all_hosts}
    deadline=$(( $(now_ms) + 30000 ))
    until res=$(query "$q"); do
      [[ $res == error* ]] && fail "PromQL does not parse: $q: $res"
      (( $(now_ms) < deadline )) || fail "no data after 30 s: $q ($res)"
      sleep 0.5
    done
    ok "$res series: $q"
  done
  # The audit table (Infinity data source): its URL, on the test's API port, gives a JSON array.
  url=$(jq -r '.panels[] | select(.type == "table") | .targets[0].url' "$dash")
  url=${url/:9121/:$API_PORT}
  curl -fsS --max-time 5 -H "Authorization: Bearer $(cat "$XDG_CONFIG_HOME/trading-heal/$INSTANCE.token")" "$url" | jq -e 'type == "array" and length > 0 and (.[0] | has("ts") and has("action"))' >/dev/null ||
    fail "audit panel URL $url does not answer a JSON array of events"
  ok "audit panel: GET $url answers a JSON array of events"
  kill "$prom_pid"; wait "$prom_pid" 2>/dev/null || true; prom_pid=""
  "$SRC/tests/bed/bed.sh" fault "$VICTIM" ok >/dev/null 2>&1
fi

# --- uninstall ----------------------------------------------------------------------------------
# A mask of one of the instance's units (a role's, or one a failed deploy left) goes with it: in
# the user manager's own directory, not in /etc/systemd/system.
systemctl --user mask -q "trading-heal-exporter@$INSTANCE.service"
[[ -L $unit_dir/trading-heal-exporter@$INSTANCE.service ]] || fail "systemctl --user mask made no link in $unit_dir"
t=$(now_ms)
"${deploy[@]}" --uninstall --purge >"$work/un.log" 2>&1 || { cat "$work/un.log" >&2; fail "uninstall failed"; }
left=$( { ls -d "$unit_dir"/trading-heal* "$unit_dir"/*.wants/trading-heal* "$XDG_CONFIG_HOME/trading-heal" \
  "$work/prefix/bin/"* "$state_dir" "$work/prom/trading-heal-alert_rules.yml"; } 2>/dev/null || true)
[[ -z $left ]] || fail "uninstall left: $left"
cmp -s "$work/prom/prometheus.yml" "$work/prometheus.orig.yml" || fail "prometheus.yml not restored"
loaded=$(systemctl --user list-units --all --no-legend --plain "trading-heal*@$INSTANCE*" | awk '$3 != "inactive" || $2 != "not-found"' || true)
[[ -z $loaded ]] || fail "units still loaded: $loaded"
for p in $METRICS_PORT $API_PORT; do port_busy "$p" && fail "port $p still answers"; done
ok "uninstall --purge in $(( $(now_ms) - t )) ms: no unit, mask, binary, env file or state left, prometheus.yml restored"
