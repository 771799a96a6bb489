#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: in the Release build
# and in an AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/), so memory errors
# fail; then runs every fuzz target briefly (scripts/fuzz.sh: FUZZ_SECONDS each, default 30,
# as many at a time as there are cores). Tests labelled `slow` (whole networks) are left out;
# run them with
#   ctest --test-dir build -L slow
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
bash scripts/build.sh

echo "== tests (Release) =="
ctest --test-dir build --output-on-failure -j"$jobs" -LE slow

echo "== tests (ASan + UBSan) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DTPUSIM_SANITIZE=ON \
  -DTPUSIM_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow

echo "== fuzz (${FUZZ_SECONDS:-30}s per target) =="
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" FUZZ_JOBS="$jobs" bash scripts/fuzz.sh
