#!/usr/bin/env bash
# Verifies the shipped units: `systemd-analyze verify` is clean, and the exposure scores of
# `systemd-analyze security --offline=true` stay within their limits (probe, diagnoser, exporter
# <= 2.5; actuator <= 4.0). Prints every score. Usage: tests/check-units.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# verify wants the ExecStart= binaries to exist: point the units at the build's.
for f in systemd/*.service systemd/*.target; do
  sed "s|/usr/local/bin/|$(pwd)/$build/bin/|" "$f" >"$work/$(basename "$f")"
done
status=0
out=$(cd "$work" && systemd-analyze verify --man=no ./trading-heal@.target ./trading-heal-*@.service 2>&1 |
  grep -v -e "Failed to load configuration" -e "/etc/trading-heal/" || true)
if [[ -n "$out" ]]; then
  echo "systemd-analyze verify:" >&2
  echo "$out" >&2
  status=1
fi
for unit in probe diagnoser exporter actuator; do
  limit=2.5
  [[ $unit == actuator ]] && limit=4.0
  score=$(systemd-analyze security --offline=true "$work/trading-heal-$unit@.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  echo "exposure trading-heal-$unit@.service $score (limit $limit)" >&2
  if [[ -z "$score" ]] || awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s > l) }'; then
    status=1
  fi
done
exit "$status"
