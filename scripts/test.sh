#!/usr/bin/env bash
# Builds ringkv and runs every test, as CI does (.ci/run calls this script):
#
#   1. deps        scripts/install-deps.sh (apt-get, only when something is missing)
#   2. build       RelWithDebInfo with AddressSanitizer and UndefinedBehaviorSanitizer, into
#                  build-asan/: every test below runs on this build, so a memory error or
#                  undefined behaviour anywhere fails the run
#   3. ctest       unit and integration tests (Catch2, hiredis; clusters of real servers, etcd),
#                  and the install test (cmake --install, then find_package(ringkv))
#   4. redis-tests black-box tests with redis-py, redis-cli, redis-benchmark, and the
#                  differential compatibility run against Debian's redis-server (compat.py),
#                  on one node and through a 3-node cluster
#   5. tsan build  TSan build into build-tsan/ (the store's and SyncClient's tests, the server,
#                  TLS, cluster and client tests, the server); it runs in the background from
#                  the start of stage 3, on the core the tests leave idle
#   6. tsan tests  the store's and SyncClient's unit tests, the server's integration tests
#                  (io-threads 4 included) and TLS tests, the cluster tests (3-5 TSan-built
#                  nodes each) and the client library's tests under ThreadSanitizer
#   7. fuzz        the libFuzzer targets in fuzz/ (clang), each for FUZZ_SECONDS (60)
#
# One instrumented build instead of a plain one and an ASan one keeps CI within 30 minutes on two
# cores; `scripts/build.sh` makes a plain build (build/) for use and for benchmarks.
#
# Every stage prints a header and its duration. The first failing stage stops the run with a
# summary and a non-zero exit status; a stage whose prerequisite is missing fails, it is never
# skipped quietly.
#
# Environment: JOBS (parallel compile jobs and unit-test jobs, default 2), FUZZ_SECONDS (default
# 60), BUILD_PREFIX (default "build": build-asan/, build-tsan/, build-fuzz/), STAGES (the stages to
# run, by name, default all; stages left out are listed as NOT RUN in the summary), TEST_TIMEOUT
# (seconds per ctest test, default 600).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

JOBS="${JOBS:-2}"
TEST_TIMEOUT="${TEST_TIMEOUT:-600}"  # seconds per ctest test: a hang fails, it does not stall CI
CTEST_FLAGS=(--output-on-failure --no-tests=error --timeout "$TEST_TIMEOUT")
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
PREFIX="${BUILD_PREFIX:-build}"
B_ASAN="$PREFIX-asan"
B_TSAN="$PREFIX-tsan"
B_FUZZ="$PREFIX-fuzz"
PY=/usr/bin/python3  # Debian's python3, which has python3-redis (not a pyenv one on PATH)

SUMMARY=()
RUN_START=$SECONDS

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# CPU seconds used so far by this script's finished child processes (user + system), from the
# second line of bash's `times`. Printed per stage next to the wall time: on a shared machine the
# wall time says more about the neighbours than about the stage.
# (`times` must run in this shell, not in a $(...) subshell, to see this shell's children.)
TIMES_FILE="$(mktemp)"
trap 'rm -f "$TIMES_FILE" "${TSAN_BUILD_LOG:-}"; [ -z "${TSAN_BUILD_PID:-}" ] || kill -- "-$TSAN_BUILD_PID" 2>/dev/null' EXIT
cpu_seconds() {
  times >"$TIMES_FILE"
  CPU_NOW="$(sed -n 2p "$TIMES_FILE" | awk '{ s = 0; for (i = 1; i <= NF; i++) {
    split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] } printf "%d", s }')"
}

summary() {
  echo
  echo "==================== scripts/test.sh summary ===================="
  for line in "${SUMMARY[@]}"; do echo "  $line"; done
  cpu_seconds
  echo "  total: $(fmt_time $((SECONDS - RUN_START))) (cpu $(fmt_time "$CPU_NOW"))"
  echo "================================================================="
}

