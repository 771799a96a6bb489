// The report as JSON, schema_version 2 (every field: docs/report.md).
#include <nlohmann/json.hpp>

#include "simulator/report.h"

namespace tpusim {
namespace {

nlohmann::ordered_json figures_json(const Figures& f) {
  nlohmann::ordered_json j;
  j["cycles"] = f.cycles;
  j["span_cycles"] = f.span;
  j["first_cycle"] = f.first_cycle;
  j["last_cycle"] = f.last_cycle;
  j["instructions"] = f.instructions;
  nlohmann::ordered_json units;
  for (int u = 0; u < kUnitCount; ++u) {
    nlohmann::ordered_json causes;
    for (int c = 0; c < kCycleCauseCount; ++c) {
      causes[std::string(cycle_cause_name(static_cast<CycleCause>(c)))] = f.unit_cycles[u][c];
    }
    units[std::string(unit_name(static_cast<Unit>(u)))] = causes;
  }
  j["unit_cycles"] = units;
  j["mxu_busy"] = {{"computing", f.mxu_activity[0]}, {"shifting_weights", f.mxu_activity[1]},
                   {"draining", f.mxu_activity[2]}};
  j["macs"] = {{"useful", f.useful_macs}, {"mapped", f.mapped_macs}};
  nlohmann::ordered_json bytes;
  for (int b = 0; b < kBufferCount; ++b) {
    bytes[std::string(buffer_name(static_cast<Buffer>(b)))] = {{"read", f.traffic.buffer_read[b]},
                                                               {"written", f.traffic.buffer_written[b]}};
  }
  bytes["dram"] = {{"read", f.traffic.dram_read},
                   {"written", f.traffic.dram_written},
                   {"weights_read", f.dram_weight_bytes},
                   {"activations_read", f.dram_activation_read},
                   {"activations_written", f.dram_activation_written}};
  j["bytes"] = bytes;
  j["utilization"] = f.utilization;
  j["mapping_efficiency"] = f.mapping_efficiency;
  j["compute_utilization"] = f.compute_utilization;
  j["ops_per_cycle"] = f.ops_per_cycle;
  j["tops"] = f.tops;
  j["ops_per_dram_byte"] = f.ops_per_dram_byte;
  j["roofline"] = {{"ops_per_dram_byte", f.ops_per_dram_byte}, {"ops_per_cycle", f.ops_per_cycle}};
  return j;
}

nlohmann::ordered_json diagnosis_json(const Diagnosis& d) {
  return {{"bound", std::string(bound_name(d.bound))}, {"text", d.text}};
}

}  // namespace

std::string report_json(const RunReport& r) {
  nlohmann::ordered_json j;
  j["schema_version"] = kReportSchemaVersion;
  j["program"] = r.program;
  const ArchConfig& a = r.arch;
  j["arch"] = {{"name", a.name},
               {"rows", a.mxu.rows},
               {"cols", a.mxu.cols},
               {"dataflow", std::string(dataflow_name(a.mxu.dataflow))},
               {"operand_type", std::string(dtype_name(a.mxu.operand_type))},
               {"clock_mhz", a.mxu.clock_mhz},
               {"peak_ops_per_cycle", r.peak_ops_per_cycle},
               {"dram_bytes_per_cycle", a.dram.bytes_per_cycle}};
  j["fidelity"] = r.fidelity;
  j["total_cycles"] = r.totals.cycles;
  j["graph_macs"] = r.graph_macs;
  nlohmann::ordered_json totals = figures_json(r.totals);
  totals["diagnosis"] = diagnosis_json(r.diagnosis);
  j["totals"] = totals;
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const LayerReport& l : r.layers) {
    nlohmann::ordered_json layer;
    layer["label"] = l.info.label;
    layer["op"] = l.info.op_kind;
    layer["op_text"] = l.info.op_text;
    layer["graph_macs"] = l.info.graph_macs;
    if (l.info.rows_used > 0) {
      layer["gemm"] = {{"K", l.info.gemm_k}, {"N", l.info.gemm_n}, {"rows_used", l.info.rows_used},
                       {"cols_used", l.info.cols_used}};
    }
    layer.update(figures_json(l.figures));
    layer["diagnosis"] = diagnosis_json(l.diagnosis);
    layer["compiler_choices"] = l.info.choices;
    layers.push_back(layer);
  }
  j["layers"] = layers;
  nlohmann::ordered_json counters = nlohmann::ordered_json::array();
  for (const auto& c : r.counters) {
    counters.push_back({{"name", c.name}, {"unit", c.unit}, {"value", c.value}, {"description", c.description}});
  }
  j["counters"] = counters;
  return j.dump(2) + "\n";
}

}  // namespace tpusim
