#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, docs/fuzzing.md) in build-fuzz/ with clang and runs each
# one for a fixed time or number of inputs. A crash, a sanitizer report, a hang (-timeout) or
# runaway memory (-rss_limit_mb) is a finding: the script names the input that reproduces it
# and exits non-zero.
#
#   scripts/fuzz.sh                          # every target for FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh npy program              # only these targets
#   FUZZ_SECONDS=3600 nice -n 19 scripts/fuzz.sh          # a long campaign
#   FUZZ_RUNS=10000000 nice -n 19 scripts/fuzz.sh model   # a fixed number of inputs
#   FUZZ_JOBS=2 scripts/fuzz.sh              # run two targets at a time
#   FUZZ_FLAGS="-only_ascii=1" scripts/fuzz.sh model     # more libFuzzer flags
#
# Each target keeps the inputs that found new coverage in build-fuzz/corpus/TARGET/, so later
# runs start where earlier ones stopped; the seeds (examples and test inputs) are gathered
# afresh into build-fuzz/seeds/TARGET/ every run. Logs go to build-fuzz/logs/TARGET.log,
# findings to build-fuzz/findings/TARGET-*.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="$root/build-fuzz"
seconds="${FUZZ_SECONDS:-30}"
runs="${FUZZ_RUNS:-}"
jobs="${FUZZ_JOBS:-1}"
all_targets=(model arch program graph npy topology)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  if [[ ! " ${all_targets[*]} " == *" $t "* ]]; then
    echo "error: unknown fuzz target '$t'; the targets are: ${all_targets[*]}" >&2
    exit 2
  fi
done

# Clang 16 is the first clang to capture structured bindings in lambdas (C++20), which the
# sources use; Debian 12 ships it as clang-16 (scripts/install-deps.sh installs it).
cxx="${FUZZ_CXX:-clang++-16}"
if ! command -v "$cxx" >/dev/null; then
  echo "error: $cxx not found; run scripts/install-deps.sh (as root) or set FUZZ_CXX" >&2
  exit 1
fi

# Symbolized stacks in findings.
llvm_bin="$(dirname "$(readlink -f "$(command -v "$cxx")")")"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$llvm_bin/llvm-symbolizer}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
# A quarter faster without recording where each allocation was made; a finding run alone
# (docs/fuzzing.md) still reports it in full.
export ASAN_OPTIONS="${ASAN_OPTIONS:-malloc_context_size=0:detect_stack_use_after_return=0}"
read -r -a extra_flags <<<"${FUZZ_FLAGS:-}"

echo "== fuzz: build (build-fuzz/, $cxx) =="
cmake -S . -B "$out" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release -DTPUSIM_FUZZ=ON \
  -DTPUSIM_BUILD_TESTS=OFF -DTPUSIM_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$out" -j"$(nproc)" --target fuzzers >"$out/fuzz-build.log" 2>&1 ||
  { tail -40 "$out/fuzz-build.log"; echo "error: the fuzz build failed (build-fuzz/fuzz-build.log)" >&2; exit 1; }

