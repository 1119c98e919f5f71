#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds with warnings as errors
# and AddressSanitizer + UndefinedBehaviorSanitizer, then runs every CTest test: unit tests, the
# integration tests on the real testbed (PostgreSQL, systemd user manager, journald, simulated
# agents, fake Ollama), and the system tests (a systemd system manager in a container, the .deb
# built without sanitizers), whose fixtures CTest starts and stops; beside them, at nice 19, the
# static checks and the proto fuzzer for a bounded time. Any failure fails the run.
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

# Sanitizer builds at -O1 with line tables only (-g1), as ASan's reports need them: half the
# compile time of -O2 -g (137 -> 70 s on six of the heaviest sources).
sanitizers=${TRADING_HEAL_SANITIZERS:-ON}
flags=()
[[ $sanitizers == ON ]] && flags+=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
step "configure and build ($build, sanitizers $sanitizers)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRADING_HEAL_WERROR=ON \
  -DENABLE_SANITIZERS="$sanitizers" -DTRADING_HEAL_BED_DIR="$root/$build/bed" "${flags[@]}" >/dev/null
cmake --build "$build" -j2

# The static checks and the fuzzer take CPU, the integration tests mostly wait: they run beside
# the tests at nice 19 (as does the .deb for the system tests, a CTest setup: sysbed_package).
background() {
  local status=0
  if [[ -x tests/static-checks.sh ]]; then
    echo "== static checks"
    tests/static-checks.sh "$build" 2>&1 || status=1
  fi
  if [[ "$fuzz_seconds" != 0 ]]; then
    echo "== fuzz proto::decode for ${fuzz_seconds}s"
    CXX=clang++-14 cmake -S . -B "$build-fuzz" -DTRADING_HEAL_FUZZ=ON -DTRADING_HEAL_BUILD_TESTS=OFF \
      -DTRADING_HEAL_BUILD_BENCH=OFF >/dev/null || return 1
    cmake --build "$build-fuzz" -j2 >/dev/null || return 1
    local corpus="$build-fuzz/corpus"
    mkdir -p "$corpus"
    "$build/bin/proto_seed_corpus" "$corpus" || return 1
    if "$build-fuzz/bin/proto_decode_fuzz" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
      "$corpus" 2>"$build-fuzz/fuzz.log"; then
      grep -E "^stat::number_of_executed_units|^Done" "$build-fuzz/fuzz.log" || true
    else
      tail -50 "$build-fuzz/fuzz.log"
      status=1
    fi
  fi
  return "$status"
}
step "static checks and fuzzer (background, nice 19, log $build/background.log)"
(renice -n 19 -p "$BASHPID" >/dev/null && background) >"$build/background.log" 2>&1 &
background_pid=$!

step "tests"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 "$@" || status=$?
step "waiting for the static checks and the fuzzer"
background_status=0
wait "$background_pid" || background_status=$?
cat "$build/background.log" >&2
if ((background_status != 0)); then
  echo "static checks or fuzzer failed (status $background_status)" >&2
  ((status != 0)) || status=$background_status
fi
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
