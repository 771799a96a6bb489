#include "simulator/report.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tpusim {

DerivedFigures derive_figures(const ArchConfig& arch, const LabelStats& stats, int64_t span_cycles) {
  DerivedFigures d;
  const double pes = static_cast<double>(arch.mxu.rows * arch.mxu.cols);
  d.span_cycles = span_cycles;
  d.mxu_busy_cycles = stats.cycles[static_cast<int>(Unit::Mxu)][static_cast<int>(CycleCause::Busy)];
  d.dram_bytes = stats.traffic.dram_read + stats.traffic.dram_written;
  const double useful = static_cast<double>(stats.useful_macs);
  if (span_cycles > 0) {
    d.utilization = useful / (pes * static_cast<double>(span_cycles));
    d.ops_per_cycle = 2 * useful / static_cast<double>(span_cycles);
  }
  if (stats.mapped_macs > 0) d.mapping_efficiency = useful / static_cast<double>(stats.mapped_macs);
  if (d.mxu_busy_cycles > 0) d.compute_utilization = useful / (pes * static_cast<double>(d.mxu_busy_cycles));
  d.tops = d.ops_per_cycle * arch.mxu.clock_mhz * 1e6 / 1e12;
  if (d.dram_bytes > 0) d.ops_per_dram_byte = 2 * useful / static_cast<double>(d.dram_bytes);
  return d;
}

