// Running a compiled model: its inputs and weights placed in the simulated DRAM, and the
// outputs checked against the plain reference implementation of the graph.
#pragma once

#include <string>
#include <vector>

#include "compiler/pipeline.h"
#include "simulator/semantics.h"

namespace tpusim {

// Puts every graph input and weight the program reads into its DRAM tensor: from `inputs_dir`
// (NAME.npy, by graph value name) when present, otherwise seeded data (weights from their file
// or seed). Returns the values used, indexed like graph.values (for the reference).
std::vector<std::optional<HostTensor>> place_model_inputs(const CompileResult& compiled, const std::string& inputs_dir,
                                                          uint64_t seed, MachineState& state);

// Host memory a run of `compiled` takes for tensor data: the simulated machine
// (machine_state_bytes), the model's inputs and weights as generated or read, and with `check`
// the reference's copy of every graph value.
int64_t model_run_bytes(const CompileResult& compiled, const TargetLimits& target, bool check);

struct ModelCheck {
  bool ok = true;
  std::string text;  // what was compared and the worst error
};
// Checks every kernel: the reference runs the graph ops the kernel covers (an op and the
// activation folded into it) on the simulator's own inputs to that kernel, and the kernel's
// simulated output must match — int8 bit-exact, floats within the tolerance of one op. Then
// the model's outputs are compared with the reference run end to end: int8 must be
// bit-exact; float rounding differences compound through a deep network, so for floats the
// end-to-end comparison is reported, and the per-kernel checks decide.
ModelCheck check_model_outputs(const CompileResult& compiled, const std::vector<std::optional<HostTensor>>& given,
                               const MachineState& state);

// A per-op summary of the compiler's choices (tiling, depthwise strategy, fusion).
std::string compile_summary(const CompileResult& compiled);

}  // namespace tpusim
