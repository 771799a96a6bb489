// The report as CSV: SCALE-Sim's three report files, column for column, so the two tools'
// figures sit side by side in one spreadsheet, and tpusim's own per-layer file. How each
// SCALE-Sim column is filled from tpusim's counters is in docs/report.md.
#include <fmt/format.h>

#include "simulator/report.h"

namespace tpusim {
namespace {

// SCALE-Sim's lines: "0, 1, 2,\n" (a comma and a space between fields, a comma at the end).
std::string scalesim_line(size_t layer, const std::vector<std::string>& items) {
  std::string line = std::to_string(layer) + ", ";
  for (size_t i = 0; i < items.size(); ++i) line += (i ? ", " : "") + items[i];
  return line + ",\n";
}

std::string number(double x) { return fmt::format("{:.4f}", x); }

// A field for a plain CSV: quoted when it holds a comma, a quote or a line break.
std::string field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> report_csv_files(const RunReport& r) {
  const double word = dtype_size(r.arch.mxu.operand_type);
  const double acc_word = dtype_size(accumulator_type(r.arch.mxu.operand_type));
  std::string compute = "LayerID, Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, Compute Util %,\n";
  std::string bandwidth =
      "LayerID, Avg IFMAP SRAM BW, Avg FILTER SRAM BW, Avg OFMAP SRAM BW, Avg IFMAP DRAM BW, Avg FILTER DRAM BW, "
      "Avg OFMAP DRAM BW,\n";
  std::string detailed =
      "LayerID, SRAM IFMAP Start Cycle, SRAM IFMAP Stop Cycle, SRAM IFMAP Reads, SRAM Filter Start Cycle, SRAM Filter "
      "Stop Cycle, SRAM Filter Reads, SRAM OFMAP Start Cycle, SRAM OFMAP Stop Cycle, SRAM OFMAP Writes, DRAM IFMAP "
      "Start Cycle, DRAM IFMAP Stop Cycle, DRAM IFMAP Reads, DRAM Filter Start Cycle, DRAM Filter Stop Cycle, DRAM "
      "Filter Reads, DRAM OFMAP Start Cycle, DRAM OFMAP Stop Cycle, DRAM OFMAP Writes,\n";
  std::string layers =
      "layer_id,label,op,cycles,span_cycles,first_cycle,last_cycle,useful_macs,mapped_macs,utilization,"
      "mapping_efficiency,compute_utilization,mxu_busy_cycles,vpu_busy_cycles,dma_busy_cycles,dram_weights_read,"
      "dram_activations_read,dram_activations_written,ops_per_dram_byte,ops_per_cycle,bound\n";
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const LayerReport& l = r.layers[i];
    const Figures& f = l.figures;
    const double span = static_cast<double>(std::max<int64_t>(f.span, 1));
    const int64_t ub = static_cast<int>(Buffer::Unified), wb = static_cast<int>(Buffer::Weight),
                  acc = static_cast<int>(Buffer::Accumulator);
    const double ifmap_sram = static_cast<double>(f.traffic.buffer_read[ub]) / word;
    const double filter_sram = static_cast<double>(f.traffic.buffer_read[wb]) / word;
    const double ofmap_sram = static_cast<double>(f.traffic.buffer_written[acc]) / acc_word;
    const double ifmap_dram = static_cast<double>(f.dram_activation_read) / word;
    const double filter_dram = static_cast<double>(f.dram_weight_bytes) / word;
    const double ofmap_dram = static_cast<double>(f.dram_activation_written) / word;
    compute += scalesim_line(i, {std::to_string(f.span), std::to_string(std::max<int64_t>(f.span - f.mxu_busy, 0)),
                                 number(100 * f.utilization), number(100 * f.mapping_efficiency),
                                 number(100 * f.compute_utilization)});
    bandwidth += scalesim_line(i, {number(ifmap_sram / span), number(filter_sram / span), number(ofmap_sram / span),
                                   number(ifmap_dram / span), number(filter_dram / span), number(ofmap_dram / span)});
    std::vector<std::string> access;
    for (double words : {ifmap_sram, filter_sram, ofmap_sram, ifmap_dram, filter_dram, ofmap_dram}) {
      access.push_back(std::to_string(f.first_cycle));
      access.push_back(std::to_string(f.last_cycle));
      access.push_back(fmt::format("{:g}", words));
    }
    detailed += scalesim_line(i, access);
    auto busy = [&](Unit u) { return f.unit_cycles[static_cast<int>(u)][static_cast<int>(CycleCause::Busy)]; };
    layers += fmt::format("{},{},{},{},{},{},{},{},{},{:.6f},{:.6f},{:.6f},{},{},{},{},{},{},{:.6f},{:.6f},{}\n", i,
                          field(l.info.label), field(l.info.op_kind), f.cycles, f.span, f.first_cycle, f.last_cycle,
                          f.useful_macs, f.mapped_macs, f.utilization, f.mapping_efficiency, f.compute_utilization,
                          busy(Unit::Mxu), busy(Unit::Vpu), busy(Unit::Dma), f.dram_weight_bytes,
                          f.dram_activation_read, f.dram_activation_written, f.ops_per_dram_byte, f.ops_per_cycle,
                          bound_name(l.diagnosis.bound));
  }
  return {{"COMPUTE_REPORT.csv", compute},
          {"BANDWIDTH_REPORT.csv", bandwidth},
          {"DETAILED_ACCESS_REPORT.csv", detailed},
          {"layers.csv", layers}};
}

}  // namespace tpusim
