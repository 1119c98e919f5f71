#!/usr/bin/env bash
# The system-mode testbed: a real system manager (systemd 252 as PID 1, the system bus, polkitd,
# journald) in a systemd-nspawn container booted from a Debian bookworm rootfs made once with
# debootstrap. Every boot is pristine (--volatile=overlay: changes vanish at stop). See
# tests/sysbed/README.md.
#
#   sysbed.sh rootfs                   make the rootfs if its package list changed; print its path
#   sysbed.sh boot NAME                boot a container; waits until the manager is running
#   sysbed.sh exec NAME CMD...         CMD in the container as root, clean environment; exit code
#   sysbed.sh put NAME SRC DEST [MODE] copy a host file into the container
#   sysbed.sh pid1 NAME                the container's PID 1 (host PID namespace)
#   sysbed.sh stop NAME | stop-all     orderly halt, then every process, cgroup and mount gone
#   sysbed.sh status
#
# State: $TRADING_HEAL_SYSBED_DIR (default build/sysbed). The container shares the host's network
# namespace (apt reaches the mirror, the test reaches its ports on 127.0.0.1), so one container
# runs at a time and its ports (PostgreSQL 5433, 9120, 9121, sshd 2222) must be free.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DIR=$(realpath -m "${TRADING_HEAL_SYSBED_DIR:-$REPO/build/sysbed}")
PORTS="5433 9120 9121 2222"
SUITE=bookworm

say() { echo "sysbed: $*" >&2; }
die() { echo "sysbed: error: $*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

need_root() { [[ $(id -u) == 0 ]] || die "needs root (systemd-nspawn, debootstrap)"; }

# --- the rootfs -------------------------------------------------------------------------------

packages() { grep -v '^[[:space:]]*\(#\|$\)' "$HERE/packages" | xargs; }
debootstrap_key() { packages | sha256sum | cut -c1-12; }
rootfs_key() {
  { packages; cat "$HERE/rootfs-setup.sh" "$REPO/tests/bed/sql/schema.sql"; } | sha256sum | cut -c1-12
}

# The mirror this machine's apt uses (never a hard-coded host).
mirror() {
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
    grep -v security | head -1) || true
  [[ -n $m ]] || m=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null) || true
  [[ -n $m ]] || die "no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
  echo "$m"
}

ensure_tools() {
  command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null && return
  say "installing systemd-container and debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    systemd-container debootstrap >/dev/null
}

