#!/usr/bin/env bash
# Times each input of tests/errors/limits/ (and the other refused cases of
# tests/errors/limits_errors_test.cpp): wall seconds and peak memory of the error, one line each.
#   bash bench/limits_regressions.sh [path/to/tpusim]
set -uo pipefail
cd "$(dirname "$0")/.."
tpusim="${1:-./build/tpusim}"
d=tests/errors/limits
cases=(
  "compile $d/only_comma.yaml --arch teach-4x4"
  "arch show $d/only_comma.yaml"
  "run $d/conv_out_channels_int64_max.yaml --arch teach-4x4"
  "run $d/conv_out_channels_2e31.yaml --arch teach-4x4"
  "run $d/linear_out_features_2e62.yaml --arch teach-4x4"
  "run $d/conv_kernel_2e62.yaml --arch teach-4x4"
  "run $d/input_shape_2e32_cubed.yaml --arch teach-4x4"
  "run $d/input_shape_2e9_cubed.graph --arch teach-4x4"
  "run $d/linear_on_1e9_by_1e9.yaml --arch teach-4x4"
  "run $d/conv_on_1e9_by_1e9.yaml --arch teach-4x4"
  "run $d/weights_100_gib.yaml --arch teach-4x4"
  "run $d/tensor_1e27.tpu --arch teach-4x4"
  "run $d/tensor_4e9.tpu --arch teach-4x4 --max-memory 1GiB"
  "run $d/repeat_2e40.tpu --arch teach-4x4"
  "run $d/repeat_address_overflow.tpu --arch teach-4x4"
  "run examples/models/bert-layer.yaml --arch teach-4x4 --set mxu.operand_type=bf16"
  "run examples/models/resnet18.yaml --arch teach-4x4"
  "run examples/models/tiny-cnn.yaml --arch teach-4x4 --seed -1"
  "arch show teach-4x4 --set unified_buffer.bytes=9223372036854775807"
)
printf '%8s %9s  %s\n' seconds "peak MB" "command (each must fail with exit code 1)"
stats=$(mktemp)
trap 'rm -f "$stats"' EXIT
for c in "${cases[@]}"; do
  # shellcheck disable=SC2086
  /usr/bin/time -o "$stats" -f '%e %M' "$tpusim" $c >/dev/null 2>&1
  code=$?
  read -r seconds kb < <(tail -1 "$stats")
  printf '%8s %9s  tpusim %s%s\n' "$seconds" "$((kb / 1024))" "$c" "$([ "$code" = 1 ] || echo "   <- exit code $code")"
done
