#!/usr/bin/env bash
# The mapping table of docs/performance.md: SCALE-Sim's own ResNet-18 topology
# (examples/scalesim/Resnet18.csv) on a weight-stationary array (tpu-v1's 256x256 by default),
# per layer: the GEMM (K = R·S·C, N = filters), SCALE-Sim's mapping efficiency by its formula
# (docs/scalesim.md: K·N / (rows·cols·ceil(K/rows)·ceil(N/cols))) and tpusim's, measured by the
# simulator (useful MACs / mapped MACs of the layer), with tpusim's K tiles and cycles.
#
#   bash bench/scalesim_mapping.sh [path/to/tpusim] [--set mxu.rows=R --set mxu.cols=C ...]
#
# Prints a Markdown table. Simulated figures are deterministic, so the table is the same on
# every machine. tests/unit/scalesim_mapping_test.cpp holds tpusim >= SCALE-Sim on every layer.
set -euo pipefail
cd "$(dirname "$0")/.."
tpusim=build/tpusim
if [[ $# -gt 0 && $1 != --* ]]; then
  tpusim=$1
  shift
fi
topology=examples/scalesim/Resnet18.csv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$tpusim" run "$topology" --arch tpu-v1 "$@" --no-race-check --report csv -o "$work" > /dev/null
"$tpusim" compile "$topology" --arch tpu-v1 "$@" --emit tiled > "$work/tiled.txt"
read -r rows cols < <("$tpusim" arch show tpu-v1 "$@" | awk '$1 == "rows:" { r = $2 } $1 == "cols:" { c = $2 } END { print r, c }')

# Each GEMM's M, K, N and K tiles from the tiled text, then each layer's row of layers.csv.
awk -v rows="$rows" -v cols="$cols" '
  function ceil(x) { return x == int(x) ? x : int(x) + 1 }
  FNR == 1 { file++ }
  file == 1 && $1 == "gemm" {
    name = $2
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "M" || kv[1] == "K" || kv[1] == "N") g[name, kv[1]] = kv[2] }
  }
  file == 1 && $1 == "tiles:" { for (i = 2; i <= NF; i++) if ($i == "k") { kt[name] = $(i + 1); break } }
  file == 2 && FNR == 1 {
    print "| layer | M | K | N | K tiles (SCALE-Sim) | K tiles (tpusim) | SCALE-Sim map eff | tpusim map eff | tpusim cycles |"
    print "|---|---|---|---|---|---|---|---|---|"
  }
  file == 2 && FNR > 1 {
    split($0, f, ",")
    name = f[2]; k = g[name, "K"]; n = g[name, "N"]
    theirs = k * n / (rows * cols * ceil(k / rows) * ceil(n / cols))
    ours = f[8] / f[9]
    if (ours < theirs * (1 - 1e-12)) worse++
    printf "| %s | %d | %d | %d | %d | %d | %.2f%% | %.2f%% | %d |\n", name, g[name, "M"], k, n, ceil(k / rows), kt[name], 100 * theirs, 100 * ours, f[4]
    layers++; total += f[4]
  }
  END { printf "\n%sx%s: %d layers, %d mapped worse than SCALE-Sim'"'"'s formula; %d cycles in all\n", rows, cols, layers, worse, total }
' "$work/tiled.txt" "$work/layers.csv"
