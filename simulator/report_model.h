// The report of one run: every figure a rendering shows (table, JSON, CSV, diff) is computed
// here, once, from the simulation's counters; the renderings only format it (docs/report.md
// defines each figure):
//   utilization         = useful MACs / (rows * cols * cycles)
//   mapping efficiency  = useful MACs / mapped MACs
//   compute utilization = useful MACs / (rows * cols * MXU busy cycles)
//   ops = 2 * MACs; ops per DRAM byte = 2 * useful MACs / DRAM bytes moved
// A layer is a label: the graph op a compiled program's instructions belong to (the op and
// any activation folded into it), or the `label` a hand-written program gives.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "simulator/arch.h"
#include "simulator/simulator.h"

namespace tpusim {

constexpr int kReportSchemaVersion = 2;

// What the compiler knows about a label; a hand-written program has none of it.
struct LayerInfo {
  std::string label;
  std::string op_kind;  // "conv", "linear", "matmul", "add", "maxpool", "attention", ...
  std::string op_text;  // one line about the op: "conv 3x3 stride 2, 3 -> 64 channels"
  // A GEMM's fit to the array: the reduction (K) and output (N) dimensions against the rows
  // and columns one tile fills (0 = not a GEMM).
  int64_t gemm_k = 0, gemm_n = 0, rows_used = 0, cols_used = 0;
  int64_t graph_macs = 0;
  std::vector<std::string> choices;  // the compiler's choices, one line each
};

// What a report needs beyond the simulation: the labels' ops, and which program tensors are
// weights (so DRAM traffic splits into weights and activations).
struct ReportContext {
  std::vector<LayerInfo> layers;
  std::vector<bool> weight_tensors;  // by program tensor; empty = none known
  int64_t graph_macs = 0;            // the model's MACs, 0 for a program
};

// Figures of the whole run or of one layer.
struct Figures {
  int64_t cycles = 0;  // the layer's share of the run: from its start to the next layer's start
  int64_t span = 0;    // first issue to last completion of its own instructions
  int64_t first_cycle = -1, last_cycle = -1;
  int64_t instructions = 0;
  std::array<std::array<int64_t, kCycleCauseCount>, kUnitCount> unit_cycles{};  // [unit][cause]
  std::array<int64_t, kMxuActivityCount> mxu_activity{};
  int64_t useful_macs = 0, mapped_macs = 0;
  Traffic traffic;
  int64_t dram_weight_bytes = 0;      // read from weight tensors
  int64_t dram_activation_read = 0;   // read from every other tensor
  int64_t dram_activation_written = 0;
  // Derived.
  int64_t mxu_busy = 0, dram_bytes = 0;
  double utilization = 0, mapping_efficiency = 0, compute_utilization = 0;
  double ops_per_cycle = 0, tops = 0, ops_per_dram_byte = 0;
};

// What bounds a layer (or the run) and what would help.
enum class Bound : uint8_t {
  Compute,          // the MXU is busy nearly all the time, well mapped
  PoorlyMapped,     // the MXU is the busy unit, but most of its PEs hold padding
  WeightLoad,       // the MXU shifts in weights or waits for them more than it computes
  DramWeights,      // the DMA is the busy unit, moving mostly weights
  DramActivations,  // ... mostly activations
  DmaLatency,       // the DMA is the busy unit, but waiting out DRAM latency more than moving bytes
  VectorUnit,       // the VPU is the busy unit
  Waiting,          // no unit is busy half the time: they wait on each other
  Empty,            // no cycles
};
std::string_view bound_name(Bound b);  // "compute", "poorly-mapped", ...

struct Diagnosis {
  Bound bound = Bound::Empty;
  std::string text;  // one line: the bound, the numbers behind it, what would help
};

struct LayerReport {
  LayerInfo info;  // label (and what the compiler knows)
  Figures figures;
  Diagnosis diagnosis;
};

struct RunReport {
  std::string program;
  ArchConfig arch;
  std::string fidelity;  // "fast" or "pe"
  double peak_ops_per_cycle = 0;  // 2 * rows * cols
  Figures totals;
  Diagnosis diagnosis;
  std::vector<LayerReport> layers;  // in the order they started
  int64_t graph_macs = 0;
  std::vector<Counter> counters;
  ActivityTimeline activity;  // busy cycles per unit and unified-buffer bytes in flight, over time
};

// Derived figures of `f` (its counts filled in) on `arch` over `cycles` cycles.
void derive_figures(const ArchConfig& arch, int64_t cycles, Figures& f);

RunReport build_report(const std::string& program_name, const ArchConfig& arch, const SimulationResult& result,
                       Fidelity fidelity, const ReportContext& context = {});

// The layers' indices in `report.layers`, slowest first ("cycles") or as they started ("start").
std::vector<size_t> layer_order(const RunReport& report, const std::string& sort);

}  // namespace tpusim
