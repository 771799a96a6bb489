// explain attention (explain_attention.h).
#include "compiler/explain_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "compiler/frontend/yaml_model.h"
#include "ir/diagnostics.h"

namespace tpusim {
namespace {

const AttentionKernel& attention_kernel(const CompileResult& compiled) {
  for (const Kernel& k : compiled.kernels.kernels) {
    if (const auto* a = std::get_if<AttentionKernel>(&k)) return *a;
  }
  throw Error({"explain attention", 0, 0, ""}, "internal error: the model has no attention kernel");
}

char tile_letter(TileClass c) {
  switch (c) {
    case TileClass::Empty: return '.';
    case TileClass::Partial: return 'p';
    case TileClass::Full: return 'F';
  }
  return '?';
}

}  // namespace

std::string attention_model_yaml(const AttentionSpec& spec, uint64_t seed) {
  std::string attrs = fmt::format("name: attn, heads: {}", spec.heads);
  if (spec.causal) attrs += ", causal: true";
  if (spec.window > 0) attrs += fmt::format(", window: {}", spec.window);
  return fmt::format("name: explain_attention\ntype: bf16\nseed: {}\ninputs:\n  x: {{shape: [1, {}, {}]}}\nlayers:\n"
                     "  - attention: {{{}}}\noutputs: [attn]\n",
                     seed, spec.seq, spec.heads * spec.head_dim, attrs);
}

std::string explain_attention(const AttentionSpec& spec, const ArchConfig& arch, uint64_t seed) {
  const auto check = [](bool ok, const char* flag, const std::string& what) {
    if (!ok) throw Error({flag, 0, 0, ""}, what);
  };
  check(spec.seq >= 1 && spec.seq <= 4096, "--seq", "--seq takes 1 to 4096 tokens");
  check(spec.heads >= 1 && spec.heads <= 64, "--heads", "--heads takes 1 to 64");
  check(spec.head_dim >= 1 && spec.head_dim <= 512, "--head-dim", "--head-dim takes 1 to 512");
  check(spec.window >= 0, "--window", "--window takes a number of keys >= 1 (0: no window)");
  const Graph graph = parse_model_yaml(attention_model_yaml(spec, seed), "explain attention");
  CompileOptions flash_options, materialized_options;
  flash_options.lowering.attention = AttentionLowering::Flash;
  materialized_options.lowering.attention = AttentionLowering::Materialized;
  const ModelRun flash = run_model_seeded(graph, arch, flash_options, seed);
  const AttentionKernel& k = attention_kernel(flash.compiled);
  const AttentionTiling& t = k.tiling;
  std::string out;
  out += fmt::format("Self-attention over {} tokens, {}, head dim {}{}{}, on {} ({}x{} {}, {}):\n", k.seq_q,
                     k.heads_text(), k.head_dim, k.causal ? ", causal" : "",
                     k.window > 0 ? fmt::format(", window {}", k.window) : "", arch.name, arch.mxu.rows, arch.mxu.cols,
                     dataflow_name(arch.mxu.dataflow), dtype_name(arch.mxu.operand_type));
  out += fmt::format("  per head: scores S = q . k^T ({} x {}), P = softmax(S) row by row, out = P . v ({} x {})\n\n",
                     k.seq_q, k.seq_k, k.seq_q, k.value_dim);

  // The mask, entry by entry, when it fits on a screen.
  if (k.seq_q <= 48 && k.seq_k <= 96) {
    out += "The mask (row i: query i; column j: key j; # visible, . masked):\n";
    for (int64_t i = 0; i < k.seq_q; ++i) {
      const auto [lo, hi] = k.visible_keys(i, 0, k.seq_k - 1);
      std::string row;
      for (int64_t j = 0; j < k.seq_k; ++j) row += (j >= lo && j <= hi) ? '#' : '.';
      out += fmt::format("  {:>3} {}\n", i, row);
    }
    out += "\n";
  }

  // The score tiles.
  out += fmt::format("Score tiles of {} queries x {} keys (the compiler's blocks: {} x {} per head): F full, p partial "
                     "(computed, then masked), . empty (skipped: no DMA, MXU or VPU work)\n",
                     t.q_block, t.k_block, t.q_blocks, t.k_blocks);
  for (int64_t qb = 0; qb < t.q_blocks; ++qb) {
    std::string row;
    const int64_t i0 = qb * t.q_block, rows = std::min(t.q_block, k.seq_q - i0);
    for (int64_t kb = 0; kb < t.k_blocks; ++kb) {
      const int64_t j0 = kb * t.k_block, cols = std::min(t.k_block, k.seq_k - j0);
      row += tile_letter(k.classify(i0, rows, j0, cols));
      row += ' ';
    }
    out += fmt::format("  queries {:>4}..{:<4} {}\n", i0, i0 + rows - 1, row);
  }
  out += fmt::format("  per head: {} full, {} partial, {} empty of {} tiles; {}\n\n", t.full, t.partial, t.empty, t.tiles(),
                     t.why);
  out += "The order flash visits them (per head; query blocks in turn, each one's key tiles left to right, empty ones "
         "skipped):\n";
  int64_t order = 0;
  for (int64_t qb = 0; qb < t.q_blocks; ++qb) {
    std::string row;
    const int64_t i0 = qb * t.q_block, rows = std::min(t.q_block, k.seq_q - i0);
    for (int64_t kb = 0; kb < t.k_blocks; ++kb) {
      const int64_t j0 = kb * t.k_block, cols = std::min(t.k_block, k.seq_k - j0);
      const bool empty = k.classify(i0, rows, j0, cols) == TileClass::Empty;
      row += empty ? fmt::format("{:>4}", "-") : fmt::format("{:>4}", ++order);
    }
    out += fmt::format("  queries {:>4}..{:<4}{}\n", i0, i0 + rows - 1, row);
  }
  out += "\n";

  // The flash order with the running max and sum of one query row, from the run's own input.
  const int x_index = flash.compiled.graph.find_value("x");
  const Value& x = flash.compiled.graph.values[static_cast<size_t>(x_index)];
  const HostTensor& data = *flash.inputs[static_cast<size_t>(x_index)];
  const int64_t width = x.shape.back();
  auto element = [&](int64_t token, int64_t c) {
    const size_t at = static_cast<size_t>(token * width + c) * 2;
    return static_cast<double>(bf16_to_float(static_cast<uint16_t>(data.bytes[at] | (data.bytes[at + 1] << 8))));
  };
  const int64_t query = k.seq_q - 1;  // the last query sees the most keys under a causal mask
  const int64_t last_block = query / t.q_block;
  out += fmt::format("The flash lowering visits, per head and per block of queries, the key tiles that are not empty, "
                     "in order; a query row keeps a running max m and sum l of exp(s - m), and its partial output is "
                     "rescaled by exp(m_old - m) whenever m grows. For query {} of head 0 (its block {}), computed in "
                     "double from the run's input:\n",
                     query, last_block);
  double m = -std::numeric_limits<double>::infinity(), l = 0;
  int64_t visit = 0;
  for (int64_t kb = 0; kb < t.k_blocks; ++kb) {
    const int64_t j0 = kb * t.k_block, cols = std::min(t.k_block, k.seq_k - j0);
    const int64_t i0 = last_block * t.q_block;
    const TileClass c = k.classify(i0, std::min(t.q_block, k.seq_q - i0), j0, cols);
    if (c == TileClass::Empty) {
      out += fmt::format("  key tile {} (keys {}..{}): empty, skipped\n", kb, j0, j0 + cols - 1);
      continue;
    }
    const auto [lo, hi] = k.visible_keys(query, j0, j0 + cols - 1);
    double tile_max = -std::numeric_limits<double>::infinity();
    std::vector<double> scores;
    for (int64_t j = lo; j <= hi; ++j) {
      double s = 0;
      for (int64_t d = 0; d < k.head_dim; ++d) s += element(query, d) * element(j, d);
      scores.push_back(s * k.scale);
      tile_max = std::max(tile_max, s * k.scale);
    }
    const double m_new = std::max(m, tile_max);
    double l_new = std::isinf(m) ? 0 : l * std::exp(m - m_new);
    for (double s : scores) l_new += std::exp(s - m_new);
    out += fmt::format("  visit {}: key tile {} (keys {}..{}, {}): {} keys visible to this row, m {} -> {:.4g}, l {:.4g} "
                       "-> {:.4g}\n",
                       ++visit, kb, j0, j0 + cols - 1, c == TileClass::Full ? "full" : "partial", scores.size(),
                       std::isinf(m) ? std::string("-inf") : fmt::format("{:.4g}", m), m_new, l, l_new);
    m = m_new;
    l = l_new;
  }
  out += "\n";

  // Keys and values.
  if (t.kv_resident) {
    out += fmt::format("Keys and values: each key/value tile is loaded once per head into the weight buffer, in a ring "
                       "of {} slots, and stays while blocks of queries still need it:\n",
                       t.kv_ring);
    for (size_t j = 0; j < t.last_block.size() && j < 16; ++j) {
      out += fmt::format("  key tile {}: last used by query block {}\n", j, t.last_block[j]);
    }
  } else {
    out += "Keys and values: the weight buffer cannot keep them, so each key/value tile is loaded for every block of "
           "queries that uses it.\n";
  }

  // Both lowerings, compiled and run.
  const ModelRun materialized = run_model_seeded(graph, arch, materialized_options, seed);
  out += "\nBoth lowerings of the same layer, compiled and simulated:\n";
  out += fmt::format("  {:<14} {:>9} {:>11} {:>11} {:>11} {:>9}\n", "--attention", "cycles", "DRAM read", "DRAM write",
                     "ub read", "MXU busy");
  const std::pair<const char*, const ModelRun*> runs[] = {{"flash", &flash}, {"materialized", &materialized}};
  for (const auto& [name, run] : runs) {
    const Figures& f = run->report.totals;
    out += fmt::format("  {:<14} {:>9} {:>11} {:>11} {:>11} {:>9}\n", name, f.cycles, f.traffic.dram_read,
                       f.traffic.dram_written, f.traffic.buffer_read[static_cast<size_t>(Buffer::Unified)], f.mxu_busy);
  }
  const AttentionTiling& mt = attention_kernel(materialized.compiled).tiling;
  out += fmt::format("  (materialized: the whole {} x {} score matrix per head {}; flash: one score tile at a time)\n",
                     k.seq_q, k.seq_k, mt.scores_on_chip ? "stays in the unified buffer" : "goes through DRAM");
  return out;
}

}  // namespace tpusim
