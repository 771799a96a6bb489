// Running a model for the teaching views (explain_model.h).
#include "compiler/explain_model.h"

#include <algorithm>

#include "compiler/model_run.h"
#include "compiler/report_context.h"
#include "simulator/semantics.h"

namespace tpusim {

ModelRun run_model_seeded(const Graph& graph, const ArchConfig& arch, const CompileOptions& options, uint64_t seed) {
  ModelRun run;
  run.compiled = compile_graph(graph, arch, options);
  MachineState state = make_machine_state(run.compiled.program, target_limits(arch), options.limits);
  run.inputs = place_model_inputs(run.compiled, "", seed, state);
  SimulationOptions simulation;
  simulation.record_trace = true;
  simulation.limits = options.limits;
  run.result = simulate_program(run.compiled.program, arch, state, simulation);
  run.report = build_report(graph.name, arch, run.result, Fidelity::Fast, report_context(run.compiled, arch));
  return run;
}

std::vector<ProgramTile> program_tiles(const ModelRun& run, const std::string& label) {
  std::vector<const TraceEvent*> mxu;
  for (const TraceEvent& e : run.result.trace) {
    if (e.unit == Unit::Mxu && (label.empty() || e.instruction->label == label)) mxu.push_back(&e);
  }
  std::stable_sort(mxu.begin(), mxu.end(), [](const TraceEvent* a, const TraceEvent* b) { return a->begin < b->begin; });
  std::vector<ProgramTile> tiles;
  for (const TraceEvent* e : mxu) {
    const Instruction& in = *e->instruction;
    if (in.opcode == Opcode::MxuLoadStationary) {
      tiles.push_back({in.label, e->begin, e->end, 0, in.rows, in.cols});
    } else if (!tiles.empty()) {
      tiles.back().last_cycle = std::max(tiles.back().last_cycle, e->end);
      ++tiles.back().matmuls;
    }
  }
  return tiles;
}

std::vector<ArrayFrame> record_model_frames(const ModelRun& run, const ArchConfig& arch, uint64_t seed, int64_t first,
                                            int64_t last) {
  require_drawable_array(arch);
  MachineState state = make_machine_state(run.compiled.program, target_limits(arch));
  place_model_inputs(run.compiled, "", seed, state);
  FrameRecorder recorder(first, last, last - first + 1);
  SimulationOptions options;
  options.fidelity = Fidelity::Pe;
  options.observe = recorder.observer();
  simulate_program(run.compiled.program, arch, state, options);
  return recorder.take();
}

}  // namespace tpusim