# Per target: the seed files, the largest input worth trying (a little above the largest seed
# of its kind) and the dictionary.
seed_globs() {
  case "$1" in
    model) echo examples/models/*.yaml tests/golden/models/*.yaml tests/errors/models/*.yaml \
                tests/errors/compiler/*.yaml tests/errors/limits/*.yaml ;;
    arch) echo examples/arch/*.yaml tests/errors/arch/*.yaml tests/errors/limits/only_comma.yaml ;;
    program) echo examples/programs/*.tpu tests/golden/programs/*.tpu tests/errors/programs/*.tpu \
                  tests/errors/runtime/*.tpu tests/errors/limits/*.tpu ;;
    graph) echo tests/golden/graphs/*.graph tests/errors/graphs/*.graph tests/errors/limits/*.graph ;;
    npy) echo tests/errors/models/weights/*.npy ;;
    topology) echo examples/scalesim/*.csv tests/errors/topologies/*.csv ;;
  esac
}
max_len() {
  case "$1" in
    model) echo 8192 ;;
    npy) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

# A few .npy files the tests do not have: each version, each type, 0-D and empty arrays.
npy_file() {  # npy_file PATH MAJOR DICT DATA: the header padded so the data starts at 64
  local path="$1" major="$2" dict="$3" data="$4"
  local length_bytes=2
  [ "$major" -gt 1 ] && length_bytes=4
  local prefix=$((8 + length_bytes))
  local total=$(( (prefix + ${#dict} + 1 + 63) / 64 * 64 ))
  local header_length=$((total - prefix))
  local padded
  padded="$(printf '%-*s' $((header_length - 1)) "$dict")"
  {
    printf '\x93NUMPY'
    printf "\\x$(printf %02x "$major")\\x00"
    printf "\\x$(printf %02x $((header_length & 255)))\\x$(printf %02x $((header_length >> 8)))"
    [ "$length_bytes" -eq 4 ] && printf '\x00\x00'
    printf '%s\n' "$padded"
    printf "$data"
  } >"$path"
}
make_npy_seeds() {
  local dir="$1"
  npy_file "$dir/gen-int8-2x3.npy" 1 "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }" '\x01\x02\x03\xfd\xfe\xff'
  npy_file "$dir/gen-int32-0d.npy" 1 "{'descr': '<i4', 'fortran_order': False, 'shape': (), }" '\x01\x00\x00\x80'
  npy_file "$dir/gen-bf16-2.npy" 2 "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }" '\x80\x3f\x00\xc0'
  npy_file "$dir/gen-fp32-1x1.npy" 3 "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }" '\x00\x00\x80\x3f'
  npy_file "$dir/gen-empty.npy" 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }" ''
}

# Runs one target; prints one summary line, or the finding and its reproducer.
run_target() {
  local t="$1"
  local seeds="$out/seeds/$t" corpus="$out/corpus/$t" findings="$out/findings"
  local log="$out/logs/$t.log"
  rm -rf "$seeds"
  mkdir -p "$seeds" "$corpus" "$findings" "$out/logs"
  local f
  for f in $(seed_globs "$t"); do
    [ -f "$f" ] && cp "$f" "$seeds/$(echo "${f#./}" | tr / _)"
  done
  [ "$t" = npy ] && make_npy_seeds "$seeds"
  # Weight files named in models are read relative to the working directory: run in an
  # empty one.
  mkdir -p "$out/work/$t"
  : >"$log"
  local start=$SECONDS status execs=0 unit
  while true; do
    local limit=(-max_total_time=$((seconds - (SECONDS - start))))
    [ -n "$runs" ] && limit=(-runs=$((runs - execs)))
    status=0
    (cd "$out/work/$t" && "$out/fuzz/${t}_fuzzer" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
      -max_len="$(max_len "$t")" -dict="$root/fuzz/dictionaries/$t.dict" \
      -artifact_prefix="$findings/$t-" -print_final_stats=1 ${extra_flags[@]+"${extra_flags[@]}"} \
      "$corpus" "$seeds") \
      >"$log.part" 2>&1 </dev/null || status=$?
    cat "$log.part" >>"$log"
    local part_execs
    part_execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log.part" | tail -1)"
    [ -z "$part_execs" ] && part_execs="$(grep -oE '^#[0-9]+' "$log.part" | tail -1 | tr -d '#' || true)"
    execs=$((execs + ${part_execs:-0}))
    [ "$status" -eq 0 ] && break
    # A timeout on a busy machine may only mean the fuzzer got little CPU: it counts as a
    # finding only if the input is slow again when run alone.
    unit="$(sed -n 's/.*Test unit written to //p' "$log.part" | tail -1)"
    if grep -q 'libFuzzer: timeout' "$log.part" && [ -f "$unit" ] &&
      (cd "$out/work/$t" && "$out/fuzz/${t}_fuzzer" -timeout=10 -rss_limit_mb=2048 "$unit") \
        >>"$log" 2>&1 </dev/null; then
      echo "$t: $(basename "$unit") was slow only under load (it runs in time alone); continuing" \
        | tee -a "$log"
      mv "$unit" "$findings/slow-under-load-$(basename "$unit")"
      if { [ -n "$runs" ] && [ "$execs" -lt "$runs" ]; } || { [ -z "$runs" ] && [ $((SECONDS - start)) -lt "$seconds" ]; }; then
        continue
      fi
      status=0
    fi
    break
  done
  rm -f "$log.part"
  local rate=0 cov
  [ $((SECONDS - start)) -gt 0 ] && rate=$((execs / (SECONDS - start)))
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  echo "$status" >"$out/logs/$t.status"
  if [ "$status" -eq 0 ]; then
    printf '%-8s ok       %10s execs  %6s exec/s  cov %-6s corpus %-5s %4ds\n' "$t" "$execs" \
      "$rate" "${cov:-?}" "$(ls "$corpus" | wc -l)" $((SECONDS - start))
    return 0
  fi
  printf '%-8s FINDING  (exit %d after %ds; log build-fuzz/logs/%s.log)\n' "$t" "$status" \
    $((SECONDS - start)) "$t"
  { grep -E '(^==[0-9]+== ?ERROR|^SUMMARY|^ALARM|^fuzz property failed|^terminate called|^  what\(\)|runtime error:)' \
    "$log" || true; } | head -8 | sed 's/^/    /'
  sed -n 's/.*Test unit written to /    reproducer: /p' "$log"
  echo "    reproduce: build-fuzz/fuzz/${t}_fuzzer FILE   (see docs/fuzzing.md)"
  return 1
}

echo "== fuzz: ${targets[*]} ($([ -n "$runs" ] && echo "$runs runs" || echo "${seconds}s") each) =="
failed=0
if [ "$jobs" -le 1 ]; then
  for t in "${targets[@]}"; do run_target "$t" || failed=1; done
else
  # At most $jobs targets at a time; each leaves its exit status in build-fuzz/logs/.
  for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    rm -f "$out/logs/$t.status"
    run_target "$t" &
  done
  wait
  for t in "${targets[@]}"; do
    [ "$(cat "$out/logs/$t.status" 2>/dev/null)" = 0 ] || failed=1
  done
fi
if [ "$failed" -ne 0 ]; then
  echo "error: the fuzzers found a problem; make each reproducer a test (docs/fuzzing.md)" >&2
  exit 1
fi
