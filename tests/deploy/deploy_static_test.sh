#!/usr/bin/env bash
# Static checks of the deploy files (no processes, no root changes):
#  - deploy/grafana/trading-heal.json is JSON, uses only metric names trading-heal-exporter
#    defines (string literals in exporter/src/**/*.cpp), and its stall gauge turns yellow at 300 s, red at 600 s
#  - deploy/trading-heal.env.example names every setting of the README's configuration table,
#    holds no password value and no address outside loopback
#  - deploy/deploy.sh --dry-run (system mode, polkit; --sudoers refused) prints a plan and changes nothing
#  - deploy.sh --role centre|host (many hosts): shellcheck-clean, documented, bad values refused by
#    name; the files a --dry-run --plan-dir would write (each daemon's env file, the masks, keys,
#    hosts.d, the Prometheus job); the key exchange over ssh from one place, with a fake ssh
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
jq -e '[.panels[].targets[]?.expr // empty] | any(. == "increase(trading_agent_restart_total{host=~\"$host\",symbol=~\"$symbol\"}[1h])")' \
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

# --- many hosts: deploy.sh --role centre|host ---------------------------------------------------
D=$SRC/deploy/deploy.sh
if command -v shellcheck >/dev/null; then
  shellcheck -S warning "$D" || fail "shellcheck deploy.sh"
  ok "shellcheck -S warning deploy.sh: clean"
fi
help=$("$D" --help 2>&1 || true)
for want in "--role centre|host" "--role host --centre ADDR[:PORT]" "--centre-key FILE" "--centre-ssh USER@CENTRE" \
  "--add-host NAME=FILE" "--hosts-only" "--plan-dir DIR"; do
  grep -qF -- "$want" <<<"$help" || fail "--help does not document $want"
done
# Bad values are refused before anything is done, naming the value or the missing option.
refused() {  # refused WANT ARGS...: deploy.sh ARGS fails and says WANT
  local want=$1 out
  shift
  if out=$("$D" --dry-run "$@" 2>&1); then fail "deploy.sh $* was accepted"; fi
  grep -qF -- "$want" <<<"$out" || fail "deploy.sh $*: no '$want' in: $out"
}
refused "--role host needs --centre ADDR[:PORT]" --role host
refused "--role wants centre or host, got 'edge'" --role edge
refused "got 'centre_1!'" --role host --centre 'centre_1!'
refused "the port must be 1-65532" --role host --centre centre.example:65533
refused "--centre goes with --role host" --centre centre.example
refused "--centre-key, --centre-ssh and --host-name go with --role host" --role centre --centre-key /etc/hostname
refused "--add-host and --hosts-only go with --role centre" --role host --centre c.example --add-host h1=/etc/hostname
refused "/etc/hostname is not a public key file" --role centre --add-host h1=/etc/hostname
refused "--add-host wants NAME=FILE" --role centre --add-host '-h1=/etc/hostname'
refused "--hosts-only needs --add-host" --role centre --hosts-only
refused "--host-name centre" --role host --centre c.example --host-name centre
refused "--role is for system mode" --user --role centre
# Without the centre's public key (no ssh to the centre, no --centre-key) a host says how to get it.
refused "give --centre-key FILE" --role host --centre centre.example --host-name statichost
ok "deploy.sh --role: --help documents it; bad roles, addresses, ports, keys and combinations refused by name"

"$BIN/trading-heal-ctl" keygen centre --dir "$work/keys" >/dev/null || fail "trading-heal-ctl keygen"
"$BIN/trading-heal-ctl" keygen host1 --dir "$work/keys" >/dev/null || fail "trading-heal-ctl keygen"
envs() { grep -hv '^#' "$@" | grep . || true; }
# The centre: the exporter and the diagnoser, its links in the exporter's own file, no agents of
# its own, its job.
before=$(snapshot)
"$D" --dry-run --plan-dir "$work/centre" --role centre --instance staticctr --build-dir "$(dirname "$BIN")" \
  --prometheus-config "$work/prom/prometheus.yml" >"$work/centre.log" 2>&1 ||
  { cat "$work/centre.log" >&2; fail "deploy.sh --role centre --dry-run"; }
