#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds with warnings as errors
# and AddressSanitizer + UndefinedBehaviorSanitizer, runs the static checks, the proto fuzzer
# for a bounded time, then every CTest test: unit tests, the integration tests on the real
# testbed (PostgreSQL, systemd user manager, journald, simulated agents, fake Ollama), and the
# system tests (a systemd system manager in a container, the .deb built without sanitizers),
# whose fixtures CTest starts and stops.
#
#   tests/run-all.sh [ctest arguments...]     e.g. tests/run-all.sh -L unit
# Environment: BUILD_DIR (default build-test), FUZZ_SECONDS (default 60, 0 skips),
# TRADING_HEAL_SANITIZERS (default ON).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-build-test}
fuzz_seconds=${FUZZ_SECONDS:-60}
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))" >&2; }

step "dependencies"
deploy/install-deps.sh

step "configure and build ($build, sanitizers ${TRADING_HEAL_SANITIZERS:-ON})"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRADING_HEAL_WERROR=ON \
  -DENABLE_SANITIZERS="${TRADING_HEAL_SANITIZERS:-ON}" -DTRADING_HEAL_BED_DIR="$root/$build/bed" >/dev/null
cmake --build "$build" -j2

step "the .deb for the system tests (a build without sanitizers in $build/pkg)"
cmake --build "$build" --target sysbed_package -j2 >"$build/sysbed-package.log" 2>&1 ||
  { tail -40 "$build/sysbed-package.log" >&2; exit 1; }
ls "$build"/pkg/trading-heal_*.deb >&2

if [[ -x tests/static-checks.sh ]]; then
  step "static checks"
  tests/static-checks.sh "$build"
fi

if [[ "$fuzz_seconds" != 0 ]]; then
  step "fuzz proto::decode for ${fuzz_seconds}s"
  CXX=clang++-14 cmake -S . -B "$build-fuzz" -DTRADING_HEAL_FUZZ=ON -DTRADING_HEAL_BUILD_TESTS=OFF \
    -DTRADING_HEAL_BUILD_BENCH=OFF >/dev/null
  cmake --build "$build-fuzz" -j2 >/dev/null
  corpus="$build-fuzz/corpus"
  mkdir -p "$corpus"
  "$build/bin/proto_seed_corpus" "$corpus"
  "$build-fuzz/bin/proto_decode_fuzz" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
    "$corpus" 2>"$build-fuzz/fuzz.log" || { tail -50 "$build-fuzz/fuzz.log" >&2; exit 1; }
  grep -E "^stat::number_of_executed_units|^Done" "$build-fuzz/fuzz.log" >&2 || true
fi

step "tests"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 "$@" || status=$?
if ((status != 0)); then
  # The failed assertions once more, last: a CI page that shows only the end of the output
  # still shows why.
  step "failed assertions"
  grep -E -B1 -A4 '(Failure|FAILED +\]|: error:|ERROR: AddressSanitizer|runtime error:|^FAIL)' \
    "$build/Testing/Temporary/LastTest.log" 2>/dev/null | grep -v '^\s*$' | cut -c1-240 | tail -40 >&2 || true
fi
# The fixtures stop the testbeds; make sure of it even when ctest was interrupted.
TRADING_HEAL_BED_DIR="$root/$build/bed" TRADING_HEAL_BIN_DIR="$root/$build/bin" tests/bed/bed.sh stop >/dev/null 2>&1 || true
TRADING_HEAL_SYSBED_DIR="$root/$build/sysbed" tests/sysbed/sysbed.sh stop-all >/dev/null 2>&1 || true
step "done, status $status"
exit "$status"
