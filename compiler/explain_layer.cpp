// explain layer (explain_layer.h).
#include "compiler/explain_layer.h"

#include <algorithm>

#include <fmt/format.h>

#include "ir/diagnostics.h"

namespace tpusim {

LayerExplanation explain_layer(const ModelRun& run, const ArchConfig& arch, const std::string& layer,
                               const ArchConfig& small_arch, const std::string& model_file) {
  const LayerReport* found = nullptr;
  std::vector<std::string> names;
  for (const LayerReport& l : run.report.layers) {
    names.push_back(l.info.label);
    if (l.info.label == layer) found = &l;
  }
  if (found == nullptr) {
    const std::string hint = nearest_spelling(layer, names);
    std::string some;
    for (size_t i = 0; i < names.size() && i < 8; ++i) some += (i ? ", " : "") + names[i];
    throw Error({model_file, 0, 0, ""},
                fmt::format("--layer {}: no such layer in the model{}; its layers are {}{}", layer,
                            hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), some,
                            names.size() > 8 ? fmt::format(", ... ({} in all)", names.size()) : ""));
  }
  const LayerReport& l = *found;
  const Figures& f = l.figures;
  LayerExplanation out;
  std::string& t = out.text;
  t += fmt::format("Layer {} of {} on {} ({}x{} {}, {}):\n  {}\n", layer, model_file, arch.name, arch.mxu.rows,
                   arch.mxu.cols, dataflow_name(arch.mxu.dataflow), dtype_name(arch.mxu.operand_type), l.info.op_text);

  const GemmKernel* gemm = nullptr;
  for (const Kernel& k : run.compiled.kernels.kernels) {
    if (const auto* g = std::get_if<GemmKernel>(&k); g && g->name == layer) gemm = g;
  }
  if (gemm != nullptr) {
    const GemmTiling& tiling = gemm->tiling;
    t += fmt::format("\nIts GEMM: M = {} (output pixels or rows), K = {} (the reduction), N = {} (output channels){}\n",
                     gemm->M, gemm->K, gemm->N, gemm->groups > 1 ? fmt::format(", per group ({} groups)", gemm->groups) : "");
    t += fmt::format("  tiles: {} K x {} N x {} M; a weight tile fills {} of {} rows and {} of {} columns\n",
                     tiling.k_tiles(), tiling.n_tiles, tiling.m_tiles, k_box_sizes(tiling.k_boxes), arch.mxu.rows, tiling.n_tile,
                     arch.mxu.cols);
    out.first_tile = {std::min<int64_t>(tiling.m_tile, 8), std::min(tiling.k_boxes.largest(), small_arch.mxu.rows),
                      std::min(tiling.n_tile, small_arch.mxu.cols)};
  }
  t += "\nThe compiler's choices:\n";
  for (const std::string& line : l.info.choices) t += "  " + line + "\n";

  t += fmt::format("\nIts cycles: {} of the run's {} (from its start to the next layer's), span {}\n", f.cycles,
                   run.report.totals.cycles, f.span);
  const char* units[kUnitCount] = {"DMA", "MXU", "VPU"};
  for (int u = 0; u < kUnitCount; ++u) {
    std::string line = fmt::format("  {}:", units[u]);
    for (int c = 0; c < kCycleCauseCount; ++c) {
      const int64_t n = f.unit_cycles[static_cast<size_t>(u)][static_cast<size_t>(c)];
      if (n > 0 && c != static_cast<int>(CycleCause::Idle)) {
        line += fmt::format(" {} {},", cycle_cause_name(static_cast<CycleCause>(c)), n);
      }
    }
    if (line.back() == ',') line.pop_back();
    t += line + "\n";
  }
  t += fmt::format("  MXU busy: computing {}, shifting weights {}, draining {}\n", f.mxu_activity[0], f.mxu_activity[1],
                   f.mxu_activity[2]);
  t += fmt::format("  utilization {:.1f}%, mapping efficiency {:.1f}%; DRAM bytes: weights {}, activations {} read and "
                   "{} written\n",
                   100 * f.utilization, 100 * f.mapping_efficiency, f.dram_weight_bytes, f.dram_activation_read,
                   f.dram_activation_written);

  if (gemm != nullptr && l.info.rows_used > 0) {
    const int64_t R = arch.mxu.rows, C = arch.mxu.cols;
    const double filled = static_cast<double>(l.info.rows_used * l.info.cols_used) / static_cast<double>(R * C);
    t += fmt::format("\nIdle PEs: while it computes, a tile keeps {} x {} of the {} x {} PEs busy ({:.1f}%); {:.1f}% "
                     "are idle.\n",
                     l.info.rows_used, l.info.cols_used, R, C, 100 * filled, 100 * (1 - filled));
    if (l.info.rows_used < R) {
      const GemmTiling& tiling = gemm->tiling;
      if (gemm->K <= l.info.rows_used) {
        t += fmt::format("  rows: the whole reduction K = {} fills {} of {} rows; only a longer reduction (more input "
                         "channels or taps) or an array with fewer rows fills them\n",
                         gemm->K, gemm->K, R);
      } else {
        t += fmt::format("  rows: K = {} takes ceil({} / {}) = {} weight tiles, the fewest any packing allows; balanced, "
                         "each holds {} of the {} rows (consecutive k across taps and kernel rows); a reduction that is "
                         "a multiple of {} would fill them\n",
                         gemm->K, gemm->K, R, tiling.k_tiles(), k_box_sizes(tiling.k_boxes), R, R);
      }
    }
    if (l.info.cols_used < C) {
      t += fmt::format("  columns: N = {} output channels fill {} of {} columns; more output channels (or groups "
                       "side by side) or a narrower array would fill them\n",
                       gemm->N, l.info.cols_used, C);
    }
    if (l.info.rows_used == R && l.info.cols_used == C) t += "  every PE holds real weights: the tiles fill the array\n";
  }
  t += fmt::format("\nDiagnosis: {}\n", l.diagnosis.text);
  if (gemm != nullptr) {
    const GemmShape& s = out.first_tile;
    t += fmt::format("\nIts first tile on {} ({}x{}), cut to that array: M = {} of the tile's {} rows of A, K = {} of its "
                     "{}, N = {} of its {}, with small seeded values (the same as tpusim explain gemm --m {} --k {} --n {} "
                     "--arch {})\n",
                     small_arch.name, small_arch.mxu.rows, small_arch.mxu.cols, s.m, gemm->tiling.m_tile, s.k,
                     gemm->tiling.k_boxes.largest(), s.n, gemm->tiling.n_tile, s.m, s.k, s.n, small_arch.name);
  }
  return out;
}

}  // namespace tpusim