p=$work/centre/etc/trading-heal
for want in "would create the key pair /etc/trading-heal/keys/centre.key (0600 trading-heal-exporter)" \
  "would create /etc/trading-heal/hosts.d/ (0755 root:root)" "would install /etc/trading-heal/staticctr.exporter.env" \
  "would mask trading-heal-probe@staticctr.service" \
  "would mask trading-heal-actuator@staticctr.service" "permission: none (a centre has no actuator)" \
  "would start trading-heal@staticctr.target"; do
  grep -qF "$want" "$work/centre.log" || { cat "$work/centre.log" >&2; fail "centre plan lacks: $want"; }
done
! grep -q 'mask trading-heal-exporter\|mask trading-heal-diagnoser\|polkit-1' "$work/centre.log" ||
  fail "the centre masks its exporter or its diagnoser, or gets a polkit rule"
[[ $(envs "$p/staticctr.exporter.env") == "TRADING_HEAL_STATE_ENDPOINT=tcp://*:9130
TRADING_HEAL_EVENTS_ENDPOINT=tcp://*:9131
TRADING_HEAL_FLEET_ENDPOINT=tcp://*:9132
TRADING_HEAL_ANALYSIS_ENDPOINT=tcp://*:9133
TRADING_HEAL_CURVE_SECRET_KEY_FILE=/etc/trading-heal/keys/centre.key
TRADING_HEAL_HOSTS_DIR=/etc/trading-heal/hosts.d" ]] || fail "the centre's exporter.env: $(envs "$p/staticctr.exporter.env")"
! envs "$p/staticctr.env" | grep -Eq 'tcp://|CURVE|HOSTS_DIR|^TRADING_HEAL_AGENTS=' ||
  fail "the centre's shared env has links, keys or agents: $(envs "$p/staticctr.env")"
grep -q '^#TRADING_HEAL_AGENTS=' "$p/staticctr.env" || fail "the centre's shared env does not show TRADING_HEAL_AGENTS commented out"
envs "$p/staticctr.env" | grep -qx 'TRADING_HEAL_MODEL_ENDPOINT=ipc:///run/trading-heal/staticctr/diagnoser/model.sock' ||
  fail "the centre's shared env lacks its diagnoser's model endpoint: $(envs "$p/staticctr.env")"
grep -q '^EnvironmentFile=-/etc/trading-heal/%i.exporter.env$' "$work/centre/etc/systemd/system/trading-heal-exporter@.service" ||
  fail "the exporter unit does not read NAME.exporter.env"
for u in probe diagnoser actuator; do
  ! grep -q 'exporter.env' "$work/centre/etc/systemd/system/trading-heal-$u@.service" || fail "$u reads the exporter's env file"
done
prom=$(find "$work/centre" -name prometheus.yml)
grep -q 'job_name: trading-selfheal-staticctr' "$prom" || fail "no trading-heal job in the centre's prometheus.yml"
! sed -n '/# BEGIN trading-heal staticctr (/,/# END trading-heal staticctr$/p' "$prom" | grep -q 'job_name: crypto-exporters' ||
  fail "the centre scrapes agents' exporters on its loopback"
"$D" --dry-run --role centre --instance staticctr --build-dir "$(dirname "$BIN")" --prometheus-config "$work/prom/prometheus.yml" \
  --centre 127.0.0.1:19130 --add-host "host1=$work/keys/host1.pub" --plan-dir "$work/centre2" >"$work/centre2.log" 2>&1 ||
  { cat "$work/centre2.log" >&2; fail "deploy.sh --role centre --centre --add-host --dry-run"; }
grep -qx 'TRADING_HEAL_STATE_ENDPOINT=tcp://127.0.0.1:19130' "$work/centre2/etc/trading-heal/staticctr.exporter.env" &&
  grep -qx 'TRADING_HEAL_EVENTS_ENDPOINT=tcp://127.0.0.1:19131' "$work/centre2/etc/trading-heal/staticctr.exporter.env" &&
  grep -qx 'TRADING_HEAL_FLEET_ENDPOINT=tcp://127.0.0.1:19132' "$work/centre2/etc/trading-heal/staticctr.exporter.env" &&
  grep -qx 'TRADING_HEAL_ANALYSIS_ENDPOINT=tcp://127.0.0.1:19133' "$work/centre2/etc/trading-heal/staticctr.exporter.env" ||
  fail "--role centre --centre ADDR:PORT: not bound there"
[[ ! -e $work/centre/etc/systemd/system/trading-heal-exporter@staticctr.service.d ]] || fail "a drop-in for the centre bound to all addresses"
grep -qx 'RestrictAddressFamilies=AF_NETLINK' "$work/centre2/etc/systemd/system/trading-heal-exporter@staticctr.service.d/50-deploy-bind-address.conf" ||
  fail "the centre bound to one address: no netlink for libzmq's interface lookup"
cmp -s "$work/centre2/etc/trading-heal/hosts.d/host1.pub" "$work/keys/host1.pub" || fail "--add-host: hosts.d/host1.pub not planned"
ok "deploy.sh --role centre --dry-run: exporter and diagnoser, its tcp endpoints and key in its own file, hosts.d, no agents, its Prometheus job, --add-host"

# A host: probe, diagnoser, actuator; the tcp links and keys in the probe's file only.
"$D" --dry-run --plan-dir "$work/host" --role host --centre centre.example --centre-key "$work/keys/centre.pub" \
  --host-name host1 --instance statichost --build-dir "$(dirname "$BIN")" \
  --prometheus-config "$work/prom/prometheus.yml" >"$work/host.log" 2>&1 ||
  { cat "$work/host.log" >&2; fail "deploy.sh --role host --dry-run"; }
p=$work/host/etc/trading-heal
for want in "would create the key pair /etc/trading-heal/keys/host1.key (0600 trading-heal-probe)" \
  "would install /etc/trading-heal/keys/centre.pub" "would mask trading-heal-exporter@statichost.service" \
  "would install /etc/polkit-1/rules.d/60-trading-heal-actuator.rules" "would start trading-heal@statichost.target"; do
  grep -qF "$want" "$work/host.log" || { cat "$work/host.log" >&2; fail "host plan lacks: $want"; }
done
! grep -q 'mask trading-heal-\(probe\|diagnoser\|actuator\)\|prometheus.yml\|exporter.env' "$work/host.log" ||
  fail "the host masks a daemon it runs, or gets a Prometheus job or the exporter's env"
cmp -s "$work/host/etc/trading-heal/keys/centre.pub" "$work/keys/centre.pub" || fail "the centre's key not planned as keys/centre.pub"
envs "$p/statichost.probe.env" | grep -qx 'TRADING_HEAL_STATE_ENDPOINT=tcp://centre.example:9130' &&
  envs "$p/statichost.probe.env" | grep -qx 'TRADING_HEAL_EVENTS_ENDPOINT=tcp://centre.example:9131' &&
  envs "$p/statichost.probe.env" | grep -qx 'TRADING_HEAL_FLEET_ENDPOINT=tcp://centre.example:9132' &&
  envs "$p/statichost.probe.env" | grep -qx 'TRADING_HEAL_ANALYSIS_ENDPOINT=tcp://centre.example:9133' &&
  envs "$p/statichost.probe.env" | grep -qx 'TRADING_HEAL_CURVE_SECRET_KEY_FILE=/etc/trading-heal/keys/host1.key' &&
  envs "$p/statichost.probe.env" | grep -qx 'TRADING_HEAL_CURVE_SERVER_KEY_FILE=/etc/trading-heal/keys/centre.pub' ||
  fail "the probe's env file lacks its links to the centre: $(envs "$p/statichost.probe.env")"
envs "$p/statichost.env" | grep -qx 'TRADING_HEAL_RELAY_ENDPOINT=ipc:///run/trading-heal/statichost/probe/relay.sock' &&
  envs "$p/statichost.env" | grep -qx 'TRADING_HEAL_MODEL_RELAY_ENDPOINT=ipc:///run/trading-heal/statichost/probe/model.sock' &&
  envs "$p/statichost.env" | grep -qx 'TRADING_HEAL_HOST=host1' || fail "the shared env lacks the relays or the host's name"
! envs "$p/statichost.env" "$p/statichost.diagnoser.env" | grep -Eq 'tcp://|CURVE|HOSTS_DIR|STATE_ENDPOINT|FLEET_ENDPOINT' ||
  fail "tcp endpoints or keys outside the probe's file: $(envs "$p/statichost.env" "$p/statichost.diagnoser.env")"
ok "deploy.sh --role host --dry-run: its key owned by the probe's user, the centre's key, the relay shared, tcp and keys in the probe's file only, no exporter, no Prometheus job"

# From one place: a fake ssh stands in for both machines (the remote runs are recorded, not run).
mkdir -p "$work/fakebin" "$work/ssh"
cat >"$work/fakebin/ssh" <<'FAKE'
#!/usr/bin/env bash
# fake ssh: skip the options, then HOST CMD...
while [[ $1 == -o ]]; do shift 2; done
host=$1; shift
n=$(($(ls "$FAKE_SSH_DIR" | grep -c "\.cmd$") + 1))
printf '%s\n' "$host" "$*" >"$FAKE_SSH_DIR/$n.cmd"
case "$*" in
  "cat /etc/trading-heal/keys/centre.pub") cat "$FAKE_KEYS/centre.pub" ;;
  "cat /etc/trading-heal/keys/host1.pub") cat "$FAKE_KEYS/host1.pub" ;;
  *) mkdir "$FAKE_SSH_DIR/$n.tree" && tar -C "$FAKE_SSH_DIR/$n.tree" -xzf -
     [[ "$*" != *"--role host"* ]] || echo "TRADING-HEAL-HOST-KEY host1" ;;
