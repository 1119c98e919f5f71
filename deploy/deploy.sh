#!/usr/bin/env bash
# One-command install of trading-heal on this host, or on user@host over ssh.
#
#   deploy/deploy.sh [options] [user@host]
#
#   --instance NAME           deployment name, the units' %i (default: main)
#   --build-dir DIR           where the binaries are: DIR/bin/trading-heal-* (default: build)
#   --prefix DIR              binaries go to DIR/bin (default /usr/local; --user: ~/.local)
#   --deb FILE                install the .deb made by CPack (cpack -G DEB) instead of the build's
#                             binaries and units (apt-get install ./FILE, which brings its
#                             dependencies from Debian; skipped when that version is installed)
#   --from-package            use the installed trading-heal package's binaries and units
#   --user                    rootless: units in the user manager ($XDG_CONFIG_HOME/systemd/user),
#                             no users, no polkit rule, TRADING_HEAL_SYSTEMD_SCOPE=user
#   --prometheus-config FILE  prometheus.yml to merge the scrape jobs into
#                             (default /etc/prometheus/prometheus.yml; --user: none, step skipped)
#   --env KEY=VALUE           a setting for the env files when deploy creates them (repeatable;
#                             an existing env file is never changed): the database's (POSTGRES_*,
#                             DATABASE_URL) go to NAME.probe.env, the model's (OLLAMA_HOST, _MODEL,
#                             _API, _KEEP_ALIVE) to NAME.diagnoser.env, the rest to NAME.env
#   --operator USER           add USER to the group trading-heal-operators (trading-heal-ctl:
#                             commands, the env file, the API token); repeatable
#   --ssh-opt OPTION          an ssh option for user@host (repeatable), e.g. --ssh-opt Port=2222
#   --listen ADDR             serve /metrics and the API on ADDR (an IP address of this host, or
#                             0.0.0.0) instead of 127.0.0.1, for a Prometheus elsewhere; the API
#                             keeps its token (written into the env file when deploy creates it)
#   --role centre|host        many hosts (docs/operations.md "Many hosts"); default: neither, all
#                             four daemons on this host, as before. Give the same --role every run.
#     --role centre [--centre ADDR[:PORT]]
#                             the exporter and the diagnoser (probe and actuator masked, no agents
#                             of its own), binding the state collector on tcp://ADDR:PORT and the
#                             events on PORT+1, its orders to the hosts on PORT+2, the hosts' model
#                             requests on PORT+3 (passed to its diagnoser, which asks OLLAMA_HOST:
#                             give it with --env) (default all addresses, tcp://*:9130-9133); its key
#                             /etc/trading-heal/keys/centre.{key,pub} (owner trading-heal-exporter),
#                             the allow-list /etc/trading-heal/hosts.d/HOST.pub, the Prometheus job
#     --role host --centre ADDR[:PORT]
#                             probe, diagnoser, actuator (the exporter masked, no Prometheus job):
#                             the probe sends to the centre at ADDR (a name or IPv4 address as this
#                             host reaches it), PORT (default 9130), PORT+1, PORT+2 and PORT+3 (the
#                             diagnoser asks the centre's model through the probe); the host's key
#                             /etc/trading-heal/keys/HOST.{key,pub} (owner trading-heal-probe),
#                             the centre's public key as /etc/trading-heal/keys/centre.pub
#   --centre-key FILE         (host) the centre's public key (its /etc/trading-heal/keys/centre.pub)
#   --centre-ssh USER@CENTRE  (host) fetch the centre's public key over ssh and add this host's to
#                             the centre's hosts.d (then SIGHUP its exporter). Default with a
#                             user@host argument and no --centre-key: the same user @ the --centre
#                             address. Without either, deploy prints the commands to run.
#   --host-name NAME          (host) its name at the centre, the file name of its key (default: the
#                             name of its existing key, else its host name)
#   --add-host NAME=FILE      (centre) allow the host NAME: FILE (its HOST.pub) goes to hosts.d as
#                             NAME.pub; an existing NAME.pub with another key is refused (repeatable)
#   --hosts-only              (centre) only the --add-host keys and the exporters' SIGHUP
#   --no-start                install only: do not start or verify
#   --dry-run                 print the plan, change nothing
#   --plan-dir DIR            with --dry-run: also write each file it would install or update
#                             to DIR/ its path (the env files, units, prometheus.yml) to read
#   --uninstall [--purge]     remove what deploy installed; --purge also the data dir, an
#                             edited env file and (system mode) the users
#
# What it does (system mode, as root): one user per daemon (trading-heal-probe, -diagnoser,
# -actuator, -exporter, each with its own group) and the group trading-heal-operators, the data
# dir, binaries to PREFIX/bin, the units of systemd/ to /etc/systemd/system, the settings from
# deploy/*.env.example (never overwritten): /etc/trading-heal/NAME.env (shared, 0640 root:
# trading-heal-operators), NAME.probe.env and NAME.diagnoser.env (the database's and the model's
# settings, 0600 root: only systemd reads them, for that daemon alone; lines of theirs found in
# NAME.env are moved there), a random API token (NAME.token, 0640 root:trading-heal-operators,
# handed to the exporter as a systemd credential, never printed), with --role centre
# NAME.exporter.env (0600 root: the exporter's links to the hosts, its key), the actuator's permission (polkit rule from deploy/permissions/gen-polkit-rule.sh:
# restart and reset-failed of exactly the configured agents' units, over D-Bus; there is no sudo
# way, since sudo cannot run under the actuator's sandbox), the Prometheus scrape
# jobs (trading-heal's exporter and the agents' 9092-9097) as a marked block in prometheus.yml
# checked with `promtool check config` (skipped on a host without Prometheus), the alert rules
# next to it; then enables and starts
# trading-heal@NAME.target and verifies: unit states, GET /health on the API port, a scrape of the
# metrics port. Every step compares before it writes: a second run changes nothing and says so.
#
# Over ssh (a user@host argument) it copies itself, deploy/, systemd/ and the binaries to a
# temporary directory on the host and runs there with the same options (sudo when not root).
#
# Many hosts, from one place with ssh to every machine (the centre first):
#   deploy/deploy.sh --deb FILE --role centre ops@centre
#   deploy/deploy.sh --deb FILE --role host --centre centre.example ops@host1
# The second fetches centre.pub from ops@centre.example, deploys host1 with it, then adds
# host1's public key to the centre's hosts.d and SIGHUPs the centre's exporter. Keys are made
# once and never replaced; a second run of either changes nothing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
COMPONENTS=(probe diagnoser actuator exporter)
TOOLS=(ctl tap)
BEGIN_MARK="# BEGIN trading-heal"
END_MARK="# END trading-heal"

instance=main
build_dir=build
prefix=""
user_mode=0
ssh_opts=(-o BatchMode=yes)
listen_addr=""
prom_config=""
prom_config_set=0
dry=0
uninstall=0
purge=0
start=1
host=""
deb=""
from_package=0
env_sets=()
operators=()
role=""
centre=""
centre_key=""
centre_ssh=""
host_name=""
add_hosts=()
hosts_only=0
exchange_by_caller=0
plan_dir=""
STATE_PORT=9130   # the centre's state collector; its events endpoint is the next port
orig_args=("$@")

die() { echo "deploy: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-64}"; }

while (($#)); do
  case $1 in
    --instance) instance=${2:?--instance needs a name}; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a directory}; shift 2 ;;
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --user) user_mode=1; shift ;;
    --deb) deb=${2:?--deb needs a .deb file}; from_package=1; shift 2 ;;
    --from-package) from_package=1; shift ;;
    --sudoers) die "--sudoers is gone: sudo cannot run in the hardened actuator (NoNewPrivileges=); the polkit rule gives the same narrow permission over D-Bus" ;;
    --ssh-opt) ssh_opts+=(-o "${2:?--ssh-opt needs an OPTION, e.g. Port=2222}"); shift 2 ;;
    --listen) listen_addr=${2:?--listen needs an address}; shift 2 ;;
    --prometheus-config) prom_config=${2:?--prometheus-config needs a file}; prom_config_set=1; shift 2 ;;
    --env) env_sets+=("${2:?--env needs KEY=VALUE}"); shift 2 ;;
    --operator) operators+=("${2:?--operator needs a user name}"); shift 2 ;;
    --role) role=${2:?--role needs centre or host}; shift 2 ;;
    --centre) centre=${2:?--centre needs ADDR[:PORT]}; shift 2 ;;
    --centre-key) centre_key=${2:?--centre-key needs a file}; shift 2 ;;
    --centre-ssh) centre_ssh=${2:?--centre-ssh needs USER@CENTRE}; shift 2 ;;
    --host-name) host_name=${2:?--host-name needs a name}; shift 2 ;;
    --add-host) add_hosts+=("${2:?--add-host needs NAME=FILE}"); shift 2 ;;
    --hosts-only) hosts_only=1; shift ;;
    --exchange-by-caller) exchange_by_caller=1; shift ;;   # internal: deploy over ssh does it
    --no-start) start=0; shift ;;
    --dry-run) dry=1; shift ;;
    --plan-dir) plan_dir=${2:?--plan-dir needs a directory}; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h | --help) usage 0 ;;
    -*) echo "deploy: unknown option $1" >&2; usage ;;
    *) [[ -z $host ]] || die "one host only"; host=$1; shift ;;
  esac