# stage <name> <function>: runs the function, records its result and duration.
stage() {
  local name="$1" fn="$2" start=$SECONDS cpu_start rc
  if [ -n "${STAGES:-}" ] && [[ " $STAGES " != *" $name "* ]]; then
    SUMMARY+=("$(printf '%-12s NOT RUN  (not in STAGES)' "$name")")
    return 0
  fi
  echo
  echo "==================== [$name] ===================="
  cpu_seconds
  cpu_start=$CPU_NOW
  "$fn"
  rc=$?
  cpu_seconds
  local took
  took="$(fmt_time $((SECONDS - start))) (cpu $(fmt_time $((CPU_NOW - cpu_start))))"
  if [ $rc -eq 0 ]; then
    SUMMARY+=("$(printf '%-12s passed   %s' "$name" "$took")")
    echo "---- [$name] passed in $took"
  elif [ $rc -eq 99 ]; then
    SUMMARY+=("$(printf '%-12s SKIPPED  %s  (%s)' "$name" "$took" "$SKIP_REASON")")
    echo "---- [$name] SKIPPED: $SKIP_REASON"
  else
    SUMMARY+=("$(printf '%-12s FAILED   %s' "$name" "$took")")
    echo "---- [$name] FAILED (exit status $rc) after $took"
    summary
    echo "scripts/test.sh: FAILED at stage '$name'"
    exit 1
  fi
}

need() {
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "missing prerequisite: $tool (scripts/install-deps.sh installs it)"
      return 1
    fi
  done
}

# ---------------------------------------------------------------- stages

deps() {
  "$ROOT/scripts/install-deps.sh" || return 1
  need cmake ninja ctest redis-server redis-cli redis-benchmark clang++ || return 1
  "$PY" -c 'import redis' || { echo "$PY cannot import redis (python3-redis)"; return 1; }
}

build() {
  "$ROOT/scripts/build.sh" --type RelWithDebInfo --dir "$B_ASAN" -- \
    -DRINGKV_SANITIZE=address,undefined -DRINGKV_BENCH=OFF
}

# Unit tests in parallel; integration tests one at a time, since each starts servers (clusters
# of several, and etcd) whose start-up deadlines should not depend on the other tests' load.
unit_integration() {
  export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  ctest --test-dir "$B_ASAN" -L unit "${CTEST_FLAGS[@]}" -j "$JOBS" &&
    ctest --test-dir "$B_ASAN" -L integration "${CTEST_FLAGS[@]}" &&
    ctest --test-dir "$B_ASAN" -L install "${CTEST_FLAGS[@]}"
}

redis_tests() {
  export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  local server="$ROOT/$B_ASAN/ringkv-server"
  [ -x "$server" ] || { echo "missing $server"; return 1; }
  RINGKV_SERVER="$server" "$PY" -m unittest discover -s "$ROOT/redis-tests" -p 'test_*.py' -v &&
    "$PY" "$ROOT/redis-tests/compat.py" --ringkv-server "$server" &&
    "$PY" "$ROOT/redis-tests/compat.py" --ringkv-server "$server" --cluster 3
}

build_tsan() {
  "$ROOT/scripts/build.sh" --type RelWithDebInfo --dir "$B_TSAN" \
    --target store_test --target sync_client_test --target peer_link_test --target server_test \
    --target cluster_test --target cluster_admin_test --target client_test --target tls_test \
    --target ringkv-server -- \
    -DRINGKV_SANITIZE=thread -DRINGKV_BENCH=OFF
}

# The TSan build overlaps the ctest and redis-tests stages, which leave one core mostly idle (they
# run their servers one test at a time): one compile job, at the lowest priority so that it takes
# only what the tests leave. The tsan-build stage waits for it and prints its output.
TSAN_BUILD_PID=""
TSAN_BUILD_LOG="$(mktemp)"
start_tsan_build() {
  if [ -n "${STAGES:-}" ] && [[ " $STAGES " != *" tsan-build "* ]]; then return 0; fi
  set -m  # its own process group, so that an early exit can stop the compilers too
  (renice -n 19 "$BASHPID" >/dev/null && JOBS=1 build_tsan) </dev/null >"$TSAN_BUILD_LOG" 2>&1 &
  TSAN_BUILD_PID=$!
  set +m
}