namespace {

std::string_view fidelity_name(Fidelity f) { return f == Fidelity::Pe ? "pe" : "fast"; }

std::string percent(int64_t part, int64_t whole) {
  if (whole <= 0) return "-";
  return fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

int64_t span_of(const LabelStats& s) { return s.first_cycle < 0 ? 0 : s.last_cycle - s.first_cycle + 1; }

// Labels with instructions, in the order they started (ties: first seen).
std::vector<size_t> label_order(const SimulationResult& result) {
  std::vector<size_t> order;
  for (size_t i = 0; i < result.labels.size(); ++i) {
    if (result.per_label[i].instructions > 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return result.per_label[a].first_cycle < result.per_label[b].first_cycle;
  });
  return order;
}

}  // namespace

std::string report_text(const std::string& program_name, const ArchConfig& arch,
                        const SimulationResult& result, Fidelity fidelity) {
  const LabelStats& t = result.totals;
  const int64_t total = result.total_cycles;
  DerivedFigures d = derive_figures(arch, t, total);
  std::string out;
  out += fmt::format("tpusim report: {} on {} ({}x{} {} {}, {} MHz), fidelity {}\n", program_name, arch.name,
                     arch.mxu.rows, arch.mxu.cols, dataflow_name(arch.mxu.dataflow),
                     dtype_name(arch.mxu.operand_type), arch.mxu.clock_mhz, fidelity_name(fidelity));
  out += fmt::format("  total cycles          {} ({:.3f} us)\n", total, static_cast<double>(total) / arch.mxu.clock_mhz);
  out += fmt::format("  MACs useful / mapped  {} / {} (ops = 2 x MACs = {})\n", t.useful_macs, t.mapped_macs, 2 * t.useful_macs);
  out += fmt::format("  utilization           {:.2f}%   mapping efficiency {:.2f}%   compute utilization {:.2f}%\n",
                     100 * d.utilization, 100 * d.mapping_efficiency, 100 * d.compute_utilization);
  out += fmt::format("  achieved              {:.2f} ops/cycle = {:.4f} TOPS; {:.2f} ops per DRAM byte\n",
                     d.ops_per_cycle, d.tops, d.ops_per_dram_byte);
  out += "\n  cycles by unit and cause (each row sums to the total)\n";
  out += fmt::format("  {:<5}", "unit");
  for (int c = 0; c < kCycleCauseCount; ++c) out += fmt::format(" {:>19}", cycle_cause_name(static_cast<CycleCause>(c)));
  out += "\n";
  for (int u = 0; u < kUnitCount; ++u) {
    out += fmt::format("  {:<5}", unit_name(static_cast<Unit>(u)));
    for (int c = 0; c < kCycleCauseCount; ++c) {
      out += fmt::format(" {:>19}", fmt::format("{} {:>6}", t.cycles[u][c], percent(t.cycles[u][c], total)));
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
  out += fmt::format("  {:<12} {:>12} {:>10}\n", "dram", t.traffic.dram_read, t.traffic.dram_written);
  if (result.labels.size() > 1 || !result.per_label.empty()) {
    out += "\n  per label\n";
    out += fmt::format("  {:<24} {:>10} {:>10} {:>12} {:>8} {:>8} {:>12} {:>12}\n", "label", "span", "mxu busy",
                       "useful MACs", "util", "map eff", "dram bytes", "sram bytes");
    for (size_t i : label_order(result)) {
      const LabelStats& s = result.per_label[i];
      DerivedFigures ld = derive_figures(arch, s, span_of(s));
      int64_t sram = 0;
      for (int b = 0; b < kBufferCount; ++b) sram += s.traffic.buffer_read[b] + s.traffic.buffer_written[b];
      out += fmt::format("  {:<24} {:>10} {:>10} {:>12} {:>7.2f}% {:>7.2f}% {:>12} {:>12}\n",
                         result.labels[i].empty() ? "(unlabelled)" : result.labels[i], span_of(s), ld.mxu_busy_cycles,
                         s.useful_macs, 100 * ld.utilization, 100 * ld.mapping_efficiency, ld.dram_bytes, sram);
    }
    // Where each op's cycles went, unit by unit (cycles charged to the op's instructions).
    out += "\n  per label: cycles by unit and cause (busy / waiting on dma / on tokens / on weights / bank conflict)\n";
    out += fmt::format("  {:<24} {:>34} {:>34} {:>34}\n", "label", "mxu", "vpu", "dma");
    for (size_t i : label_order(result)) {
      const LabelStats& s = result.per_label[i];
      auto causes = [&](Unit u) {
        const auto& c = s.cycles[static_cast<int>(u)];
        return fmt::format("{}/{}/{}/{}/{}", c[0], c[1], c[2], c[3], c[4]);
      };
      out += fmt::format("  {:<24} {:>34} {:>34} {:>34}\n", result.labels[i].empty() ? "(unlabelled)" : result.labels[i],
                         causes(Unit::Mxu), causes(Unit::Vpu), causes(Unit::Dma));
    }
  }
  return out;
}

namespace {

nlohmann::ordered_json stats_json(const ArchConfig& arch, const LabelStats& s, int64_t span) {
  nlohmann::ordered_json j;
  DerivedFigures d = derive_figures(arch, s, span);
  j["span_cycles"] = span;
  j["first_cycle"] = s.first_cycle;
  j["last_cycle"] = s.last_cycle;
  j["instructions"] = s.instructions;
  nlohmann::ordered_json units;
  for (int u = 0; u < kUnitCount; ++u) {
    nlohmann::ordered_json causes;
    for (int c = 0; c < kCycleCauseCount; ++c) causes[std::string(cycle_cause_name(static_cast<CycleCause>(c)))] = s.cycles[u][c];
    units[std::string(unit_name(static_cast<Unit>(u)))] = causes;
  }
  j["cycles"] = units;
  j["mxu_busy"] = {{"computing", s.mxu_activity[0]}, {"shifting_weights", s.mxu_activity[1]}, {"draining", s.mxu_activity[2]}};
  j["macs"] = {{"useful", s.useful_macs}, {"mapped", s.mapped_macs}};
  nlohmann::ordered_json traffic;
  for (int b = 0; b < kBufferCount; ++b) {
    traffic[std::string(buffer_name(static_cast<Buffer>(b)))] = {{"read", s.traffic.buffer_read[b]}, {"written", s.traffic.buffer_written[b]}};
  }
  traffic["dram"] = {{"read", s.traffic.dram_read}, {"written", s.traffic.dram_written}};
  j["bytes"] = traffic;
  j["utilization"] = d.utilization;
  j["mapping_efficiency"] = d.mapping_efficiency;
  j["compute_utilization"] = d.compute_utilization;
  j["ops_per_cycle"] = d.ops_per_cycle;
  j["tops"] = d.tops;
  j["ops_per_dram_byte"] = d.ops_per_dram_byte;
  return j;
}

}  // namespace

std::string report_json(const std::string& program_name, const ArchConfig& arch,
                        const SimulationResult& result, Fidelity fidelity) {
  nlohmann::ordered_json j;
  j["schema_version"] = kReportSchemaVersion;
  j["program"] = program_name;
  j["arch"] = {{"name", arch.name}, {"rows", arch.mxu.rows}, {"cols", arch.mxu.cols},
               {"dataflow", std::string(dataflow_name(arch.mxu.dataflow))},
               {"operand_type", std::string(dtype_name(arch.mxu.operand_type))}, {"clock_mhz", arch.mxu.clock_mhz}};
  j["fidelity"] = std::string(fidelity_name(fidelity));
  j["total_cycles"] = result.total_cycles;
  j["totals"] = stats_json(arch, result.totals, result.total_cycles);
  nlohmann::ordered_json labels = nlohmann::ordered_json::array();
  for (size_t i : label_order(result)) {
    const LabelStats& s = result.per_label[i];
    nlohmann::ordered_json l = stats_json(arch, s, span_of(s));
    l["label"] = result.labels[i];
    labels.push_back(l);
  }
  j["labels"] = labels;
  nlohmann::ordered_json counters = nlohmann::ordered_json::array();
  for (const auto& c : result.counters.all()) {
    counters.push_back({{"name", c.name}, {"unit", c.unit}, {"value", c.value}, {"description", c.description}});
  }
  j["counters"] = counters;
  return j.dump(2) + "\n";
}

}  // namespace tpusim
