#!/usr/bin/env bash
# The testbed: real PostgreSQL 15, journald and a systemd user manager running simulated
# crypto-agent@ units, plus the fake Ollama, all on loopback. See tests/bed/README.md.
#
#   bed.sh start | stop | status
#   bed.sh reset                                   clean fleet: PG up, no faults, agents restarted
#   bed.sh fault INSTANCE MODE [ARG] [sticky]     write the simulator's control file
#   bed.sh restart-policy INSTANCE no|always       drop-in + daemon-reload
#   bed.sh pg-stop | pg-start                      stop/start PostgreSQL only (data kept)
#   bed.sh pg-freeze | pg-thaw                     SIGSTOP/SIGCONT PostgreSQL: a hung server
#
# Every process is started with setsid, its PID recorded under $STATE/pids, and stopped by that
# PID (never by name). `start` and `stop` are idempotent.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE_RAW=${TRADING_HEAL_BED_DIR:-/tmp/trading-heal-bed}
# Nothing is sourced from, and no PID read from, a state dir another user could have made or
# changed: the default lives in /tmp and the bed runs as root. (It is checked again after
# `start` creates it: mkdir -p accepts a directory someone else made in between.)
trusted_dir() {  # trusted_dir DIR: absent, or ours, not a symlink, not writable by group/others
  local d=$1 mode
  [[ -e $d || -L $d ]] || return 0
  [[ ! -L $d ]] || { echo "it is a symlink"; return 1; }
  [[ -d $d ]] || { echo "not a directory"; return 1; }
  [[ $(stat -c %u "$d") == "$(id -u)" ]] || { echo "owned by uid $(stat -c %u "$d"), not $(id -u)"; return 1; }
  mode=$(stat -c %a "$d")
  (( (8#$mode & 8#022) == 0 )) || { echo "writable by group or others (mode $mode)"; return 1; }
}
if ! why=$(trusted_dir "$STATE_RAW"); then
  echo "bed: error: refusing the state dir $STATE_RAW: $why" >&2
  exit 1
fi
STATE=$(realpath -m "$STATE_RAW")
# A running bed keeps the settings it was started with, whatever the caller's environment says
# ($STATE/env exists from a successful `start` until `stop`).
if [[ -f $STATE/bed.conf && (${1:-} != start || -f $STATE/env) ]]; then
  # shellcheck source=/dev/null
  . "$STATE/bed.conf"
fi
BIN=$(realpath -m "${TRADING_HEAL_BIN_DIR:-$REPO/build/bin}")
# Below the kernel's ephemeral range (32768-60999): the clients that retry while PostgreSQL is
# down (agents, probes) connect from ephemeral ports, and one that happens to be given the port
# it calls connects to itself (TCP simultaneous open) and holds it, so PostgreSQL's restart fails
# with "Address already in use" (it did at 55432 in a CI run; an even port in that range is hit
# within about 25,000 attempts). The fake Ollama's port is below that range too.
PG_PORT=${TRADING_HEAL_BED_PG_PORT:-25432}
OLLAMA_PORT=${TRADING_HEAL_BED_OLLAMA_PORT:-21434}
AGENTS=$(echo "${TRADING_HEAL_BED_AGENTS:-BTC_USDT ETH_USDT XRP_USDT SOL_USDT DOGE_USDT ADA_USDT}" |
  tr ',' ' ' | xargs)
DECISION_INTERVAL=${TRADING_HEAL_BED_DECISION_INTERVAL:-${DECISION_INTERVAL:-1}}
BOOTSTRAP_SECONDS=${TRADING_HEAL_BED_BOOTSTRAP_SECONDS:-${SIM_BOOTSTRAP_SECONDS:-1}}
PGBIN=/usr/lib/postgresql/15/bin
FAULT_MODES="ok stall hang crash slow clean-exit leak-secrets inject"

PIDS=$STATE/pids
LOGS=$STATE/logs
CONTROL=$STATE/control
HEARTBEATS=$STATE/heartbeats
XDG_CONFIG=$STATE/config
UNIT_DIR=$XDG_CONFIG/systemd/user
RUN_SYSTEMD_MARK=$STATE/created-run-systemd-system
HASH=$(printf %s "$STATE" | md5sum | cut -c1-8)

say() { echo "bed: $*" >&2; }
die() { echo "bed: error: $*" >&2; exit 1; }

# Unix socket paths are limited to 107 bytes: long state dirs get a short sibling under /tmp.
short_dir() {  # short_dir PREFERRED FALLBACK_NAME
  if ((${#1} <= 80)); then echo "$1"; else echo "/tmp/trading-heal-bed-$2-$HASH"; fi
}
XDG_RUNTIME=$(short_dir "$STATE/run" rt)

as_postgres() { (cd / && setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"); }

# PostgreSQL refuses root: its cluster lives where the postgres user can reach it.
pg_root() {
  if [[ -f $STATE/pg-root ]]; then cat "$STATE/pg-root"; return; fi
  local root
  root=$(short_dir "$STATE/pg" pg)
  if [[ $root == "$STATE/pg" ]] && ! as_postgres test -x "$STATE" 2>/dev/null; then
    root=/tmp/trading-heal-bed-pg-$HASH
  fi
  echo "$root" >"$STATE/pg-root"
  echo "$root"
}

# --- waiting and PIDs -------------------------------------------------------------------------

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

wait_for() {  # wait_for WHAT SECONDS CMD...: poll CMD until it succeeds or the deadline passes
  local what=$1 deadline=$(($(now_ms) + $2 * 1000))
  shift 2
  until "$@" >/dev/null 2>&1; do
    (($(now_ms) < deadline)) || { say "timed out waiting for $what"; return 1; }
    sleep 0.1
  done
}

start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# alive NAME: the recorded PID runs and is still the process we started: the same program and
# the same start time (a reused PID is someone else's and is never signalled).
alive() {
  local f=$PIDS/$1.pid pid exe
  [[ -f $f && -f $PIDS/$1.exe ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == *"$(<"$PIDS/$1.exe")"* ]] || return 1
  if [[ -f $PIDS/$1.start ]]; then [[ $(start_time "$pid") == "$(<"$PIDS/$1.start")" ]] || return 1; fi
  ! grep -q '^State:.*Z' "/proc/$pid/status"
}

pid_gone() { [[ ! -d /proc/$1 ]] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

record() {  # record NAME PID EXE_SUBSTRING
  echo "$2" >"$PIDS/$1.pid"
  echo "$3" >"$PIDS/$1.exe"
  start_time "$2" >"$PIDS/$1.start"
}

descendants() {  # PIDs of every process below $1
  local kids
  kids=$(ps -o pid= --ppid "$1" 2>/dev/null | xargs) || true
  for k in $kids; do echo "$k"; descendants "$k"; done
}

kill_wait() {  # kill_wait PID SIGNAL SECONDS: signal, wait for exit, then SIGKILL
  local pid=$1 sig=$2 secs=$3
  pid_gone "$pid" && return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  if ! wait_for "pid $pid to exit" "$secs" pid_gone "$pid"; then
    say "pid $pid did not exit after SIG$sig; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for "pid $pid to die" 5 pid_gone "$pid" || true
  fi
}

stop_recorded() {  # stop_recorded NAME SIGNAL SECONDS
  if alive "$1"; then
    say "stopping $1 (pid $(<"$PIDS/$1.pid"))"
    kill_wait "$(<"$PIDS/$1.pid")" "$2" "$3"
  fi
  rm -f "$PIDS/$1.pid" "$PIDS/$1.exe" "$PIDS/$1.start"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- PostgreSQL -------------------------------------------------------------------------------

psql_super() {
  PGPASSFILE=$PGPASS psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

# Each role has a password made when the bed starts (kept across pg-stop/pg-start, gone at
# stop): loopback TCP asks for it (scram-sha-256), only the postgres user reaches the socket.
PGPASS=$STATE/pgpass
pg_password() {  # pg_password ROLE
  awk -F: -v r="$1" '$4 == r { print $5 }' "$PGPASS"
}
pg_passwords() {
  [[ -f $PGPASS ]] && return
  local r
  (umask 077 && for r in postgres trading_heal_ro crypto_agent; do
    printf '127.0.0.1:%s:*:%s:%s\n' "$PG_PORT" "$r" "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
  done >"$PGPASS")
}
db_url() { echo "postgresql://$1:$(pg_password "$1")@127.0.0.1:$PG_PORT/postgres"; }

pg_start() {
  if alive postgres; then say "postgres already running"; return; fi
  port_busy "$PG_PORT" && die "port $PG_PORT is busy (set TRADING_HEAL_BED_PG_PORT)"
  local root data fresh=0
  root=$(pg_root)
  data=$root/data
  if [[ ! -f $data/PG_VERSION ]]; then
    say "initdb $data"
    rm -rf "$root" && mkdir -p "$root/sock" && chown -R postgres:postgres "$root"
    chmod 700 "$root"
    as_postgres "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$LOGS/initdb.log" 2>&1 || die "initdb failed, see $LOGS/initdb.log"
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$root/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fresh=1
  fi
  # The socket (in a dir only the postgres user can enter) trusts postgres and wants the other
  # roles' passwords (clients in another network namespace come this way); loopback TCP wants
  # passwords.
  printf 'local all postgres trust\nlocal all all scram-sha-256\nhost  all all 127.0.0.1/32 scram-sha-256\n' \
    >"$data/pg_hba.conf"
  chown postgres:postgres "$data/pg_hba.conf"
  pg_passwords
  say "starting postgres on 127.0.0.1:$PG_PORT"
  # setsid in a non-leader background job execs in place, so $! is the postmaster itself.
  (cd / && exec setsid setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$PGBIN/postgres" -D "$data") </dev/null >>"$LOGS/postgres.log" 2>&1 &
  record postgres $! /postgres
  wait_for "postgres" 30 "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" ||
    die "postgres did not start, see $LOGS/postgres.log"
  if ((fresh)); then
    say "creating schema btc and roles"
    as_postgres psql -X -q -h "$root/sock" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      <"$HERE/sql/schema.sql" >"$LOGS/schema.log" 2>&1 || die "schema failed, see $LOGS/schema.log"
  fi
  local r sql=""
  for r in postgres trading_heal_ro crypto_agent; do
    sql+="ALTER ROLE $r PASSWORD '$(pg_password "$r")';"
  done
  as_postgres psql -X -q -h "$root/sock" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "$sql" >>"$LOGS/schema.log" 2>&1 || die "setting the roles' passwords failed, see $LOGS/schema.log"
  # The server that answers must be ours: two beds started together both see the port free.
  if [[ $(psql_super -At -c 'SHOW data_directory' 2>/dev/null) != "$data" ]] || ! alive postgres; then
    die "127.0.0.1:$PG_PORT is answered by another server (another bed?), see $LOGS/postgres.log"
  fi
}

pg_stop() { pg_thaw; stop_recorded postgres INT 30; }  # SIGINT = fast shutdown

# A hung server (not a stopped one): SIGSTOP to the postmaster and every backend. Connections
# are accepted by the kernel and never answered; queries in flight never return.
pg_signal_all() {  # pg_signal_all SIGNAL
  local pid
  pid=$(<"$PIDS/postgres.pid")
  # shellcheck disable=SC2046
  kill "-$1" "$pid" $(descendants "$pid") 2>/dev/null || true
}
pg_freeze() {
  alive postgres || die "postgres is not running"
  pg_signal_all STOP
  say "postgres frozen (SIGSTOP): connects and queries hang until pg-thaw"
}
pg_thaw() { if alive postgres; then pg_signal_all CONT; fi; }

# --- journald ---------------------------------------------------------------------------------

journal_up() { echo "trading-heal testbed probe" | systemd-cat -t trading-heal-bed; }

journald_start() {
  if alive journald; then say "journald already running"; return; fi
  if journal_up 2>/dev/null; then
    say "journald already running (not started by this bed; left alone at stop)"
    return
  fi
  say "starting journald"
  setsid /lib/systemd/systemd-journald </dev/null >>"$LOGS/journald.log" 2>&1 &
  record journald $! systemd-journald
  wait_for "journald" 15 journal_up || die "journald did not start, see $LOGS/journald.log"
}

# --- systemd user manager ---------------------------------------------------------------------

user_env() {
  export XDG_RUNTIME_DIR=$XDG_RUNTIME XDG_CONFIG_HOME=$XDG_CONFIG
  export DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME/bus
}

manager_ready() {
  local s
  s=$(systemctl --user is-system-running 2>/dev/null) || true
  [[ $s == running || $s == degraded ]]
}

# Another bed's user manager (one not started by this state dir). Without systemd as PID 1 every
# user manager puts its units at the same cgroup paths (/app.slice/app-crypto\x2dagent.slice/...),
# so two beds would kill each other's agents: one bed per machine at a time.
other_manager() {
  local pid args
  while read -r pid args; do
    [[ $args == */lib/systemd/systemd\ *--user* ]] || continue
    echo "$pid ($(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep '^XDG_RUNTIME_DIR=' || true))"
    return 0
  done < <(ps -e -o pid=,args=)
  return 1
}

manager_start() {
  user_env
  if alive manager; then say "systemd user manager already running"; return; fi
  if [[ ! -d /run/systemd/system ]]; then
    mkdir -p /run/systemd/system && touch "$RUN_SYSTEMD_MARK"
  fi
  rm -rf "$XDG_RUNTIME" && mkdir -p "$XDG_RUNTIME" && chmod 700 "$XDG_RUNTIME"
  mkdir -p "$UNIT_DIR"
  sed -e "s#@BIN@#$BIN#g" -e "s#@STATE@#$STATE#g" "$HERE/units/crypto-agent@.service.in" \
    >"$UNIT_DIR/crypto-agent@.service"
  say "starting systemd --user (XDG_RUNTIME_DIR=$XDG_RUNTIME)"
  # A clean environment: units must see only what their EnvironmentFile gives them.
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" \
    LANG=C.UTF-8 XDG_RUNTIME_DIR="$XDG_RUNTIME" XDG_CONFIG_HOME="$XDG_CONFIG" SYSTEMD_LOG_TARGET=journal \
    setsid /lib/systemd/systemd --user </dev/null >>"$LOGS/systemd-user.log" 2>&1 &
  record manager $! /systemd
  wait_for "systemd --user" 30 manager_ready || die "user manager not ready, see $LOGS/systemd-user.log"
}

# Processes this bed's manager started that outlived it (it was killed): agents and the session
# bus, recognised by command line AND by this bed's directories in their environment, never by
# name alone (another bed, or a shell that sourced $STATE/env, must survive).
orphans() {
  local pid args
  while read -r pid args; do
    case $args in
      "$BIN/trading-heal-agent-sim "*) grep -qzxF "SIM_CONTROL_DIR=$CONTROL" "/proc/$pid/environ" ;;
      */dbus-daemon\ *) grep -qzxF "XDG_RUNTIME_DIR=$XDG_RUNTIME" "/proc/$pid/environ" ;;
      *) false ;;
    esac 2>/dev/null && echo "$pid"
  done < <(ps -e -o pid=,args=)
  return 0
}

manager_stop() {
  user_env
  local pid left="" had_manager=0
  [[ -f $PIDS/manager.pid ]] && had_manager=1
  if alive manager; then
    say "stopping agents"
    timeout 30 systemctl --user stop 'crypto-agent@*' 2>/dev/null || true
    pid=$(<"$PIDS/manager.pid")
    left=$(descendants "$pid" | xargs)
  fi
  stop_recorded manager TERM 20
  ((had_manager)) || return 0
  for pid in $left $(orphans); do
    pid_gone "$pid" && continue
    say "stopping leftover pid $pid ($(readlink "/proc/$pid/exe" 2>/dev/null || true))"
    kill_wait "$pid" TERM 5
  done
}

# --- agents -----------------------------------------------------------------------------------

symbol_of() { local p; IFS=_ read -ra p <<<"$1"; echo "${p[0]}${p[1]:+-${p[1]}}"; }
profile_of() {
  local p
  IFS=_ read -ra p <<<"$1"
  if ((${#p[@]} > 2)); then local IFS=_; echo "${p[*]:2}"; else echo default; fi
}

check_instance() {
  [[ $1 =~ ^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$ ]] || die "invalid instance name '$1'"
}

rows_written() {  # every agent has at least one row
  local have a
  have=$(psql_super -At -c "SELECT DISTINCT symbol || '|' || profile FROM btc.decisions") ||
    return 1
  for a in $AGENTS; do
    grep -qxF "$(symbol_of "$a")|$(profile_of "$a")" <<<"$have" || return 1
  done
}

agents_start() {
  user_env
  local a units=()
  for a in $AGENTS; do check_instance "$a"; units+=("crypto-agent@$a.service"); done
  # ASAN_OPTIONS, for sanitizer builds (CI): LeakSanitizer's check at exit left about 1 stop in
  # 75 hanging until TimeoutStopSec's SIGKILL (8 of 600 restarts took 10.2 s; 0 of 600 without
  # it), and made libpq's leak on a lost connection exit status 23, a `failed` unit. The
  # simulator stands in for a Python agent: its leaks are not ours to find.
  cat >"$STATE/agents.env" <<EOF
AGENT_DATABASE_URL=$(db_url crypto_agent)
DECISION_INTERVAL=$DECISION_INTERVAL
SIM_BOOTSTRAP_SECONDS=$BOOTSTRAP_SECONDS
SIM_HEARTBEAT_DIR=$HEARTBEATS
SIM_CONTROL_DIR=$CONTROL
ASAN_OPTIONS=detect_leaks=0
EOF
  systemctl --user daemon-reload
  say "starting agents: $AGENTS"
  systemctl --user start "${units[@]}"
  wait_for "a decision row from every agent" 60 rows_written ||
    die "agents wrote no rows; try: journalctl -u 'crypto-agent@*' -n 50"
}

# --- fake Ollama ------------------------------------------------------------------------------

ollama_start() {
  local exe=$BIN/trading-heal-fake-ollama
  if [[ ! -x $exe ]]; then say "no $exe yet; skipping the fake Ollama"; return; fi
  if alive fake-ollama; then say "fake ollama already running"; return; fi
  port_busy "$OLLAMA_PORT" && die "port $OLLAMA_PORT is busy (set TRADING_HEAL_BED_OLLAMA_PORT)"
  say "starting fake ollama on 127.0.0.1:$OLLAMA_PORT"
  : >"$LOGS/fake-ollama.out"
  setsid "$exe" --listen "127.0.0.1:$OLLAMA_PORT" </dev/null >"$LOGS/fake-ollama.out" \
    2>>"$LOGS/fake-ollama.log" &
  record fake-ollama $! trading-heal-fake-ollama
  wait_for "fake ollama" 15 grep -qxF "listening on 127.0.0.1:$OLLAMA_PORT" \
    "$LOGS/fake-ollama.out" || die "fake ollama did not start, see $LOGS/fake-ollama.log"
}

# --- commands ---------------------------------------------------------------------------------

write_env() {
  local tmp=$STATE/env.tmp
  {
    echo "TRADING_HEAL_BED_DIR=$STATE"
    echo "XDG_RUNTIME_DIR=$XDG_RUNTIME"
    echo "XDG_CONFIG_HOME=$XDG_CONFIG"
    echo "DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME/bus"
    echo "PGHOST=127.0.0.1"
    echo "PGPORT=$PG_PORT"
    echo "PSQL_SUPER=PGUSER=postgres"
    echo "PGPASSFILE=$PGPASS"
    echo "DATABASE_URL=$(db_url trading_heal_ro)"
    echo "AGENT_DATABASE_URL=$(db_url crypto_agent)"
    echo "SUPER_DATABASE_URL=$(db_url postgres)"
    echo "PG_SOCKET_DIR=$(pg_root)/sock"  # for clients in another network namespace
    alive fake-ollama && echo "OLLAMA_HOST=http://127.0.0.1:$OLLAMA_PORT"
    echo "TRADING_HEAL_SYSTEMD_SCOPE=user"
    echo "TRADING_HEAL_HEARTBEAT_DIR=$HEARTBEATS"
    echo "TRADING_HEAL_BED_CONTROL_DIR=$CONTROL"
    echo "TRADING_HEAL_BED_LOG_DIR=$LOGS"
    echo "TRADING_HEAL_AGENTS=$(echo "$AGENTS" | tr ' ' ',')"
    echo "DECISION_INTERVAL=$DECISION_INTERVAL"
  } >"$tmp"
  mv "$tmp" "$STATE/env"
}

any_alive() { alive postgres || alive journald || alive manager || alive fake-ollama; }

cmd_start() {
  [[ -x $BIN/trading-heal-agent-sim ]] ||
    die "no $BIN/trading-heal-agent-sim: build it and set TRADING_HEAL_BIN_DIR"
  local t0 other
  t0=$(now_ms)
  if ! alive manager && [[ $(cat /proc/1/comm) != systemd ]] && other=$(other_manager); then
    die "another systemd --user runs (pid $other): another testbed? stop it first"
  fi
  mkdir -p "$STATE"
  why=$(trusted_dir "$STATE") || die "refusing the state dir $STATE: $why"
  if ! any_alive; then  # a fresh bed: forget everything the last one left
    rm -rf "$PIDS" "$LOGS" "$CONTROL" "$HEARTBEATS" "$XDG_CONFIG" "$STATE/env" "$STATE/pg-root" "$PGPASS"
    rm -rf "$STATE/pg" "/tmp/trading-heal-bed-pg-$HASH"
  fi
  mkdir -p "$PIDS" "$LOGS" "$CONTROL" "$HEARTBEATS" "$XDG_CONFIG"
  chmod 755 "$STATE"
  cat >"$STATE/bed.conf" <<EOF
TRADING_HEAL_BIN_DIR='$BIN'
TRADING_HEAL_BED_PG_PORT=$PG_PORT
TRADING_HEAL_BED_OLLAMA_PORT=$OLLAMA_PORT
TRADING_HEAL_BED_AGENTS='$AGENTS'
TRADING_HEAL_BED_DECISION_INTERVAL=$DECISION_INTERVAL
TRADING_HEAL_BED_BOOTSTRAP_SECONDS=$BOOTSTRAP_SECONDS
EOF
  pg_start
  journald_start
  manager_start
  agents_start
  ollama_start
  write_env
  say "ready in $(($(now_ms) - t0)) ms; environment in $STATE/env"
}

cmd_stop() {
  [[ -d $STATE ]] || { say "nothing to stop"; return 0; }
  mkdir -p "$PIDS"
  rm -f "$STATE/env"
  manager_stop
  stop_recorded fake-ollama TERM 10
  stop_recorded journald TERM 10
  pg_stop
  rm -f "$PGPASS"
  if [[ -f $RUN_SYSTEMD_MARK ]]; then
    rmdir /run/systemd/system 2>/dev/null || say "/run/systemd/system not empty; left in place"
    rm -f "$RUN_SYSTEMD_MARK"
  fi
  say "stopped"
}

cmd_status() {
  local n
  for n in postgres journald manager fake-ollama; do
    if alive "$n"; then echo "$n: running (pid $(<"$PIDS/$n.pid"))"; else echo "$n: stopped"; fi
  done
  if alive manager; then
    user_env
    systemctl --user list-units 'crypto-agent@*' --all --no-legend --plain 2>/dev/null || true
  fi
  if alive postgres; then
    psql_super -At -F ' ' -c "SELECT symbol, profile, count(*) AS rows,
      round((extract(epoch FROM now()) - max(timestamp))::numeric, 1) AS age_s
      FROM btc.decisions GROUP BY 1, 2 ORDER BY 1, 2" 2>/dev/null | sed 's/^/decisions: /' || true
  fi
  any_alive
}

cmd_fault() {
  (($# >= 2)) || die "usage: bed.sh fault INSTANCE MODE [ARG] [sticky]"
  local inst=$1
  shift
  check_instance "$inst"
  [[ " $FAULT_MODES " == *" $1 "* ]] || die "unknown fault mode '$1' (one of: $FAULT_MODES)"
  mkdir -p "$CONTROL"
  echo "$*" >"$CONTROL/$inst.fault.tmp"
  mv "$CONTROL/$inst.fault.tmp" "$CONTROL/$inst.fault"
  say "fault $inst: $*"
}

cmd_restart_policy() {
  (($# == 2)) || die "usage: bed.sh restart-policy INSTANCE no|always"
  check_instance "$1"
  [[ $2 == no || $2 == always ]] || die "restart policy must be no or always"
  local dir=$UNIT_DIR/crypto-agent@$1.service.d
  mkdir -p "$dir"
  printf '[Service]\nRestart=%s\n' "$2" >"$dir/restart.conf"
  user_env
  systemctl --user daemon-reload
  say "crypto-agent@$1: Restart=$2"
}

rows_since() {  # every agent wrote a row newer than $1 (epoch seconds)
  local have a
  have=$(psql_super -At -c "SELECT DISTINCT symbol || '|' || profile FROM btc.decisions
                             WHERE timestamp > $1") || return 1
  for a in $AGENTS; do
    grep -qxF "$(symbol_of "$a")|$(profile_of "$a")" <<<"$have" || return 1
  done
}

# Back to a clean fleet between test programs: PostgreSQL up, no faults, the operators'
# restart policy, only the configured agents, each freshly started and writing rows.
cmd_reset() {
  alive manager || die "the testbed is not running (bed.sh start)"
  mkdir -p "$PIDS" "$LOGS" "$CONTROL"
  pg_thaw
  alive postgres || pg_start
  rm -f "$CONTROL"/*.fault "$CONTROL"/*.bootstrap
  rm -rf "$UNIT_DIR"/crypto-agent@*.service.d
  user_env
  systemctl --user daemon-reload
  local a u units=() extra=()
  for a in $AGENTS; do units+=("crypto-agent@$a.service"); done
  for u in $(systemctl --user list-units --all --plain --no-legend 'crypto-agent@*' | awk '{print $1}'); do
    [[ " ${units[*]} " == *" $u "* ]] || extra+=("$u")
  done
  ((${#extra[@]} == 0)) || systemctl --user stop "${extra[@]}" || true
  systemctl --user reset-failed 'crypto-agent@*' 2>/dev/null || true
  local since
  since=$(date +%s.%N)
  systemctl --user restart "${units[@]}"
  wait_for "a fresh decision row from every agent" 60 rows_since "$since" ||
    die "agents wrote no rows after the reset; try: journalctl -u 'crypto-agent@*' -n 50"
  say "reset: ${#units[@]} agents running clean${extra:+, stopped ${extra[*]}}"
}

case "${1:-}" in
  start) cmd_start ;;
  reset) cmd_reset ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  fault) shift; cmd_fault "$@" ;;
  restart-policy) shift; cmd_restart_policy "$@" ;;
  pg-stop) pg_stop ;;
  pg-freeze) pg_freeze ;;
  pg-thaw) pg_thaw; say "postgres thawed" ;;
  pg-start) mkdir -p "$PIDS" "$LOGS"; pg_start ;;
  *) echo "usage: bed.sh start|stop|status|reset|fault INSTANCE MODE [ARG] [sticky]|restart-policy INSTANCE no|always|pg-stop|pg-start|pg-freeze|pg-thaw" >&2
     exit 2 ;;
esac
