// Reports of a simulation: a text table for people and JSON (with a schema_version) for
// tools. Derived figures are computed here and only here (docs/cycle-model.md defines them):
//   utilization         = useful MACs / (rows * cols * total cycles)
//   mapping efficiency  = useful MACs / mapped MACs
//   compute utilization = useful MACs / (rows * cols * MXU busy cycles)
//   ops = 2 * MACs; ops per DRAM byte = 2 * useful MACs / DRAM bytes moved
#pragma once

#include <string>

#include "simulator/arch.h"
#include "simulator/simulator.h"

namespace tpusim {

constexpr int kReportSchemaVersion = 1;

struct DerivedFigures {
  double utilization = 0, mapping_efficiency = 0, compute_utilization = 0;
  double ops_per_cycle = 0, tops = 0, ops_per_dram_byte = 0;
  int64_t mxu_busy_cycles = 0, dram_bytes = 0, span_cycles = 0;
};
DerivedFigures derive_figures(const ArchConfig& arch, const LabelStats& stats, int64_t span_cycles);

std::string report_text(const std::string& program_name, const ArchConfig& arch,
                        const SimulationResult& result, Fidelity fidelity);
std::string report_json(const std::string& program_name, const ArchConfig& arch,
                        const SimulationResult& result, Fidelity fidelity);

}  // namespace tpusim
