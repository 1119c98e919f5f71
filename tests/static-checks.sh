#!/usr/bin/env bash
# Static checks (run by tests/run-all.sh): the sources' format (.clang-format) and lint
# (.clang-tidy), the shipped operations files: alert rules and their unit tests, the Prometheus
# and Alertmanager configs, systemd units.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
fail=0
check() {
  local name=$1
  shift
  if out=$("$@" 2>&1); then
    printf 'ok    %s\n' "$name" >&2
  else
    printf 'FAIL  %s\n%s\n' "$name" "$out" >&2
    fail=1
  fi
}
# Every C++ source and header of the project (not the build trees) as clang-format would write it.
sources() {
  find common proto probe diagnoser actuator exporter tools tests bench \
    \( -name '*.cpp' -o -name '*.hpp' \) -not -path '*/build*' | sort
}
check "clang-format ($(sources | wc -l) files)" bash -c 'sources=$(cat); clang-format-14 --dry-run --Werror $sources' < <(sources)
# The project's own sources (not tests, not benchmarks) against .clang-tidy: bugprone-*,
# performance-*, functions of at most 60 lines; every finding fails. Needs the build's
# compile_commands.json. TIDY=0 skips it (a quick local run).
production_sources() {
  find common proto probe diagnoser actuator exporter tools -name '*.cpp' -not -path '*/build*' |
    sort
}
# run-clang-tidy always colours its output: the findings as plain text, without the notes.
tidy() {
  run-clang-tidy-14 -p "$build" -j 2 -quiet -extra-arg=-Wno-unknown-warning-option "$@" 2>&1 |
    sed 's/\x1b\[[0-9;]*m//g' | grep -E -A2 ': error: ' | awk '!seen[$0]++' | head -200
  return "${PIPESTATUS[0]}"
}
if [[ "${TIDY:-1}" != 0 ]]; then
  check "clang-tidy ($(production_sources | wc -l) files)" \
    tidy $(production_sources | sed 's/[.]/[.]/g; s/^/^.*\//; s/$/$/')
fi
check "promtool check rules" promtool check rules deploy/prometheus/alert_rules.yml
check "promtool test rules" promtool test rules deploy/prometheus/alert_rules_test.yml
check "promtool check config" promtool check config deploy/prometheus/prometheus.yml
check "amtool check-config" amtool check-config deploy/alertmanager/alertmanager.yml
if compgen -G "systemd/*.service" >/dev/null && [[ -x tests/check-units.sh ]]; then
  check "systemd units" tests/check-units.sh "$build"
fi
exit "$fail"
