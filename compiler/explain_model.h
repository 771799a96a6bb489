// What the teaching views of models share (`tpusim explain conv|attention|layer`): a compiled
// model run with seeded inputs, its report, and the frames of one MXU tile of its program
// recorded from the PE-level array.
#pragma once

#include <string>
#include <vector>

#include "compiler/explain_gemm.h"
#include "compiler/pipeline.h"
#include "simulator/npy.h"
#include "simulator/report_model.h"
#include "simulator/simulator.h"

namespace tpusim {

struct ModelRun {
  CompileResult compiled;
  std::vector<std::optional<HostTensor>> inputs;  // the seeded data, by graph value
  SimulationResult result;
  RunReport report;
};

// Compiles `graph` for `arch` and runs it on seeded inputs (fast fidelity: the same cycles as
// the PE model).
ModelRun run_model_seeded(const Graph& graph, const ArchConfig& arch, const CompileOptions& options, uint64_t seed);

// One weight tile of the program: an mxu.load_stationary and the matmuls that use it, in the
// cycles they ran.
struct ProgramTile {
  std::string label;
  int64_t first_cycle = 0, last_cycle = 0;
  int64_t matmuls = 0, rows = 0, cols = 0;  // the tile's shape
};
// The program's weight tiles of `label` ("" for all), in the order the MXU loaded them.
std::vector<ProgramTile> program_tiles(const ModelRun& run, const std::string& label);

// The frames of cycles [first, last] of the compiled program run at PE fidelity on the same
// seeded inputs.
std::vector<ArrayFrame> record_model_frames(const ModelRun& run, const ArchConfig& arch, uint64_t seed, int64_t first,
                                            int64_t last);

}  // namespace tpusim