tsan_build() {
  local rc=0
  if [ -n "$TSAN_BUILD_PID" ]; then
    wait "$TSAN_BUILD_PID" || rc=$?
    TSAN_BUILD_PID=""
    echo "(built in the background during the earlier stages; its output:)"
    cat "$TSAN_BUILD_LOG"
    [ $rc -eq 0 ] || return $rc
  fi
  # Finishes the build if it did not run in the background (or does nothing).
  build_tsan
}

tsan_tests() {
  # A race makes the process (test or server) abort, so it cannot pass unnoticed.
  export TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1"
  ctest --test-dir "$B_TSAN" -R '^(store|sync_client|peer_link)_test:' "${CTEST_FLAGS[@]}" -j "$JOBS" &&
    ctest --test-dir "$B_TSAN" -R '^(server|tls)_test:' "${CTEST_FLAGS[@]}" &&
    ctest --test-dir "$B_TSAN" -R '^(cluster|cluster_admin|client)_test:' "${CTEST_FLAGS[@]}" -j "$JOBS"
}

SKIP_REASON=""
fuzz() {
  if [ ! -f "$ROOT/fuzz/CMakeLists.txt" ]; then
    SKIP_REASON="fuzz/ has no CMakeLists.txt and no targets yet"
    return 99
  fi
  need clang clang++ || return 1
  # Configure, then build only the fuzz executables (their names end in _fuzz).
  "$ROOT/scripts/build.sh" --type RelWithDebInfo --dir "$B_FUZZ" --configure-only -- \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DRINGKV_FUZZ=ON \
    -DRINGKV_TESTS=OFF -DRINGKV_BENCH=OFF >/dev/null || return 1
  local targets=()
  # (ninja also lists CMake's phony cmake_object_order_depends_target_<name>: not a target.)
  mapfile -t targets < <(ninja -C "$B_FUZZ" -t targets all |
    sed -n 's/^\([A-Za-z0-9_]*_fuzz\): .*/\1/p' | grep -v '^cmake_' | sort -u)
  if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz/CMakeLists.txt defines no target named *_fuzz"
    return 1
  fi
  ninja -C "$B_FUZZ" -j "$JOBS" "${targets[@]}" || return 1
  local t bin corpus seeds
  for t in "${targets[@]}"; do
    bin="$(find "$B_FUZZ" -type f -name "$t" -perm -u+x | head -n 1)"
    [ -n "$bin" ] || { echo "built $t but cannot find its executable"; return 1; }
    corpus="$(mktemp -d)"  # new inputs go here, not into the repository
    seeds=()  # checked-in seeds: fuzz/corpus/<target> or fuzz/corpus/<target without _fuzz>
    [ -d "$ROOT/fuzz/corpus/$t" ] && seeds=("$ROOT/fuzz/corpus/$t")
    [ -d "$ROOT/fuzz/corpus/${t%_fuzz}" ] && seeds=("$ROOT/fuzz/corpus/${t%_fuzz}")
    mkdir -p "$B_FUZZ/artifacts"
    echo "fuzzing $t for ${FUZZ_SECONDS}s"
    if ! "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$B_FUZZ/artifacts/" "$corpus" "${seeds[@]}"; then
      rm -rf "$corpus"
      echo "$t found a failure; the input is in $B_FUZZ/artifacts/"
      return 1
    fi
    rm -rf "$corpus"
  done
}

stage deps deps
stage build build
start_tsan_build
stage ctest unit_integration
stage redis-tests redis_tests
stage tsan-build tsan_build
stage tsan-tests tsan_tests
stage fuzz fuzz
summary
if [ -n "${STAGES:-}" ]; then
  echo "scripts/test.sh: the selected stages passed (STAGES=\"$STAGES\"); others were not run"
else
  echo "scripts/test.sh: all stages passed"
fi