esac
FAKE
chmod +x "$work/fakebin/ssh"
PATH=$work/fakebin:$PATH FAKE_SSH_DIR=$work/ssh FAKE_KEYS=$work/keys \
  "$D" --dry-run --role host --centre centre.example --build-dir "$(dirname "$BIN")" ops@host1.example \
  >"$work/remote.log" 2>&1 || { cat "$work/remote.log" >&2; fail "deploy.sh --role host ops@host1.example (fake ssh)"; }
calls=$(for f in "$work"/ssh/*.cmd; do head -1 "$f"; done | tr '\n' ' ')
[[ $calls == "ops@centre.example ops@host1.example ops@host1.example ops@centre.example " ]] || fail "ssh calls: $calls"
[[ $(tail -n +2 "$work/ssh/1.cmd") == "cat /etc/trading-heal/keys/centre.pub" ]] || fail "first: $(cat "$work/ssh/1.cmd")"
grep -qF -- '--role host --centre centre.example' "$work/ssh/2.cmd" &&
  grep -qF -- '--centre-key "$d/build/centre.pub"' "$work/ssh/2.cmd" && grep -qF -- '--exchange-by-caller' "$work/ssh/2.cmd" ||
  fail "the host's run: $(cat "$work/ssh/2.cmd")"
cmp -s "$work/ssh/2.tree/build/centre.pub" "$work/keys/centre.pub" || fail "the centre's key was not sent to the host"
[[ $(tail -n +2 "$work/ssh/3.cmd") == "cat /etc/trading-heal/keys/host1.pub" ]] || fail "third: $(cat "$work/ssh/3.cmd")"
grep -qF -- '--role centre --hosts-only --dry-run --add-host host1="$d/build/host.pub"' "$work/ssh/4.cmd" ||
  fail "the centre's run: $(cat "$work/ssh/4.cmd")"
cmp -s "$work/ssh/4.tree/build/host.pub" "$work/keys/host1.pub" || fail "the host's key was not sent to the centre"
# With --centre-key and no --centre-ssh: the host only, and the two commands for the centre.
rm -rf "$work/ssh" && mkdir "$work/ssh"
PATH=$work/fakebin:$PATH FAKE_SSH_DIR=$work/ssh FAKE_KEYS=$work/keys \
  "$D" --dry-run --role host --centre centre.example --centre-key "$work/keys/centre.pub" --build-dir "$(dirname "$BIN")" \
  ops@host1.example >"$work/remote2.log" 2>&1 || { cat "$work/remote2.log" >&2; fail "deploy.sh --role host --centre-key (fake ssh)"; }
[[ $(ls "$work/ssh"/*.cmd | wc -l) == 1 && $(head -1 "$work/ssh/1.cmd") == ops@host1.example ]] || fail "--centre-key: ssh to the centre"
grep -qF "scp -o BatchMode=yes ops@host1.example:/etc/trading-heal/keys/host1.pub ./host1.pub" "$work/remote2.log" &&
  grep -qF "deploy/deploy.sh --role centre --hosts-only --add-host host1=host1.pub OPS@CENTRE" "$work/remote2.log" ||
  { cat "$work/remote2.log" >&2; fail "--centre-key: the commands for the centre not printed"; }
after=$(snapshot)
[[ $after == "$before" ]] || fail "--role --dry-run changed the system"
ok "deploy.sh --role host user@host (fake ssh): centre.pub fetched from the centre, sent to the host, host1.pub added to the centre's hosts.d; with --centre-key only, the commands printed"