done
[[ $instance =~ ^[A-Za-z0-9]+([_-][A-Za-z0-9]+)*$ ]] || die "invalid instance name '$instance'"
for kv in "${env_sets[@]}"; do
  [[ $kv =~ ^[A-Z][A-Z0-9_]*=[^$'\n']*$ ]] || die "--env wants KEY=VALUE, got '$kv'"
done
for u in "${operators[@]}"; do
  [[ $u =~ ^[a-z_][a-z0-9_.-]*[$]?$ ]] || die "--operator wants a user name, got '$u'"
done
((${#operators[@]} == 0 || user_mode == 0)) || die "--operator is for system mode (a user manager has one user)"
((purge == 0 || uninstall == 1)) || die "--purge goes with --uninstall"
[[ -z $plan_dir ]] || ((dry)) || die "--plan-dir goes with --dry-run"
[[ -z $plan_dir || $plan_dir == /* ]] || plan_dir=$PWD/$plan_dir
[[ -z $plan_dir || -z $host ]] || die "--plan-dir is for this host (no user@host)"
if [[ -n $listen_addr ]]; then
  [[ $listen_addr =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ || $listen_addr =~ ^\[[0-9a-fA-F:]+\]$ ]] ||
    die "--listen wants an IP address of this host (e.g. 192.0.2.10, [2001:db8::10] or 0.0.0.0), got '$listen_addr'"
  env_sets+=("TRADING_HEAL_METRICS_LISTEN=$listen_addr:9120" "TRADING_HEAL_API_LISTEN=$listen_addr:9121")
fi
((user_mode == 0 || from_package == 0)) || die "--deb/--from-package install system-wide (no --user)"
[[ -z $deb || -f $deb ]] || die "no such file: $deb"
[[ $build_dir == /* ]] || build_dir=$ROOT/$build_dir

# --- many hosts: the role ------------------------------------------------------------------------
# The .pub files keygen writes: a comment line and the public key, 40 characters of Z85.
Z85_LINE='^[][0-9a-zA-Z.:+=^!/*?&<>(){}@%$#-]{40}$'
valid_name() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ ]]; }
# has_item WORD LIST...: WORD is one of LIST. Not `printf ... | grep -q`: under pipefail, grep
# leaving at its match breaks the pipe for printf's next write (bash writes each item apart),
# and the test fails now and then on a loaded machine (it once masked the actuator).
has_item() {
  local w=$1 x
  shift
  for x; do [[ $x == "$w" ]] && return 0; done
  return 1
}
# has_key KEY LIST...: one of LIST (KEY=VALUE words) sets KEY.
has_key() {
  local k=$1 x
  shift
  for x; do [[ ${x%%=*} == "$k" ]] && return 0; done
  return 1
}
is_pub_file() { [[ -f $1 ]] && grep -Eq "$Z85_LINE" "$1"; }
case $role in
  "" | centre | host) ;;
  *) die "--role wants centre or host, got '$role'" ;;
esac
if [[ -z $role ]]; then
  [[ -z $centre ]] || die "--centre goes with --role host (or --role centre)"
  for o in centre-key centre-ssh host-name; do
    v=${o//-/_}
    [[ -z ${!v} ]] || die "--$o goes with --role host"
  done
  ((${#add_hosts[@]} == 0 && hosts_only == 0)) || die "--add-host and --hosts-only go with --role centre"
else
  ((user_mode == 0)) || die "--role is for system mode (no --user)"
fi
centre_addr="" centre_port=$STATE_PORT
if [[ -n $centre ]]; then
  [[ $centre =~ ^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:([0-9]{1,5}))?$ ]] ||
    die "--centre wants ADDR[:PORT] (a host name or IPv4 address, the state port; the events use PORT+1, the orders PORT+2), got '$centre'"
  centre_addr=${BASH_REMATCH[1]} centre_port=${BASH_REMATCH[4]:-$STATE_PORT}
  ((centre_port >= 1 && centre_port <= 65532)) || die "--centre $centre: the port must be 1-65532 (the events use PORT+1, the orders PORT+2, the model PORT+3)"
fi
if [[ $role == host ]]; then
  [[ -n $centre ]] || ((uninstall)) || die "--role host needs --centre ADDR[:PORT] (the centre's address as this host reaches it)"
  [[ $centre_addr != 0.0.0.0 ]] || die "--role host: --centre 0.0.0.0 is not an address to connect to"
  [[ -z $host_name ]] || valid_name "$host_name" ||
    die "--host-name wants 1-63 of [A-Za-z0-9._-], starting with a letter or digit, got '$host_name'"
  [[ $host_name != centre ]] || die "--host-name centre: that name is the centre's key (keys/centre.pub) on a host"
  [[ -z $centre_key ]] || is_pub_file "$centre_key" ||
    die "--centre-key $centre_key: not a public key file (the centre's /etc/trading-heal/keys/centre.pub)"
  [[ -z $centre_ssh || $centre_ssh =~ ^([A-Za-z0-9._-]+@)?[A-Za-z0-9.:_-]+$ ]] || die "invalid --centre-ssh '$centre_ssh'"
  ((${#add_hosts[@]} == 0 && hosts_only == 0)) || die "--add-host and --hosts-only go with --role centre"
elif [[ $role == centre ]]; then
  [[ -z $centre_key$centre_ssh$host_name ]] || die "--centre-key, --centre-ssh and --host-name go with --role host"
  for a in "${add_hosts[@]}"; do
    { [[ $a == *=* ]] && valid_name "${a%%=*}"; } ||
      die "--add-host wants NAME=FILE (NAME: 1-63 of [A-Za-z0-9._-], the host's name at the centre), got '$a'"
    [[ ${a%%=*} != centre ]] || die "--add-host centre=...: centre is the centre's own key"
    is_pub_file "${a#*=}" || die "--add-host $a: ${a#*=} is not a public key file (the host's HOST.pub)"
  done
  ((hosts_only == 0 || ${#add_hosts[@]} > 0)) || die "--hosts-only needs --add-host NAME=FILE"
fi

# --- remote: copy and run there -----------------------------------------------------------------
# remote USER@HOST STAGE ARGS...: run STAGE/deploy/deploy.sh on USER@HOST from a temporary copy of
# STAGE (sudo when not root) with ARGS (quoted for the remote shell, where $d is the copy).
remote() {
  local h=$1 st=$2
  shift 2
  # shellcheck disable=SC2029  # the remote command is built here on purpose, options quoted
  tar -C "$st" -czf - . |
    ssh "${ssh_opts[@]}" "$h" "set -e; d=\$(mktemp -d); trap 'rm -rf \"\$d\"' EXIT;
      tar -C \"\$d\" -xzf -; s=; [ \"\$(id -u)\" = 0 ] || s='sudo -n';
      \$s \"\$d/deploy/deploy.sh\" --build-dir \"\$d/build\" $*"
}

# The centre's side of the key exchange, over ssh (--role host): its public key, and this host's
# added to its allow-list (deploy.sh --role centre --hosts-only there).
fetch_centre_key() {  # fetch_centre_key DEST
  echo "deploy: fetching the centre's public key from $centre_ssh" >&2
  # shellcheck disable=SC2029
  { ssh "${ssh_opts[@]}" "$centre_ssh" cat /etc/trading-heal/keys/centre.pub >"$1" 2>/dev/null && is_pub_file "$1"; } ||
    die "cannot read /etc/trading-heal/keys/centre.pub on $centre_ssh: deploy the centre first" \
      "(deploy.sh --role centre $centre_ssh), or copy that file here and give --centre-key FILE"
}
push_host_key() {  # push_host_key NAME PUBFILE
  local st err
  st=$(mktemp -d)
  # Outside the copied directory: tar must not read a file that is being written.
  err=$(mktemp)
  mkdir -p "$st/build"
  cp -a "$HERE" "$st/deploy"
  cp "$2" "$st/build/host.pub"
  echo "deploy: adding $1's public key to the centre's hosts.d on $centre_ssh" >&2
  local extra=()
  ((dry == 0)) || extra+=(--dry-run)
  remote "$centre_ssh" "$st" --role centre --hosts-only "${extra[@]}" \
    --add-host "$(printf %q "$1")=\"\$d/build/host.pub\"" 2> >(tee "$err" >&2) ||
    { rm -rf "$st" "$err"; die "adding $1's key on the centre $centre_ssh failed (see above)"; }
  # A probe refused by the centre does not try again (libzmq ends a link whose CURVE handshake
  # was refused): once the centre knows a new key, the host's probe connects anew.
  key_added=0
  grep -q "nothing to change" "$err" || key_added=1
  rm -rf "$st" "$err"
}
key_added=0
# The commands an operator runs when deploy cannot reach the centre itself.
print_exchange() {  # print_exchange NAME HOST_SSH (empty: this host)
  local pub=/etc/trading-heal/keys/$1.pub
  echo "deploy: the centre must allow this host: its public key $pub goes to the centre's hosts.d:" >&2
  if [[ -n $2 ]]; then
    echo "  scp ${ssh_opts[*]} $2:$pub ./$1.pub" >&2
  else
    echo "  (copy $pub from this host to where you run deploy.sh for the centre)" >&2
  fi
  echo "  deploy/deploy.sh --role centre --hosts-only --add-host $1=$1.pub OPS@CENTRE" >&2
  echo "then, on this host: systemctl restart trading-heal-probe@$instance (a probe refused once does not try again)" >&2
}
HOST_KEY_MARK=TRADING-HEAL-HOST-KEY   # the remote run's stdout line: MARK NAME (its key for the centre)

if [[ $role == host && -z $centre_key && -z $centre_ssh && -n $host ]]; then
  centre_ssh=$centre_addr
  [[ $host != *@* ]] || centre_ssh=${host%%@*}@$centre_addr
fi

if [[ -n $host ]]; then
  [[ $host =~ ^([A-Za-z0-9._-]+@)?[A-Za-z0-9.:_-]+$ ]] || die "invalid host '$host'"
  stage=$(mktemp -d)
  # What the remote run prints, outside the directory tar sends while it runs.
  out=$(mktemp)
  trap 'rm -rf "$stage" "$out"' EXIT
  mkdir -p "$stage/build/bin"
  cp -a "$ROOT/deploy" "$ROOT/systemd" "$stage/"
  if [[ -n $deb ]]; then
    cp "$deb" "$stage/build/trading-heal.deb"
  elif ((uninstall == 0 && from_package == 0 && hosts_only == 0)); then
    for b in "${COMPONENTS[@]}" "${TOOLS[@]}"; do
      [[ -x $build_dir/bin/trading-heal-$b ]] || die "no $build_dir/bin/trading-heal-$b (build first)"
      cp "$build_dir/bin/trading-heal-$b" "$stage/build/bin/"
    done
  fi
  fwd=()
  if [[ $role == host && -n $centre_ssh && $uninstall == 0 ]]; then
    [[ -n $centre_key ]] || fetch_centre_key "$stage/build/centre.pub"
  fi
  [[ -z $centre_key ]] || cp "$centre_key" "$stage/build/centre.pub"
  # shellcheck disable=SC2016  # $d: the copy's directory, expanded there
  [[ ! -f $stage/build/centre.pub ]] || fwd+=(--centre-key '"$d/build/centre.pub"')
  [[ $role != host ]] || fwd+=(--exchange-by-caller)
  # Forward every option except the host and --build-dir (the copy has its own) and the files
  # copied along (their copies instead).
  skip=0 n=0
  for a in "${orig_args[@]}"; do
    if ((skip)); then skip=0; continue; fi
    case $a in
      --build-dir | --ssh-opt | --centre-key | --centre-ssh) skip=1 ;;
      --deb) skip=1; fwd+=(--deb '"$d/build/trading-heal.deb"') ;;
      --add-host) skip=1 ;;
      "$host") ;;
      *) fwd+=("$(printf %q "$a")") ;;
    esac
  done
  for a in "${add_hosts[@]}"; do
    n=$((n + 1))
    cp "${a#*=}" "$stage/build/add-host-$n.pub"
    fwd+=(--add-host "$(printf %q "${a%%=*}")=\"\$d/build/add-host-$n.pub\"")
  done
  echo "deploy: copying to $host and running there" >&2
  status=0
  remote "$host" "$stage" "${fwd[*]}" >"$out" || status=$?
  grep -v "^$HOST_KEY_MARK " "$out" || true
  ((status == 0)) || exit "$status"
  if [[ $role == host && $uninstall == 0 ]]; then
    mark=$(sed -n "s/^$HOST_KEY_MARK //p" "$out" | tail -1)
    if [[ -z $mark ]]; then
      ((dry)) || die "$host did not name its key"
      echo "deploy: would add the host's public key to the centre's hosts.d (${centre_ssh:-by hand})" >&2
    elif [[ -n $centre_ssh ]]; then
      # shellcheck disable=SC2029
      { ssh "${ssh_opts[@]}" "$host" cat "/etc/trading-heal/keys/$mark.pub" >"$stage/host.pub" &&
        is_pub_file "$stage/host.pub"; } || die "cannot read /etc/trading-heal/keys/$mark.pub on $host"
      push_host_key "$mark" "$stage/host.pub"
      if ((key_added && !dry)); then
        # shellcheck disable=SC2029
        ssh "${ssh_opts[@]}" "$host" "s=; [ \"\$(id -u)\" = 0 ] || s='sudo -n';
          \$s systemctl restart trading-heal-probe@$instance.service" ||
          die "restarting trading-heal-probe@$instance on $host failed"
        echo "deploy: restarted trading-heal-probe@$instance on $host (it connects to the centre now)" >&2
      fi
      echo "deploy: $mark is deployed and the centre ($centre_ssh) allows it" >&2
    else
      print_exchange "$mark" "$host"
    fi
  fi
  exit 0
fi

# --- where things go ----------------------------------------------------------------------------
if ((user_mode)); then
  [[ $(id -u) -ne 0 || -n ${XDG_RUNTIME_DIR:-} ]] || die "--user needs XDG_RUNTIME_DIR (a user manager)"
  : "${HOME:?}"
  config_home=${XDG_CONFIG_HOME:-$HOME/.config}
  state_home=${XDG_STATE_HOME:-$HOME/.local/state}
  prefix=${prefix:-$HOME/.local}
  unit_dir=$config_home/systemd/user
  admin_dir=$unit_dir  # the manager's configuration: masks (links to /dev/null), drop-ins
  env_dir=$config_home/trading-heal
  data_dir=$state_home/trading-heal/$instance
  run_dir=${XDG_RUNTIME_DIR:-/nonexistent}/trading-heal/$instance
  sc() { systemctl --user "$@"; }
  scope=user
else
  prefix=${prefix:-/usr/local}
  unit_dir=/etc/systemd/system
  admin_dir=/etc/systemd/system
  if ((from_package)); then prefix=/usr; unit_dir=/lib/systemd/system; fi
  env_dir=/etc/trading-heal
  data_dir=/var/lib/trading-heal/$instance
  run_dir=/run/trading-heal/$instance
  sc() { systemctl "$@"; }
  scope=system
  if ((prom_config_set == 0)); then prom_config=/etc/prometheus/prometheus.yml; fi
fi
# The Prometheus job is the centre's (one target for all hosts); a host has no exporter.
[[ $role != host && $hosts_only == 0 ]] || prom_config=""
bin_dir=$prefix/bin
rules_file=$prefix/share/trading-heal/rules/trading-heal.rules
env_file=$env_dir/$instance.env
env_sum=$env_dir/.$instance.env.deployed   # checksum of the env file as deploy wrote it
# The settings only one daemon may see (its unit's second EnvironmentFile=), by component.
declare -A secret_file=([probe]=$env_dir/$instance.probe.env [diagnoser]=$env_dir/$instance.diagnoser.env
  [exporter]=$env_dir/$instance.exporter.env)
token_file=$env_dir/$instance.token        # the API's bearer token (made once, never printed)
target=trading-heal@$instance.target
# The daemons this host runs (the others' instances are masked), the files of their own settings.
case $role in
  centre) role_components=(exporter diagnoser) secret_components=(exporter diagnoser) ;;
  host) role_components=(probe diagnoser actuator) secret_components=(probe diagnoser) ;;
  *) role_components=("${COMPONENTS[@]}") secret_components=(probe diagnoser) ;;
esac
services=() all_services=()
for c in "${role_components[@]}"; do services+=("trading-heal-$c@$instance.service"); done
for c in "${COMPONENTS[@]}"; do all_services+=("trading-heal-$c@$instance.service"); done
# Many hosts: the keys (one identity per machine, whatever the instance) and the centre's
# allow-list, as docs/operations.md "Many hosts" names them.
keys_dir=$env_dir/keys
hosts_dir=$env_dir/hosts.d
ctl_bin=$bin_dir/trading-heal-ctl
((from_package == 0)) || ctl_bin=/usr/bin/trading-heal-ctl
role_sets=()   # the role's settings (KEY=VALUE), before the operator's --env (which win)
if [[ $role == centre ]]; then
  # All addresses: `*` (libzmq binds it as it is). Any other address libzmq first looks up among
  # the interfaces (getifaddrs, a netlink socket the exporter's sandbox refuses: step_roles
  # allows it for this instance).
  bind=${centre_addr:-*}
  [[ $bind != 0.0.0.0 ]] || bind='*'
  role_sets=("TRADING_HEAL_STATE_ENDPOINT=tcp://$bind:$centre_port"
    "TRADING_HEAL_EVENTS_ENDPOINT=tcp://$bind:$((centre_port + 1))"
    "TRADING_HEAL_FLEET_ENDPOINT=tcp://$bind:$((centre_port + 2))"
    "TRADING_HEAL_ANALYSIS_ENDPOINT=tcp://$bind:$((centre_port + 3))"
    "TRADING_HEAL_MODEL_ENDPOINT=ipc://$run_dir/diagnoser/model.sock"
    "TRADING_HEAL_CURVE_SECRET_KEY_FILE=$keys_dir/centre.key"
    "TRADING_HEAL_HOSTS_DIR=$hosts_dir")
  # Its key is made before it is installed: an existing one is found in pre-flight.
elif [[ $role == host ]]; then
  # The host's name: --host-name, else the name of the key it already has (its identity is
  # never made again), else its host name as the daemons take it.
  existing=()
  for f in "$keys_dir"/*.key; do
    [[ -f $f && $(basename "$f") != centre.key ]] && existing+=("$(basename "$f" .key)")
  done
  if [[ -z $host_name ]]; then
    if ((${#existing[@]} == 1)); then host_name=${existing[0]}; else
      host_name=$(hostname | tr -c 'A-Za-z0-9._\n-' '-' | cut -c1-63)
      { valid_name "$host_name" && [[ $host_name != centre ]]; } ||
        die "this host's name '$host_name' cannot name a key: give --host-name NAME"
    fi
  fi
  for f in "${existing[@]}"; do
    [[ $f == "$host_name" ]] || die "this host already has the key $keys_dir/$f.key (its identity at the centre):" \
      "give --host-name $f, or remove that key (and the centre's hosts.d/$f.pub) to start again"
  done
  if [[ -z $centre_key && -z $centre_ssh ]] && ! is_pub_file "$keys_dir/centre.pub" && ((uninstall == 0)); then
    die "--role host needs the centre's public key: run from a machine with ssh to both" \
      "(deploy.sh --role host --centre $centre ops@THIS-HOST, which fetches it from ops@$centre_addr)," \
      "or copy the centre's /etc/trading-heal/keys/centre.pub here and give --centre-key FILE"
  fi
  role_sets=("TRADING_HEAL_HOST=$host_name"
    "TRADING_HEAL_RELAY_ENDPOINT=ipc://$run_dir/probe/relay.sock"
    "TRADING_HEAL_MODEL_RELAY_ENDPOINT=ipc://$run_dir/probe/model.sock"
    "TRADING_HEAL_STATE_ENDPOINT=tcp://$centre_addr:$centre_port"
    "TRADING_HEAL_EVENTS_ENDPOINT=tcp://$centre_addr:$((centre_port + 1))"
    "TRADING_HEAL_FLEET_ENDPOINT=tcp://$centre_addr:$((centre_port + 2))"
    "TRADING_HEAL_ANALYSIS_ENDPOINT=tcp://$centre_addr:$((centre_port + 3))"
    "TRADING_HEAL_CURVE_SECRET_KEY_FILE=$keys_dir/$host_name.key"
    "TRADING_HEAL_CURVE_SERVER_KEY_FILE=$keys_dir/centre.pub")
fi
env_sets=("${role_sets[@]}" "${env_sets[@]}")
polkit_rule=/etc/polkit-1/rules.d/60-trading-heal-actuator.rules
if [[ -n $prom_config ]]; then
  prom_rules=$(dirname "$prom_config")/trading-heal-alert_rules.yml
fi

((dry || user_mode || $(id -u) == 0)) || die "system mode needs root (or --user, or --dry-run)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- bookkeeping: every change is counted and reported ------------------------------------------
changes=0
done_list=()
note() { done_list+=("$*"); echo "deploy: $*" >&2; }
changed() { changes=$((changes + 1)); if ((dry)); then note "would $*"; else note "$*"; fi; }
same() { echo "deploy: unchanged: $*" >&2; }
act() { ((dry)) || "$@"; }   # run a mutating command unless --dry-run

# put SRC DEST MODE [OWNER:GROUP]: install SRC as DEST unless it is already identical.
put() {
  local src=$1 dest=$2 mode=$3 owner=${4:-} what=install
  if [[ -f $dest ]] && cmp -s "$src" "$dest" && [[ $(stat -c %a "$dest") == "${mode#0}" ]] &&
    { [[ -z $owner ]] || [[ $(stat -c %U:%G "$dest") == "$owner" ]]; }; then
    same "$dest"
    return 1
  fi
  [[ -e $dest ]] && what=update
  if [[ -n $plan_dir && $mode != 0755 ]]; then mkdir -p "$plan_dir$(dirname "$dest")" && cp "$src" "$plan_dir$dest"; fi
  if ((dry == 0)); then
    mkdir -p "$(dirname "$dest")"
    install -m "$mode" "$src" "$dest.deploy-tmp"
    [[ -z $owner ]] || chown "$owner" "$dest.deploy-tmp"
    mv -f "$dest.deploy-tmp" "$dest"
  fi
  changed "$what $dest"
}

# remove PATH: delete a file deploy installed.
remove() {
  [[ -e $1 || -L $1 ]] || return 0
  act rm -f "$1"
  changed "remove $1"
}

# env_value KEY [FILE]: the value of KEY in an env file (last assignment), empty when absent.
env_value() {
  local f=${2:-$env_file}
  [[ -f $f ]] || f=$work/env
  [[ -f $f ]] || return 0
  sed -n "s/^[[:space:]]*$1=//p" "$f" 2>/dev/null | tail -1
}

# --- the units, rewritten for this installation -------------------------------------------------
render_unit() {  # render_unit SRC DEST
  local src=$1 out=$2
  if ((user_mode)); then
    # A user manager cannot change users and, rootless, cannot set up mount namespaces,
    # capability sets or IP filters: those lines go; seccomp-based and plain process settings
    # (NoNewPrivileges=, SystemCallFilter=, RestrictAddressFamilies=, ...) stay. The state
    # directories are deploy's (systemd 252 puts a user unit's StateDirectory= under
    # $XDG_CONFIG_HOME, not $XDG_STATE_HOME). ~@resources goes: ZeroMQ's I/O threads call
    # pthread_setschedparam() and abort on EPERM (src/thread.cpp:345).
    sed -e "s|^ExecStart=/usr/local/bin/|ExecStart=$bin_dir/|" \
      -e 's|^Environment=TRADING_HEAL_RUNTIME_DIR=/run/|Environment=TRADING_HEAL_RUNTIME_DIR=%t/|' \
      -e "s|^Environment=TRADING_HEAL_DATA_DIR=/var/lib/trading-heal/%i/|Environment=TRADING_HEAL_DATA_DIR=$state_home/trading-heal/%i/|" \
      -e '/^StateDirectory\(Mode\)\{0,1\}=/d' \
      -e 's|^SystemCallFilter=~@privileged @resources$|SystemCallFilter=~@privileged|' \
      -e 's|^EnvironmentFile=\(-\{0,1\}\)/etc/trading-heal/|EnvironmentFile=\1%E/trading-heal/|' \
      -e '/^Environment=TRADING_HEAL_\(PEERS\|OPERATORS_GROUP\)=/d' -e '/^LoadCredential=/d' \
      -e 's|^# Settings: /etc/trading-heal/|# Settings: $XDG_CONFIG_HOME/trading-heal/|' \
      -e '/^\(User\|Group\|SupplementaryGroups\)=/d' \
      -e '/^\(CapabilityBoundingSet\|AmbientCapabilities\|ProtectSystem\|ProtectHome\)=/d' \
      -e '/^\(PrivateTmp\|PrivateNetwork\|PrivateDevices\|PrivateUsers\|PrivateMounts\|IPAddressDeny\)=/d' \
      -e '/^\(ProtectHostname\|ProtectClock\|ProtectKernelTunables\|ProtectKernelModules\)=/d' \
      -e '/^\(ProtectKernelLogs\|ProtectControlGroups\|ProtectProc\|ProcSubset\|RemoveIPC\)=/d' \
      -e '/^\(DevicePolicy\|KeyringMode\|ReadOnlyPaths\|ReadWritePaths\)=/d' \
      -e '/^After=network-online.target/d' -e '/^Wants=network-online.target$/d' \
      -e 's|^WantedBy=multi-user.target|WantedBy=default.target|' \
      -e '1i # Installed by trading-heal deploy.sh --user (rewritten for a user manager).' \
      "$src" >"$out"
  else
    sed -e "s|^ExecStart=/usr/local/bin/|ExecStart=$bin_dir/|" \
      -e '1i # Installed by trading-heal deploy.sh.' "$src" >"$out"
  fi
}

# --- the env file -------------------------------------------------------------------------------
# secret_owner KEY: the component whose own env file holds KEY (probe, diagnoser), or nothing.
# Many hosts: the links between hosts (tcp://, their keys) are the probe's alone on a host (the
# actuator and the diagnoser never touch the network) and the exporter's alone on the centre.
secret_owner() {
  case $1 in
    POSTGRES_* | DATABASE_URL | PG*) echo probe ;;
    OLLAMA_HOST | OLLAMA_MODEL | OLLAMA_API | OLLAMA_KEEP_ALIVE) echo diagnoser ;;
    TRADING_HEAL_STATE_ENDPOINT | TRADING_HEAL_EVENTS_ENDPOINT | TRADING_HEAL_FLEET_ENDPOINT | \
      TRADING_HEAL_ANALYSIS_ENDPOINT | \
      TRADING_HEAL_CURVE_* | TRADING_HEAL_HOSTS_DIR)
      case $role in host) echo probe ;; centre) echo exporter ;; esac ;;
  esac
}

render_env() {  # render_env OUT [COMPONENT]: an example with its --env settings and the scope applied
  local out=$1 comp=${2:-} kv k
  cp "$HERE/trading-heal${comp:+.$comp}.env.example" "$out"
  sed -i "s/^TRADING_HEAL_SYSTEMD_SCOPE=.*/TRADING_HEAL_SYSTEMD_SCOPE=$scope/" "$out"
  # A centre lists agents of its own only when told (--env TRADING_HEAL_AGENTS=...).
  [[ $role != centre || -n $comp ]] || sed -i 's/^TRADING_HEAL_AGENTS=/#TRADING_HEAL_AGENTS=/' "$out"
  for kv in "${env_sets[@]}"; do
    k=${kv%%=*}
    [[ $(secret_owner "$k") == "$comp" ]] || continue
    if grep -q "^#\{0,1\}$k=" "$out"; then
      # replace the first (commented or not) line for KEY, drop any later one
      awk -v k="$k" -v kv="$kv" '
        $0 ~ "^#?" k "=" { if (!done) { print kv; done = 1 }; next } { print }' "$out" >"$out.t"
      mv "$out.t" "$out"
    else
      printf '%s\n' "$kv" >>"$out"
    fi
  done
}

# listen_url LISTEN PATH: http URL for a host:port listen address (0.0.0.0 -> 127.0.0.1).
listen_url() {
  local hp=$1 h p
  h=${hp%:*} p=${hp##*:}
  [[ $h == 0.0.0.0 || $h == "*" || -z $h ]] && h=127.0.0.1
  [[ $h == "[::]" ]] && h="[::1]"
  echo "http://$h:$p$2"
}

# --- Prometheus ---------------------------------------------------------------------------------
# strip_block FILE: FILE without this instance's marked blocks.
strip_block() {
  awk -v b="$BEGIN_MARK $instance " -v e="$END_MARK $instance " '
    index($0 " ", b) { skip = 1; next } index($0 " ", e) { skip = 0; next } !skip' "$1"
}

merge_prometheus() {  # merge_prometheus CURRENT OUT
  local cur=$1 out=$2 metrics job agents_job=1 ind rind
  metrics=$(env_value TRADING_HEAL_METRICS_LISTEN)
  metrics=${metrics:-127.0.0.1:9120}
  metrics=$(listen_url "$metrics" "")
  metrics=${metrics#http://}
  # The operators' own job names (their runbook queries them); ours as labels.
  job=trading-selfheal
  [[ $instance == main ]] || job=trading-selfheal-$instance
  strip_block "$cur" >"$work/prom.base"
  if grep -Eq "^[[:space:]]*-?[[:space:]]*job_name:[[:space:]]*['\"]?${job}['\"]?[[:space:]]*$" "$work/prom.base"; then
    die "$cur already has a scrape job '$job' outside trading-heal's block; remove it first"
  fi
  grep -Eq "job_name:[[:space:]]*['\"]?crypto-exporters['\"]?[[:space:]]*$" "$work/prom.base" && agents_job=0
  [[ $role != centre ]] || agents_job=0   # the agents are on the hosts
  # Indentation of the list items under scrape_configs: / rule_files: (YAML allows 0 or more).
  ind=$(awk '/^scrape_configs:/ { f = 1; next } f && /^[[:space:]]*-/ { match($0, /^ */); print RLENGTH; exit }
             f && /^[^[:space:]#]/ { exit }' "$work/prom.base")
  rind=$(awk '/^rule_files:/ { f = 1; next } f && /^[[:space:]]*-/ { match($0, /^ */); print RLENGTH; exit }
              f && /^[^[:space:]#]/ { exit }' "$work/prom.base")
  ind=${ind:-2} rind=${rind:-2}
  local pad rpad
  pad=$(printf '%*s' "$ind" '') rpad=$(printf '%*s' "$rind" '')
  {
    echo "$pad$BEGIN_MARK $instance (deploy/deploy.sh; edits inside this block are overwritten)"
    echo "$pad- job_name: $job"
    echo "$pad  static_configs:"
    echo "$pad    - targets: ['$metrics']"
    echo "$pad      labels: {service: trading-heal, deployment: $instance}"
    if ((agents_job)); then
      echo "$pad- job_name: crypto-exporters"
      echo "$pad  static_configs:"
      echo "$pad    - targets: ['127.0.0.1:9092', '127.0.0.1:9093', '127.0.0.1:9094', '127.0.0.1:9095',"
      echo "$pad                '127.0.0.1:9096', '127.0.0.1:9097']"
      echo "$pad      labels: {service: crypto-agent}"
    fi
    echo "$pad$END_MARK $instance"
  } >"$work/prom.scrape"
  {
    echo "$rpad$BEGIN_MARK $instance rules"
    echo "$rpad- $prom_rules"
    echo "$rpad$END_MARK $instance rules"
  } >"$work/prom.rules"
  grep -Eq '^(scrape_configs|rule_files):[[:space:]]*[^[:space:]#]' "$work/prom.base" &&
    die "$cur: scrape_configs:/rule_files: written inline ([...]); use block style"
  awk -v sf="$work/prom.scrape" -v rf="$work/prom.rules" '
    function cat(f,  l) { while ((getline l < f) > 0) print l; close(f) }
    { print }
    /^scrape_configs:/ { cat(sf); s = 1 }
    /^rule_files:/ { cat(rf); r = 1 }
    END {
      if (!r) { print "rule_files:"; cat(rf) }
      if (!s) { print "scrape_configs:"; cat(sf) }
    }' "$work/prom.base" >"$out"
}

step_prometheus() {
  if [[ -z $prom_config ]]; then
    echo "deploy: Prometheus: skipped (no --prometheus-config)" >&2
    return
  fi
  if [[ ! -f $prom_config ]]; then
    if [[ -d $(dirname "$prom_config") ]] || ((user_mode)); then
      echo "deploy: Prometheus: $prom_config does not exist: starting from deploy/prometheus/prometheus.yml" >&2
      strip_rules_example >"$work/prom.cur"
    else
      echo "deploy: Prometheus: skipped ($(dirname "$prom_config") does not exist; is Prometheus installed?)" >&2
      return
    fi
  else
    cp "$prom_config" "$work/prom.cur"
  fi
  merge_prometheus "$work/prom.cur" "$work/prometheus.yml"
  cp "$HERE/prometheus/alert_rules.yml" "$work/alert_rules.yml"
  # promtool resolves rule_files against the config's folder: check a copy whose rule path points
  # at the rules as they will be installed (the staged copy until then).
  sed "s|^\([[:space:]]*- \)$prom_rules\$|\1$work/alert_rules.yml|" "$work/prometheus.yml" >"$work/prom.check.yml"
  local out
  out=$(promtool check config "$work/prom.check.yml" 2>&1) ||
    die "promtool check config fails on the merged prometheus.yml:"$'\n'"$out"
  echo "deploy: promtool check config: ok (merged $prom_config)" >&2
  local c=0
  put "$work/alert_rules.yml" "$prom_rules" 0644 && c=1
  put "$work/prometheus.yml" "$prom_config" 0644 && c=1
  if ((c && !user_mode && !dry)) && systemctl is-active -q prometheus 2>/dev/null; then
    systemctl reload prometheus && note "reloaded prometheus"
  elif ((c)); then
    echo "deploy: Prometheus: reload it to pick up the change (SIGHUP or POST /-/reload)" >&2
  fi
}

# deploy/prometheus/prometheus.yml without its relative rule_files entry (we add ours).
strip_rules_example() {
  grep -v '^  - alert_rules.yml$' "$HERE/prometheus/prometheus.yml" |
    awk '/^rule_files:$/ { getline n; if (n ~ /^[[:space:]]*$/) next; print; print n; next } { print }'
}

# --- install ------------------------------------------------------------------------------------
# One user per daemon, each with its own group: a daemon's sockets accept only the users that
# may speak there (PROTOCOL.md, "Who may speak"), and no group is shared. The operators' group
# may command (trading-heal-ctl) and read the env file and the API token.
step_accounts() {
  ((user_mode)) && return
  local c u g groups
  ensure_group trading-heal-operators
  for c in "${COMPONENTS[@]}"; do
    u=trading-heal-$c
    ensure_group "$u"
    if ! getent passwd "$u" >/dev/null; then
      act useradd --system --gid "$u" --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "trading-heal $c" "$u"
      changed "create user $u (group $u)"
    elif g=$(id -gn "$u") && [[ $g != "$u" ]]; then
      # made by an older deploy in the shared group trading-heal
      act usermod --gid "$u" "$u"; changed "set the group of user $u to $u (was $g)"
    else
      same "user $u"
    fi
  done
  for u in "${operators[@]}"; do
    getent passwd "$u" >/dev/null || die "--operator $u: no such user"
    read -ra groups <<<"$(id -nG "$u")"
    if has_item trading-heal-operators "${groups[@]}"; then same "operator $u"; else
      act usermod --append --groups trading-heal-operators "$u"
      changed "add $u to trading-heal-operators"
    fi
  done
}

ensure_group() {
  if getent group "$1" >/dev/null; then same "group $1"; else
    act groupadd --system "$1"; changed "create group $1"
  fi
}

ensure_dir() {  # ensure_dir DIR MODE [OWNER:GROUP]
  local d=$1 mode=$2 owner=${3:-}
  if [[ -d $d ]] && [[ $(stat -c %a "$d") == "${mode#0}" ]] &&
    { [[ -z $owner ]] || [[ $(stat -c %U:%G "$d") == "$owner" ]]; }; then
    same "$d/"
    return
  fi
  if ((dry == 0)); then
    mkdir -p "$d"
    chmod "$mode" "$d"
    [[ -z $owner ]] || chown "$owner" "$d"
  fi
  changed "create $d/ ($mode${owner:+ $owner})"
}

step_dirs() {
  if ((user_mode)); then
    ensure_dir "$data_dir" 0750
    local c
    for c in "${COMPONENTS[@]}"; do ensure_dir "$data_dir/$c" 0750; done
  else
    # Each daemon's state directory below these is its own (StateDirectory=, 0750).
    ensure_dir /var/lib/trading-heal 0755 root:root
    ensure_dir "$data_dir" 0755 root:root
    # The daemons read the agents file and rules.d here; the settings files guard themselves.
    ensure_dir "$env_dir" 0755 root:root
  fi
}

restart_needed=0
step_package() {
  ((from_package)) || return 0
  if [[ -n $deb ]]; then
    local want have
    want=$(dpkg-deb -f "$deb" Version)
    have=$(dpkg-query -W -f '${Version}' trading-heal 2>/dev/null || true)
    if [[ $want == "$have" ]]; then same "package trading-heal $have"; else
      # apt-get, not dpkg -i: the package's Depends (its runtime libraries) come from Debian.
      local path=$deb
      [[ $path == /* || $path == ./* ]] || path=./$path
      if ! act env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$path" >&2; then
        # Old package lists name versions the mirror no longer has: refresh them once.
        echo "deploy: apt-get install failed: updating the package lists and trying again" >&2
        act apt-get update -q >&2 || true
        act env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$path" >&2 ||
          die "apt-get install $path failed"
      fi
      changed "install package $(basename "$deb") with its dependencies (was: ${have:-not installed})"
      restart_needed=1
      act sc daemon-reload || true
    fi
  fi
  ((dry)) || dpkg-query -W trading-heal >/dev/null 2>&1 || die "package trading-heal not installed (--deb FILE)"
}

step_binaries() {
  local b src
  if ((from_package)); then
    echo "deploy: binaries and units: from the package (/usr/bin, /lib/systemd/system)" >&2
    return
  fi
  for b in "${COMPONENTS[@]}" "${TOOLS[@]}"; do
    src=$build_dir/bin/trading-heal-$b
    [[ -x $src ]] || die "no $src: build first (cmake --build $build_dir) or give --build-dir"
    if put "$src" "$bin_dir/trading-heal-$b" 0755; then restart_needed=1; fi
  done
  # The diagnoser's rule table, where it looks by default: next to its binary.
  if put "$HERE/rules/trading-heal.rules" "$rules_file" 0644; then restart_needed=1; fi
}

step_units() {
  local f reload=0
  ((from_package)) && return
  for f in "$ROOT"/systemd/trading-heal-*@.service "$ROOT"/systemd/trading-heal@.target; do
    render_unit "$f" "$work/$(basename "$f")"
    if put "$work/$(basename "$f")" "$unit_dir/$(basename "$f")" 0644; then reload=1; fi
  done
  if ((reload)); then
    restart_needed=1
    if ! act sc daemon-reload; then
      ((start == 0)) || die "systemctl daemon-reload failed (is the $scope manager running?)"
      echo "deploy: warning: daemon-reload failed (no $scope manager?); --no-start, going on" >&2
    fi
    changed "reload the systemd manager ($scope)"
  fi
}

step_env() {
  local eowner="" sowner="" c f kv k
  ((user_mode)) || { eowner=root:trading-heal-operators; sowner=root:root; }
  render_env "$work/env"
  if [[ -f $env_file ]] && ((user_mode == 0)); then
    local d
    for d in TRADING_HEAL_DATA_DIR TRADING_HEAL_RUNTIME_DIR; do
      [[ -z $(env_value "$d") ]] ||
        echo "deploy: warning: $env_file sets $d: it overrides the units' per-component directories (EnvironmentFile= wins over Environment=) and their sandbox cannot write elsewhere; remove it" >&2
    done
  fi
  step_token
  if [[ -f $env_file ]]; then
    same "$env_file (exists; never overwritten)"
    warn_kept "$env_file" ""
    fix_meta "$env_file" 0640 "$eowner"
  else
    [[ -n $(env_value TRADING_HEAL_API_TOKEN_FILE "$work/env") ]] ||
      printf 'TRADING_HEAL_API_TOKEN_FILE=%s\n' "$token_file" >>"$work/env"
    put "$work/env" "$env_file" 0640 $eowner || true
    restart_needed=1
    if ((dry == 0)); then sha256sum <"$env_file" | cut -d' ' -f1 >"$env_sum"; fi
  fi
  for c in "${secret_components[@]}"; do
    f=${secret_file[$c]}
    if [[ -f $f ]]; then
      same "$f (exists; never overwritten)"
      warn_kept "$f" "$c"
      fix_meta "$f" 0600 "$sowner"
    else
      render_env "$work/$c.env" "$c"
      put "$work/$c.env" "$f" 0600 $sowner || true
      restart_needed=1
      if ((dry == 0)); then sha256sum <"$f" | cut -d' ' -f1 >"$(sum_of "$f")"; fi
    fi
  done
  move_secrets
  ensure_role_settings "$env_file" ""
  for c in "${secret_components[@]}"; do ensure_role_settings "${secret_file[$c]}" "$c"; done
  if [[ $role == centre && -n $(env_value TRADING_HEAL_AGENTS) ]] &&
    ! has_key TRADING_HEAL_AGENTS "${env_sets[@]}"; then
    echo "deploy: warning: $env_file sets TRADING_HEAL_AGENTS: the centre's exporter shows these agents as its own; comment it out unless the centre has agents (and then a probe) of its own" >&2
  fi
  if ((user_mode == 0)); then
    f=$(env_value TRADING_HEAL_API_TOKEN_FILE)
    [[ -z $f || $f == "$token_file" ]] ||
      echo "deploy: warning: $env_file has TRADING_HEAL_API_TOKEN_FILE=$f: the exporter uses its credential, $token_file; trading-heal-ctl would send the other token (point the setting at $token_file)" >&2
  fi
}

# sum_of FILE: where the checksum of FILE as deploy wrote it is kept.
sum_of() { echo "$(dirname "$1")/.$(basename "$1").deployed"; }

# warn_kept FILE COMPONENT: --env settings that differ from a kept file's (the role's settings:
# ensure_role_settings).
warn_kept() {
  local f=$1 comp=$2 kv k v
  for kv in "${env_sets[@]}"; do
    k=${kv%%=*} v=${kv#*=}
    [[ $(secret_owner "$k") == "$comp" ]] || continue
    is_role_key "$k" && continue
    [[ $(env_value "$k" "$f") == "$v" ]] || echo "deploy: warning: $f has $k=$(env_value "$k" "$f"), not $v (kept)" >&2
  done
}

is_role_key() { has_key "$1" "${role_sets[@]}"; }

# ensure_role_settings FILE COMPONENT: the role's settings of FILE (shared: no component) in a
# file deploy did not write now (an earlier run, the operator's): a missing one is added at its
# end, one with another value is the operator's and kept (a warning names it).
ensure_role_settings() {
  local f=$1 comp=$2 kv k v have unchanged=0 added=0
  ((${#role_sets[@]})) || return 0
  [[ -f $f ]] || return 0
  [[ -f $(sum_of_env "$f") && $(sha256sum <"$f" | cut -d' ' -f1) == "$(<"$(sum_of_env "$f")")" ]] && unchanged=1
  for kv in "${role_sets[@]}"; do
    k=${kv%%=*}
    [[ $(secret_owner "$k") == "$comp" ]] || continue
    v=$(printf '%s\n' "${env_sets[@]}" | sed -n "s/^$k=//p" | tail -1)   # an --env wins
    if ! grep -q "^[[:space:]]*$k=" "$f"; then
      ((dry)) || { ((added)) || printf '# --role %s (deploy.sh)\n' "$role" >>"$f"; printf '%s=%s\n' "$k" "$v" >>"$f"; }
      added=1
      changed "add $k=$v to $f"
      restart_needed=1
    else
      have=$(env_value "$k" "$f")
      [[ $have == "$v" ]] || echo "deploy: warning: $f has $k=$have, not $v (--role $role): kept; edit the file to change it" >&2
    fi
  done
  if ((added && unchanged && !dry)); then sha256sum <"$f" | cut -d' ' -f1 >"$(sum_of_env "$f")"; fi
}
# The checksum file of an env file as deploy wrote it (the shared file's has its own name).
sum_of_env() { if [[ $1 == "$env_file" ]]; then echo "$env_sum"; else sum_of "$1"; fi; }

# fix_meta FILE MODE [OWNER:GROUP]: the mode and owner of a kept file (its content is the operator's).
fix_meta() {
  local f=$1 mode=$2 owner=${3:-}
  if [[ $(stat -c %a "$f") == "${mode#0}" ]] &&
    { [[ -z $owner ]] || [[ $(stat -c %U:%G "$f") == "$owner" ]]; }; then
    return 0
  fi
  act chmod "$mode" "$f"
  [[ -z $owner ]] || act chown "$owner" "$f"
  changed "set $f to $mode${owner:+ $owner}"
}

# The database's and the model's settings in the shared env file (an older deploy put them there)
# would reach every daemon: each such line moves to its daemon's own file, the shared file keeps
# the rest (and a note where they went).
move_secrets() {
  [[ -f $env_file ]] || return 0
  local line k c moved=() unchanged=0
  [[ -f $env_sum && $(sha256sum <"$env_file" | cut -d' ' -f1) == "$(<"$env_sum")" ]] && unchanged=1
  while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]*([A-Z][A-Z0-9_]*)= ]] || continue
    k=${BASH_REMATCH[1]}
    c=$(secret_owner "$k")
    [[ -n $c ]] || continue
    moved+=("$k")
    if ((dry == 0)); then
      printf '%s\n' "$line" >>"${secret_file[$c]}"
    fi
    changed "move $k from $env_file to ${secret_file[$c]} (the $c's alone)"
  done <"$env_file"
  ((${#moved[@]})) || return 0
  restart_needed=1
  ((dry)) && return 0
  local keys
  keys=$(printf '%s|' "${moved[@]}")
  awk -v keys="|$keys" '
    match($0, /^[[:space:]]*[A-Z][A-Z0-9_]*=/) {
      k = substr($0, RSTART, RLENGTH - 1); sub(/^[[:space:]]*/, "", k)
      if (index(keys, "|" k "|")) { print "# " k ": moved by deploy.sh to the daemon'"'"'s own env file"; next }
    }
    { print }' "$env_file" >"$env_file.deploy-tmp"
  chmod --reference="$env_file" "$env_file.deploy-tmp"
  chown --reference="$env_file" "$env_file.deploy-tmp"
  mv -f "$env_file.deploy-tmp" "$env_file"
  if ((unchanged)); then sha256sum <"$env_file" | cut -d' ' -f1 >"$env_sum"; fi
}

# The API's bearer token, made once (never printed): /status and /audit need it, from this host
# too. The exporter gets it as a systemd credential (LoadCredential=), trading-heal-ctl through
# the env file's TRADING_HEAL_API_TOKEN_FILE (operators' group).
step_token() {
  local owner="" mode=0600
  ((user_mode)) || { owner=root:trading-heal-operators; mode=0640; }
  if [[ -f $token_file ]]; then
    fix_meta "$token_file" "$mode" "$owner"
    return
  fi
  if ((dry == 0)); then
    mkdir -p "$env_dir"
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file.deploy-tmp")
    chmod "$mode" "$token_file.deploy-tmp"
    [[ -z $owner ]] || chown "$owner" "$token_file.deploy-tmp"
    mv -f "$token_file.deploy-tmp" "$token_file"
  fi
  changed "create the API token $token_file (not shown)"
}

# The agents the daemons will watch: TRADING_HEAL_AGENTS_FILE wins over TRADING_HEAL_AGENTS, as
# in the daemons' configuration (the polkit rule must cover exactly these).
agents_list() {
  local a file
  file=$(env_value TRADING_HEAL_AGENTS_FILE)
  if [[ -n $file ]]; then
    [[ -r $file ]] || die "TRADING_HEAL_AGENTS_FILE=$file cannot be read"
    command -v jq >/dev/null || die "jq is needed to read TRADING_HEAL_AGENTS_FILE (apt-get install jq)"
    a=$(jq -r '[.[] | select(.enabled != false) | .instance] | join(",")' "$file") ||
      die "TRADING_HEAL_AGENTS_FILE=$file is not a JSON list of agents"
    [[ -n $a ]] || die "TRADING_HEAL_AGENTS_FILE=$file lists no enabled agent"
    echo "$a"
    return
  fi
  a=$(env_value TRADING_HEAL_AGENTS)
  echo "${a:-BTC_USDT,ETH_USDT,XRP_USDT,SOL_USDT,DOGE_USDT,ADA_USDT}"
}

# --- many hosts: keys, the allow-list, the daemons of the role ------------------------------------
# The key pair of this machine (the host's, or the centre's), made once by trading-heal-ctl keygen
# and never again: an existing pair is kept (its owner and modes set), half a pair is refused.
step_keys() {
  [[ -n $role ]] || return 0
  local name=centre owner=trading-heal-exporter
  [[ $role == host ]] && name=$host_name owner=trading-heal-probe
  ensure_dir "$keys_dir" 0755 root:root
  local key=$keys_dir/$name.key pub=$keys_dir/$name.pub
  if [[ -f $key && -f $pub ]]; then
    same "$key (the $role's identity; never made again)"
    fix_meta "$key" 0600 "$owner:$owner"
    fix_meta "$pub" 0644
  elif [[ -e $key || -e $pub ]]; then
    die "half a key pair: $key, $pub: the $role's identity is never made again; restore the missing file, or remove both (then every side that knows $name.pub needs the new one)"
  else
    if ((dry == 0)); then
      "$ctl_bin" keygen "$name" --dir "$keys_dir" --owner "$owner" >/dev/null ||
        die "trading-heal-ctl keygen $name failed"
    fi
    changed "create the key pair $key (0600 $owner) and $pub"
    restart_needed=1
  fi
  if [[ $role == host && -n $centre_key ]]; then
    # The centre's public key (the probe connects to it); a new one replaces the old.
    if put "$centre_key" "$keys_dir/centre.pub" 0644; then restart_needed=1; fi
  fi
}

# The centre's allow-list: one HOST.pub per host (--add-host NAME=FILE). A name already there with
# another key is refused: a host keeps its identity, and a stranger cannot take a known name.
hup_needed=0
step_hosts() {
  [[ $role == centre ]] || return 0
  ensure_dir "$hosts_dir" 0755 root:root
  local a name file dest
  for a in "${add_hosts[@]}"; do
    name=${a%%=*} file=${a#*=} dest=$hosts_dir/${a%%=*}.pub
    if [[ -f $dest ]] && ! diff -q <(grep -E "$Z85_LINE" "$dest") <(grep -E "$Z85_LINE" "$file") >/dev/null; then
      die "$dest exists with another key: host $name keeps its identity; if it was really re-keyed, remove $dest first"
    fi
    if [[ -f $dest ]]; then
      same "$dest (host $name allowed)"
      fix_meta "$dest" 0644 root:root
    else
      put "$file" "$dest" 0644 root:root || true
      hup_needed=1
    fi
  done
}

# The instances of the daemons this role does not run are masked (trading-heal@NAME.target wants
# all four; a masked one is left out): none runs by accident. The others are unmasked.
step_roles() {
  local c u link
  for c in "${COMPONENTS[@]}"; do
    u=trading-heal-$c@$instance.service link=$admin_dir/$u
    if has_item "$c" "${role_components[@]}"; then
      if [[ -L $link && $(readlink "$link") == /dev/null ]]; then
        act sc unmask -q "$u"
        changed "unmask $u"
      fi
    else
      if ! [[ -L $link && $(readlink "$link") == /dev/null ]]; then
        act sc mask -q "$u"
        changed "mask $u (not run by a $role)"
      else
        same "$u masked"
      fi
      if sc is-active -q "$u" 2>/dev/null; then
        act sc stop "$u"
        changed "stop $u"
      fi
    fi
  done
}

# A centre bound to one address: its exporter may open a netlink socket (libzmq's interface
# lookup before the bind aborts without it), in a drop-in for this instance only.
bind_dropin=$admin_dir/trading-heal-exporter@$instance.service.d/50-deploy-bind-address.conf
step_bind_dropin() {
  if [[ $role == centre && $bind != '*' ]]; then
    {
      echo "# Installed by trading-heal deploy.sh --role centre --centre $bind: libzmq looks a bound"
      echo "# address up among the interfaces first (getifaddrs: a netlink socket)."
      echo "[Service]"
      echo "RestrictAddressFamilies=AF_NETLINK"
    } >"$work/bind.conf"
    put "$work/bind.conf" "$bind_dropin" 0644 || return 0
  elif [[ -f $bind_dropin ]]; then
    remove "$bind_dropin"
    act rmdir "$(dirname "$bind_dropin")" 2>/dev/null || true
  else
    return 0
  fi
  restart_needed=1
  act sc daemon-reload || true
}

# Reread the allow-list: every exporter of this machine (they share hosts.d), when running.
hup_exporters() {
  ((hup_needed && !dry)) || return 0
  if sc kill -s HUP 'trading-heal-exporter@*.service' 2>/dev/null; then
    note "sent SIGHUP to the exporter (reread $hosts_dir)"
  else
    echo "deploy: no exporter running: it reads $hosts_dir when it starts" >&2
  fi
}

step_permission() {
  ((user_mode)) && { echo "deploy: permission: none needed (a user manager lets its user restart its units)" >&2; return; }
  [[ $role != centre ]] || { echo "deploy: permission: none (a centre has no actuator)" >&2; return; }
  local agents
  agents=$(agents_list)
  "$HERE/permissions/gen-polkit-rule.sh" --user trading-heal-actuator "$agents" >"$work/polkit.rules"
  put "$work/polkit.rules" "$polkit_rule" 0644 root:root || true
}

step_start() {
  ((start)) || { echo "deploy: --no-start: not starting" >&2; return; }
  if sc is-enabled -q "$target" 2>/dev/null; then same "$target enabled"; else
    act sc enable -q "$target"; changed "enable $target"
  fi
  local s inactive=0
  for s in "${services[@]}"; do sc is-active -q "$s" 2>/dev/null || inactive=1; done
  if ((inactive)); then
    act sc start "$target"
    changed "start $target"
  elif ((restart_needed)); then
    act sc restart "${services[@]}"
    changed "restart ${services[*]} (binaries, units or settings changed)"
  else
    same "$target running"
  fi
}

step_verify() {
  ((start && !dry)) || return 0
  local s state fail=0 api metrics body
  for s in "${services[@]}"; do
    state=$(sc show -p ActiveState,SubState --value "$s" | xargs)
    echo "deploy: verify: $s: $state" >&2
    [[ $state == "active running" ]] || fail=1
  done
  if [[ $role == host ]]; then  # no exporter here: the centre shows this host
    if ((fail)); then
      echo "deploy: verification FAILED; see: journalctl -n 50 -u 'trading-heal-*@$instance'" >&2
      return 1
    fi
    return 0
  fi
  api=$(env_value TRADING_HEAL_API_LISTEN)
  api=$(listen_url "${api:-0.0.0.0:9121}" /health)
  metrics=$(env_value TRADING_HEAL_METRICS_LISTEN)
  metrics=$(listen_url "${metrics:-0.0.0.0:9120}" /metrics)
  body=""
  for _ in $(seq 50); do
    body=$(curl -fsS --max-time 2 "$api" 2>/dev/null) && break
    sleep 0.2
  done
  echo "deploy: verify: GET $api -> ${body:-no answer}" >&2
  [[ $body == *'"status":"ok"'* ]] || fail=1
  # Read whole, then searched: grep -q ending the pipe early would fail curl with SIGPIPE under
  # pipefail once the exposition outgrows the pipe's buffer.
  local exposition
  exposition=$(curl -fsS --max-time 5 "$metrics" 2>/dev/null || true)
  if grep -q '^trading_selfheal_component_up' <<<"$exposition"; then
    echo "deploy: verify: GET $metrics -> trading_selfheal_component_up present" >&2
  else
    echo "deploy: verify: GET $metrics -> no trading-heal metrics" >&2
    fail=1
  fi
  if ((fail)); then
    echo "deploy: verification FAILED; see: journalctl -n 50 -u 'trading-heal-*@$instance'" >&2
    return 1
  fi
}

# --- uninstall ----------------------------------------------------------------------------------
do_uninstall() {
  local f other
  if sc cat "$target" >/dev/null 2>&1; then
    if sc is-active -q "$target" 2>/dev/null || sc is-active -q "${all_services[@]}" 2>/dev/null; then
      act sc stop "$target" "${all_services[@]}"
      changed "stop $target"
    fi
    if sc is-enabled -q "$target" 2>/dev/null; then
      act sc disable -q "$target"
      changed "disable $target"
    fi
    # A unit that failed (or failed on its way down) stays loaded until reset.
    if sc is-failed -q "${all_services[@]}" 2>/dev/null; then
      act sc reset-failed "${all_services[@]}"
      changed "reset-failed ${all_services[*]}"
    fi
  fi
  if [[ -f $bind_dropin ]]; then
    remove "$bind_dropin"
    act rmdir "$(dirname "$bind_dropin")" 2>/dev/null || true
  fi
  # A role's masks (--role centre|host) go with the deployment.
  local u
  for u in "${all_services[@]}"; do
    if [[ -L $admin_dir/$u && $(readlink "$admin_dir/$u") == /dev/null ]]; then
      act sc unmask -q "$u"
      changed "unmask $u"
    fi
  done
  # The sockets' directory outlives the units (RuntimeDirectoryPreserve=yes, so a restarted
  # daemon's peers keep their endpoints): it goes with the deployment.
  if [[ -d $run_dir ]]; then
    act rm -rf "$run_dir"
    changed "remove $run_dir/"
    if act rmdir "$(dirname "$run_dir")" 2>/dev/null; then changed "remove $(dirname "$run_dir")/"; fi
  fi
  if [[ -n $prom_config && -f $prom_config ]] && grep -qF "$BEGIN_MARK $instance " "$prom_config"; then
    strip_block "$prom_config" >"$work/prom.yml"
    put "$work/prom.yml" "$prom_config" "$(stat -c %a "$prom_config")" || true
  fi
  # The env file: removed when deploy wrote it and nobody changed it since, or with --purge.
  if [[ -f $env_file ]]; then
    if ((purge)) || [[ -f $env_sum && $(sha256sum <"$env_file" | cut -d' ' -f1) == "$(<"$env_sum")" ]]; then
      remove "$env_file"
      remove "$token_file"
    else
      echo "deploy: kept $env_file (edited since deploy; --purge removes it)" >&2
    fi
  fi
  remove "$env_sum"
  if ((purge)); then remove "$token_file"; fi
  # The daemons' own settings: removed when unchanged since deploy wrote them, or with --purge.
  local c sf
  for c in probe diagnoser exporter; do
    sf=${secret_file[$c]}
    if [[ -f $sf ]]; then
      if ((purge)) || [[ -f $(sum_of "$sf") && $(sha256sum <"$sf" | cut -d' ' -f1) == "$(<"$(sum_of "$sf")")" ]]; then
        remove "$sf"
      else
        echo "deploy: kept $sf (edited since deploy; --purge removes it)" >&2
      fi
    fi
    remove "$(sum_of "$sf")"
  done
  # Shared by every instance of the host: only when no other deployment is left.
  other=$(find "$env_dir" -maxdepth 1 -name '*.env' ! -name "$instance.env" -print -quit 2>/dev/null)
  if [[ -n $other ]]; then
    echo "deploy: kept the units, binaries and permissions: another deployment uses them ($other)" >&2
  elif ((from_package)); then
    echo "deploy: binaries and units belong to the package: apt-get remove trading-heal" >&2
    remove "$polkit_rule"
    if [[ -n $prom_config ]]; then remove "$prom_rules"; fi
  else
    for f in "$ROOT"/systemd/trading-heal-*@.service "$ROOT"/systemd/trading-heal@.target; do
      remove "$unit_dir/$(basename "$f")"
    done
    act sc daemon-reload 2>/dev/null || true
    for f in "${COMPONENTS[@]}" "${TOOLS[@]}"; do remove "$bin_dir/trading-heal-$f"; done
    remove "$rules_file"
    act rmdir "$(dirname "$rules_file")" "$(dirname "$(dirname "$rules_file")")" 2>/dev/null || true
    if ((!user_mode)); then
      remove "$polkit_rule"
    fi
    if [[ -n $prom_config ]]; then remove "$prom_rules"; fi
  fi
  # Many hosts: this machine's key pair and the centre's allow-list are its identity and its
  # trust, not a deployment's: kept, unless --purge and no other deployment is left.
  for f in "$keys_dir" "$hosts_dir"; do
    [[ -d $f ]] || continue
    if ((purge)) && [[ -z $other ]]; then
      act rm -rf "$f"
      changed "remove $f/"
    else
      echo "deploy: kept $f/ (--purge removes it)" >&2
    fi
  done
  if [[ -z $other && -d $env_dir ]] && act rmdir "$env_dir" 2>/dev/null; then changed "remove $env_dir/"; fi
  if ((purge)); then
    if [[ -d $data_dir ]]; then act rm -rf "$data_dir"; changed "remove the data dir $data_dir"; fi
    local parent
    parent=$(dirname "$data_dir")
    if [[ -d $parent ]] && act rmdir "$parent" 2>/dev/null; then changed "remove $parent/"; fi
    if ((!user_mode)) && [[ -z $other ]]; then
      # trading-heal: the shared user and group of older versions
      for f in "${COMPONENTS[@]/#/trading-heal-}" trading-heal; do
        if getent passwd "$f" >/dev/null; then act userdel "$f"; changed "delete user $f"; fi
      done
      for f in "${COMPONENTS[@]/#/trading-heal-}" trading-heal-operators trading-heal; do
        if getent group "$f" >/dev/null; then act groupdel "$f"; changed "delete group $f"; fi
      done
    fi
  elif [[ -d $data_dir ]]; then
    echo "deploy: kept the data dir $data_dir (--purge removes it)" >&2
  fi
}

# --- main ---------------------------------------------------------------------------------------
((dry)) && echo "deploy: DRY RUN: nothing is changed" >&2
if ((from_package)); then
  echo "deploy: $scope mode, instance $instance, binaries and units from the trading-heal package" >&2
else
  echo "deploy: $scope mode, instance $instance, binaries $build_dir/bin -> $bin_dir, units -> $unit_dir" >&2
fi
status=0
if ((uninstall)); then
  do_uninstall
else
  # promtool is needed only where there is a Prometheus configuration to merge into.
  if [[ -n $prom_config ]] && ! command -v promtool >/dev/null; then
    if ((prom_config_set)) || [[ -f $prom_config ]]; then
      die "promtool not found (apt-get install prometheus), needed to check $prom_config"
    fi
    echo "deploy: Prometheus: skipped (not installed on this host: no promtool, no $prom_config)" >&2
    prom_config=""
  fi
  if ((hosts_only)); then
    step_hosts
    hup_exporters
  else
    if [[ $role == host && -z $centre_key && -n $centre_ssh ]]; then
      fetch_centre_key "$work/centre.pub"
      centre_key=$work/centre.pub
    fi
    step_package
    step_accounts
    step_dirs
    step_binaries
    step_keys
    step_hosts
    step_env
    step_units
    step_roles
    step_bind_dropin
    step_permission
    step_prometheus
    step_start
    hup_exporters
    step_verify || status=1
  fi
fi

echo >&2
if ((changes == 0)); then
  echo "deploy: nothing to change: $scope installation of $instance is up to date" >&2
else
  if ((dry)); then echo "deploy: plan ($changes changes):" >&2; else echo "deploy: done ($changes changes):" >&2; fi
  printf '  - %s\n' "${done_list[@]}" >&2
fi
if [[ $role == host ]] && ((uninstall == 0 && status == 0)); then
  if [[ -f $keys_dir/$host_name.pub ]]; then
    echo "$HOST_KEY_MARK $host_name"   # for deploy.sh over ssh: the key to add at the centre
    if [[ -n $centre_ssh ]] && ((exchange_by_caller == 0)); then
      push_host_key "$host_name" "$keys_dir/$host_name.pub"
      if ((key_added && start && !dry)) && sc is-active -q "trading-heal-probe@$instance.service"; then
        sc restart "trading-heal-probe@$instance.service"
        echo "deploy: restarted trading-heal-probe@$instance (it connects to the centre now)" >&2
      fi
    elif ((exchange_by_caller == 0)); then
      print_exchange "$host_name" ""
    fi
  fi
fi
if [[ $role == host ]] && ((uninstall == 0 && start && !dry && status == 0)); then
  echo "deploy: check: systemctl status $target; on the centre: trading-heal-ctl status (host $host_name)" >&2
elif ((uninstall == 0 && start && !dry && status == 0 && hosts_only == 0)); then
  api=$(env_value TRADING_HEAL_API_LISTEN)
  echo "deploy: check: systemctl $( ((user_mode)) && echo '--user ')status $target;" \
    "curl -s $(listen_url "${api:-0.0.0.0:9121}" /status) | jq" >&2
fi
exit "$status"
