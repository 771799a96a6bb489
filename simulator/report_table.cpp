// The report as a text table (`tpusim run`'s default output).
#include <fmt/format.h>

#include "simulator/report.h"

namespace tpusim {
namespace {

std::string percent(int64_t part, int64_t whole) {
  if (whole <= 0) return "-";
  return fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

std::string dram_split(const Figures& f) {
  return fmt::format("{} weights + {} activations read, {} written", f.dram_weight_bytes, f.dram_activation_read,
                     f.dram_activation_written);
}

}  // namespace

std::string report_text(const RunReport& r, const std::string& sort) {
  const Figures& t = r.totals;
  const ArchConfig& arch = r.arch;
  const int64_t total = t.cycles;
  const int64_t pes = arch.mxu.rows * arch.mxu.cols;
  std::string out;
  out += fmt::format("tpusim report: {} on {} ({}x{} {} {}, {} MHz), fidelity {}\n", r.program, arch.name,
                     arch.mxu.rows, arch.mxu.cols, dataflow_name(arch.mxu.dataflow), dtype_name(arch.mxu.operand_type),
                     arch.mxu.clock_mhz, r.fidelity);
  out += fmt::format("  total cycles          {} ({:.3f} us)\n", total, static_cast<double>(total) / arch.mxu.clock_mhz);
  out += fmt::format("  MACs useful / mapped  {} / {} (ops = 2 x MACs = {})\n", t.useful_macs, t.mapped_macs,
                     2 * t.useful_macs);
  out += fmt::format("  utilization           {:>6.2f}%  useful MACs / ({} PEs x {} cycles): the share of the array's "
                     "peak the run achieved\n",
                     100 * t.utilization, pes, total);
  out += fmt::format("  mapping efficiency    {:>6.2f}%  useful MACs / mapped MACs: the share of the PEs in the issued "
                     "tiles that held real data\n",
                     100 * t.mapping_efficiency);
  out += fmt::format("  compute utilization   {:>6.2f}%  useful MACs / ({} PEs x {} MXU-busy cycles): utilization "
                     "while the array was busy\n",
                     100 * t.compute_utilization, pes, t.mxu_busy);
  out += fmt::format("  achieved              {:.2f} ops/cycle of {:g} peak = {:.4f} TOPS; {:.2f} ops per DRAM byte\n",
                     t.ops_per_cycle, r.peak_ops_per_cycle, t.tops, t.ops_per_dram_byte);
  if (!r.diagnosis.text.empty()) out += fmt::format("  bound                 {}\n", r.diagnosis.text);

  out += "\n  cycles by unit and cause (each row sums to the total)\n";
  out += fmt::format("  {:<5}", "unit");
  for (int c = 0; c < kCycleCauseCount; ++c) out += fmt::format(" {:>19}", cycle_cause_name(static_cast<CycleCause>(c)));
  out += "\n";
  for (int u = 0; u < kUnitCount; ++u) {
    out += fmt::format("  {:<5}", unit_name(static_cast<Unit>(u)));
    for (int c = 0; c < kCycleCauseCount; ++c) {
      out += fmt::format(" {:>19}", fmt::format("{} {:>6}", t.unit_cycles[u][c], percent(t.unit_cycles[u][c], total)));
    }
    out += "\n";
  }
  out += fmt::format("  mxu busy = computing {} + shifting weights {} + draining {}\n", t.mxu_activity[0],
                     t.mxu_activity[1], t.mxu_activity[2]);
  out += "\n  traffic (bytes)        read    written\n";
  for (int b = 0; b < kBufferCount; ++b) {
    out += fmt::format("  {:<12} {:>12} {:>10}\n", buffer_name(static_cast<Buffer>(b)), t.traffic.buffer_read[b],
                       t.traffic.buffer_written[b]);
  }
  out += fmt::format("  {:<12} {:>12} {:>10}   ({})\n", "dram", t.traffic.dram_read, t.traffic.dram_written,
                     dram_split(t));
  if (r.layers.empty()) return out;

  const std::vector<size_t> order = layer_order(r, sort);
  out += fmt::format("\n  per layer, {} (cycles: the run split where each layer starts, so they add up to the total; "
                     "span: its first instruction's issue to its last one's completion; util and map eff over the span)\n",
                     sort == "cycles" ? "slowest first" : "in the order they started");
  out += fmt::format("  {:<24} {:<14} {:>10} {:>6} {:>10} {:>7} {:>8} {:>10} {:>12}  {}\n", "layer", "op", "cycles",
                     "share", "span", "util", "map eff", "mxu busy", "dram bytes", "bound");
  for (size_t i : order) {
    const LayerReport& l = r.layers[i];
    const Figures& f = l.figures;
    out += fmt::format("  {:<24} {:<14} {:>10} {:>6} {:>10} {:>6.2f}% {:>7.2f}% {:>10} {:>12}  {}\n", l.info.label,
                       l.info.op_kind.empty() ? "-" : l.info.op_kind, f.cycles, percent(f.cycles, total), f.span,
                       100 * f.utilization, 100 * f.mapping_efficiency, f.mxu_busy, f.dram_bytes,
                       bound_name(l.diagnosis.bound));
  }
  // Where each layer's cycles went, unit by unit, in the unit table's order.
  out += "\n  per layer: cycles by unit and cause (busy / waiting on dma / on tokens / on weights / bank conflict)\n";
  out += fmt::format("  {:<24}", "layer");
  for (int u = 0; u < kUnitCount; ++u) out += fmt::format(" {:>34}", unit_name(static_cast<Unit>(u)));
  out += "\n";
  for (size_t i : order) {
    const LayerReport& l = r.layers[i];
    out += fmt::format("  {:<24}", l.info.label);
    for (int u = 0; u < kUnitCount; ++u) {
      const auto& c = l.figures.unit_cycles[u];
      out += fmt::format(" {:>34}", fmt::format("{}/{}/{}/{}/{}", c[0], c[1], c[2], c[3], c[4]));
    }
    out += "\n";
  }
  out += "\n  per layer: what bounds it\n";
  for (size_t i : order) {
    const LayerReport& l = r.layers[i];
    out += fmt::format("  {:<24} {}\n", l.info.label, l.diagnosis.text.empty() ? "-" : l.diagnosis.text);
    if (!l.info.op_text.empty()) out += fmt::format("  {:<24} op: {}\n", "", l.info.op_text);
  }
  return out;
}

}  // namespace tpusim
