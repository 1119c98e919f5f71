# Shared by the permission generators: reads the agent list and refuses anything that is not a
# valid instance name (it becomes part of a unit name a privileged process may restart).
# Sourced, not run.

# agents_from ARGS...: prints one validated instance per line, from the arguments (comma or
# blank separated) or, when there are none, from $TRADING_HEAL_AGENTS.
agents_from() {
  local list="$*" a n=0 items=()
  [[ -n $list ]] || list=${TRADING_HEAL_AGENTS:-}
  [[ -n $list ]] || { echo "error: no agents (arguments or TRADING_HEAL_AGENTS)" >&2; return 64; }
  # Split on commas and blanks only: no glob ('a*' must not become the files of the current dir).
  IFS=$', \t\n' read -r -d '' -a items <<<"$list" || true
  for a in "${items[@]}"; do
    if [[ ! $a =~ ^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$ ]]; then
      echo "error: invalid instance name '$a' (must match ^[A-Za-z0-9]+(_[A-Za-z0-9]+)*\$)" >&2
      return 65
    fi
    echo "$a"
    n=$((n + 1))
  done
  ((n > 0)) || { echo "error: no agents" >&2; return 64; }
}

check_user() {
  [[ $1 =~ ^[a-z_][a-z0-9_-]*$ ]] || { echo "error: invalid user name '$1'" >&2; return 65; }
}
