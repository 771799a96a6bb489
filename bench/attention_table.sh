#!/usr/bin/env bash
# The table of docs/attention.md: the GPT-2 block (examples/models/gpt2-block.yaml) on
# tpu-v4-like with both attention lowerings and three masks (none, causal, a causal window of
# 256), reading the attention op's row of each report.
#
#   bash bench/attention_table.sh [path/to/tpusim]     (default: build/tpusim)
#
# Prints a Markdown table. Simulated cycles and bytes are deterministic, so the table is the
# same on every machine.
set -euo pipefail
cd "$(dirname "$0")/.."
tpusim=${1:-build/tpusim}
model=examples/models/gpt2-block.yaml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The block with another mask on its attention layer.
variant() {  # name, attention attributes
  sed "s/heads: 12, causal: true}/$2}/" "$model" > "$work/$1.yaml"
  grep -q "$2" "$work/$1.yaml"
}
variant full "heads: 12"
variant causal "heads: 12, causal: true"
variant window "heads: 12, causal: true, window: 256"

echo "| mask | lowering | score tiles computed | attention cycles | MXU busy | VPU busy | attention DRAM bytes | block cycles | block DRAM bytes |"
echo "|---|---|---|---|---|---|---|---|---|"
for mask in full causal window; do
  for lowering in materialized flash; do
    report=$("$tpusim" run "$work/$mask.yaml" --arch tpu-v4-like --no-race-check --attention "$lowering")
    # Per-label row: label, op, cycles, share, span, util, map eff, mxu busy, dram bytes, bound.
    read -r span dram < <(awk '$1 == "attn" && NF == 10 { print $5, $9; exit }' <<< "$report")
    # Per-label causes row: label, then dma, mxu, vpu as busy/dma/tokens/weights/conflict.
    read -r mxu vpu < <(awk '$1 == "attn" && NF == 4 && $2 ~ /\// { split($3, m, "/"); split($4, v, "/"); print m[1], v[1]; exit }' <<< "$report")
    tiles=$(sed -n 's/.*attention, [a-z]*: score tiles [0-9x]* per head, \([0-9]*\) computed of \([0-9]*\).*/\1 of \2/p' <<< "$report")
    total=$(awk '$1 == "total" && $2 == "cycles" { print $3; exit }' <<< "$report")
    block_dram=$(awk '$1 == "dram" { print $2 + $3; exit }' <<< "$report")
    echo "| $mask | $lowering | $tiles | $span | $mxu | $vpu | $dram | $total | $block_dram |"
  done
done
