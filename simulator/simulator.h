// The cycle-level simulator: DMA, MXU and VPU units, each with an in-order queue, advanced by
// one explicit cycle loop (simulator.cpp, `simulate_program`). Values are real: the MXU either
// steps every PE register and reads its timing from them (`Fidelity::Pe`, the ground truth) or
// computes the cycles in closed form and the values with a fast kernel (`Fidelity::Fast`); the
// two are independent and must agree exactly.
// Timing rules are documented in docs/cycle-model.md.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string_view>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/program.h"
#include "ir/resource_limits.h"
#include "simulator/arch.h"
#include "simulator/activity.h"
#include "simulator/counters.h"
#include "simulator/semantics.h"

namespace tpusim {

enum class Fidelity : uint8_t { Pe, Fast };

// Why a unit spent a cycle the way it did. Every cycle of every unit has exactly one cause,
// so the causes of a unit sum to the total cycle count.
enum class CycleCause : uint8_t {
  Busy,              // working (MXU: computing, shifting weights or draining)
  WaitingOnDma,      // the next instruction waits on a token that the DMA signals
  WaitingOnTokens,   // ... on a token from the MXU or VPU
  WaitingOnWeights,  // MXU: a matmul waits for its tile to finish shifting in, or a tile waits
                     // for the array to finish with the bank it will overwrite
  BankConflict,      // a buffer bank's port was taken by a higher-priority unit
  Idle,              // nothing left to do
};
constexpr int kCycleCauseCount = 6;
std::string_view cycle_cause_name(CycleCause c);  // "busy", "waiting_on_dma", ...

// The MXU's busy cycles split like the TPUv1 paper's Table 3.
enum class MxuActivity : uint8_t { Computing, ShiftingWeights, Draining };
constexpr int kMxuActivityCount = 3;

// Everything measured for one label (or for the whole program).
struct LabelStats {
  std::array<std::array<int64_t, kCycleCauseCount>, kUnitCount> cycles{};  // [unit][cause]
  std::array<int64_t, kMxuActivityCount> mxu_activity{};
  int64_t useful_macs = 0;  // operand pairs that met in a PE (valid x valid)
  int64_t mapped_macs = 0;  // array PEs x injection cycles of the tiles (what the array could do)
  int64_t instructions = 0;
  int64_t first_cycle = -1, last_cycle = -1;  // span of issue..completion
  Traffic traffic;
  // DRAM bytes {read, written} per program tensor (indexed like program.tensors; shorter when
  // the last tensors were not touched), so a report can tell weights from activations.
  std::vector<std::array<int64_t, 2>> dram_by_tensor;
};

// How far a run has come, for a progress display.
struct SimulationProgress {
  int64_t cycle = 0;
  int64_t instructions_issued = 0, instructions_total = 0;
  std::string_view label;  // the label of the instruction issued last
};

class SystolicArray;

// What a unit did in one cycle, for an observer (SimulationOptions::observe).
struct UnitCycle {
  CycleCause cause = CycleCause::Idle;
  std::optional<MxuActivity> activity;       // MXU, when busy
  const Instruction* instruction = nullptr;  // the instruction the cycle is charged to
  std::string_view label;
};

// One simulated cycle as it ended, for the teaching views (simulator/array_frames.h).
struct CycleObservation {
  int64_t cycle = 0;
  const SystolicArray* array = nullptr;  // PE fidelity: the array's registers now; else null
  // The array was clocked in this cycle. When it was not (it was empty and nothing entered),
  // no register changed, nothing multiplied and nothing left it, whatever bottom() still says.
  bool array_clocked = false;
  std::array<UnitCycle, kUnitCount> units;
  // The MXU: the vector that entered the array in this cycle (its index in its matmul; -1:
  // none) and the matmul's vector count.
  int64_t vector = -1, vectors = 0;
  Traffic traffic;  // every byte counted so far
};

struct SimulationOptions {
  Fidelity fidelity = Fidelity::Fast;
  bool check_races = true;
  bool record_trace = false;  // per-instruction issue/complete events
  // max_instructions and max_cycles bound the run; max_memory_bytes bounds the trace.
  ResourceLimits limits;
  // Called at the start, every few thousand steps of the cycle loop, and at the end.
  std::function<void(const SimulationProgress&)> progress;
  // Called once for every cycle of the run, in order (cycles the loop skips included: nothing
  // changes in them), after the units have ticked.
  std::function<void(const CycleObservation&)> observe;
};

struct TraceEvent {
  Unit unit;
  int64_t begin, end;  // cycles, inclusive
  const Instruction* instruction;
  std::vector<int64_t> loop_values;
};

struct SimulationResult {
  int64_t total_cycles = 0;
  LabelStats totals;
  std::vector<std::string> labels;     // first-seen order; "" = unlabelled
  std::vector<LabelStats> per_label;   // parallel to labels
  std::vector<TraceEvent> trace;
  ActivityTimeline activity;  // busy cycles and unified-buffer bytes in flight, binned over time
  CounterRegistry counters;
  int64_t pe_updates = 0;  // PE register updates stepped (Pe fidelity)
};

// Runs `program` on `state` (inputs loaded) for `arch`. Throws tpusim::Error on a runtime
// fault (out-of-range access, race, deadlock), and before it starts when the program would
// execute more instructions than options.limits allows; stops with an error when the run
// passes options.limits.max_cycles.
SimulationResult simulate_program(const Program& program, const ArchConfig& arch,
                                  MachineState& state, const SimulationOptions& options = {});

}  // namespace tpusim