cmd_rootfs() {
  need_root
  ensure_tools
  local key dkey root tmp t0
  key=$(rootfs_key)
  dkey=$(debootstrap_key)
  root=$DIR/rootfs-$key
  if [[ -f $root/.sysbed-ready ]]; then echo "$root"; return; fi
  mkdir -p "$DIR"
  t0=$(now_ms)
  tmp=$DIR/rootfs-$key.tmp
  # A debootstrap that finished is reused when only the setup failed (keeps its own copy).
  if [[ ! -f $DIR/debootstrap-$dkey/.done ]]; then
    rm -rf "$DIR/debootstrap-$dkey"
    say "debootstrap $SUITE ($(packages | wc -w) packages) (once per package list)"
    debootstrap --variant=minbase --include="$(packages | tr ' ' ,)" "$SUITE" \
      "$DIR/debootstrap-$dkey" "$(mirror)" >"$DIR/debootstrap.log" 2>&1 ||
      { tail -20 "$DIR/debootstrap.log" >&2; die "debootstrap failed (log: $DIR/debootstrap.log)"; }
    rm -rf "$DIR/debootstrap-$dkey"/var/cache/apt/archives/*.deb
    touch "$DIR/debootstrap-$dkey/.done"
    say "debootstrap done in $(( ($(now_ms) - t0) / 1000 )) s"
  fi
  rm -rf "$tmp"
  cp -a "$DIR/debootstrap-$dkey" "$tmp"
  rm -f "$tmp/.done"
  say "setting the host up"
  cp "$REPO/tests/bed/sql/schema.sql" "$tmp/root/schema.sql"
  cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
  run_private_cgroup setup systemd-nspawn --quiet --register=no --keep-unit --pipe -D "$tmp" \
    /bin/bash -s <"$HERE/rootfs-setup.sh" >"$DIR/rootfs-setup.log" 2>&1 ||
    { tail -30 "$DIR/rootfs-setup.log" >&2; die "rootfs setup failed (log: $DIR/rootfs-setup.log)"; }
  rm -rf "$tmp"/var/cache/apt/archives/*.deb
  touch "$tmp/.sysbed-ready"
  # Older rootfs of other package lists are not needed any more.
  find "$DIR" -maxdepth 1 \( -name 'rootfs-*' -o -name 'debootstrap-*' \) ! -name "rootfs-$key" \
    ! -name "rootfs-$key.tmp" ! -name "debootstrap-$dkey" -exec rm -rf {} + 2>/dev/null || true
  mv "$tmp" "$root"
  say "rootfs ready in $(( ($(now_ms) - t0) / 1000 )) s ($(du -sm "$root" | cut -f1) MB): $root"
  echo "$root"
}

# --- cgroups: each nspawn in a cgroup of its own, not under the host's init.scope -----------

cgroup_roots() {
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    echo /sys/fs/cgroup  # pure cgroup v2
  else
    local d
    for d in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do [[ -d $d ]] && echo "$d"; done
  fi
}

# run_private_cgroup NAME CMD...: CMD (exec'd) in the cgroups trading-heal-sysbed-NAME.
run_private_cgroup() {
  local name=$1 r
  shift
  for r in $(cgroup_roots); do mkdir -p "$r/trading-heal-sysbed-$name"; done
  (
    for r in $(cgroup_roots); do echo "$BASHPID" >"$r/trading-heal-sysbed-$name/cgroup.procs"; done
    exec "$@"
  )
  local rc=$?
  remove_cgroups "$name"
  return $rc
}

remove_cgroups() {  # depth first: children before their parent
  local r
  for r in $(cgroup_roots); do
    [[ -d $r/trading-heal-sysbed-$1 ]] || continue
    find "$r/trading-heal-sysbed-$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

cgroup_pids() {  # every process still in a container's cgroups
  local r
  for r in $(cgroup_roots); do
    [[ -d $r/trading-heal-sysbed-$1 ]] || continue
    find "$r/trading-heal-sysbed-$1" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
}

# --- containers -------------------------------------------------------------------------------

check_name() { [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "invalid container name '$1'"; }
state() { echo "$DIR/run/$1"; }

# alive NAME: the recorded nspawn PID runs and is the process we started (start time compared).
alive() {
  local s pid
  s=$(state "$1")
  [[ -f $s/nspawn.pid && -f $s/nspawn.start ]] || return 1
  pid=$(<"$s/nspawn.pid")
  [[ -r /proc/$pid/stat ]] || return 1
  [[ $(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null) == "$(<"$s/nspawn.start")" ]]
}

pid1_of() {
  local s p
  s=$(state "$1")
  alive "$1" || die "container $1 is not running"
  if [[ -f $s/pid1 ]]; then cat "$s/pid1"; return; fi
  for p in $(ps -o pid= --ppid "$(<"$s/nspawn.pid")"); do
    if grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$p/status" 2>/dev/null; then
      echo "$p" >"$s/pid1"
      echo "$p"
      return
    fi
  done
  return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

in_container() {  # in_container NAME CMD...: nsenter, clean environment
  local p
  p=$(pid1_of "$1")
  shift
  nsenter -t "$p" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb "$@"
}

cmd_boot() {
  need_root
  local name=${1:?usage: sysbed.sh boot NAME} root s t0 p
  check_name "$name"
  alive "$name" && die "container $name is already running"
  for p in $PORTS; do
    port_busy "$p" && die "127.0.0.1:$p is in use: the container shares the host's network and needs it"
  done
  root=$(cmd_rootfs)
  s=$(state "$name")
  rm -rf "$s" && mkdir -p "$s"
  mkdir -p "$DIR/apt-archives/partial"
  t0=$(now_ms)
  # The apt cache is bound from the host: the packages an install downloads are kept between
  # boots (nothing else of a boot survives it).
  setsid bash -c "$(declare -f cgroup_roots); for r in \$(cgroup_roots); do
      mkdir -p \"\$r/trading-heal-sysbed-$name\" && echo \$\$ >\"\$r/trading-heal-sysbed-$name/cgroup.procs\"; done
    exec systemd-nspawn --quiet --register=no --keep-unit --console=passive --volatile=overlay \
      --bind='$DIR/apt-archives:/var/cache/apt/archives' -M '$name' -D '$root' -b" \
    </dev/null >"$s/console.log" 2>&1 &
  echo $! >"$s/nspawn.pid"
  awk '{print $22}' "/proc/$!/stat" >"$s/nspawn.start"
  local deadline=$(( $(now_ms) + 30000 ))
  until pid1_of "$name" >/dev/null 2>&1 &&
    [[ $(in_container "$name" systemctl is-system-running --wait 2>/dev/null) =~ ^(running|degraded)$ ]]; do
    if ! alive "$name"; then cat "$s/console.log" >&2; die "container $name exited while booting"; fi
    (( $(now_ms) < deadline )) || { cmd_stop "$name"; die "container $name did not boot in 30 s"; }
    sleep 0.05
  done
  say "booted $name in $(( $(now_ms) - t0 )) ms (nspawn $(<"$s/nspawn.pid"), PID 1 = $(pid1_of "$name"))"
}

cmd_exec() {
  local name=${1:?usage: sysbed.sh exec NAME CMD...}
  shift
  in_container "$name" "$@"
}

cmd_put() {  # put NAME SRC DEST [MODE]
  local name=$1 src=$2 dest=$3 mode=${4:-0644} p
  p=$(pid1_of "$name")
  install -D -m "$mode" "$src" "/proc/$p/root$dest"
}

cmd_stop() {
  local name=${1:?usage: sysbed.sh stop NAME} s pid left
  s=$(state "$name")
  [[ -d $s ]] || return 0
  if alive "$name"; then
    pid=$(<"$s/nspawn.pid")
    kill -TERM "$pid" 2>/dev/null || true  # nspawn: an orderly halt of the container
    local deadline=$(( $(now_ms) + 20000 ))
    while alive "$name" && (( $(now_ms) < deadline )); do sleep 0.05; done
    if alive "$name"; then
      say "container $name did not halt in 20 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Whatever is left in the container's cgroups (by PID, from the cgroup, never by name).
  left=$(cgroup_pids "$name" | xargs)
  if [[ -n $left ]]; then
    say "killing leftover processes of $name: $left"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    local i
    for i in $(seq 100); do [[ -z $(cgroup_pids "$name") ]] && break; sleep 0.05; done
  fi
  remove_cgroups "$name"
  rmdir /run/systemd/nspawn/propagate/"$name" /run/systemd/nspawn/propagate \
    /run/systemd/nspawn/locks /run/systemd/nspawn 2>/dev/null || true
  rm -rf "$s"
}

cmd_stop_all() {
  local s
  [[ -d $DIR/run ]] || return 0
  for s in "$DIR"/run/*; do [[ -d $s ]] && cmd_stop "$(basename "$s")"; done
  return 0
}

cmd_status() {
  local s any=1
  for s in "$DIR"/run/*; do
    [[ -d $s ]] || continue
    if alive "$(basename "$s")"; then echo "$(basename "$s"): running (nspawn $(<"$s/nspawn.pid"))"; any=0; fi
  done
  return $any
}

case "${1:-}" in
  rootfs) cmd_rootfs ;;
  boot) shift; cmd_boot "$@" ;;
  exec) shift; cmd_exec "$@" ;;
  put) shift; cmd_put "$@" ;;
  pid1) shift; pid1_of "${1:?}" ;;
  stop) shift; cmd_stop "$@" ;;
  stop-all) cmd_stop_all ;;
  status) cmd_status ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) echo "usage: sysbed.sh rootfs|boot NAME|exec NAME CMD...|put NAME SRC DEST [MODE]|pid1 NAME|stop NAME|stop-all|status" >&2
     exit 2 ;;
esac
