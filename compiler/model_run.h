// Running a compiled model: its inputs and weights placed in the simulated DRAM, and the
// outputs checked against the plain reference implementation of the graph.
#pragma once

#include <string>
#include <vector>

#include "compiler/pipeline.h"
#include "compiler/reference.h"
#include "simulator/semantics.h"

namespace tpusim {

// Puts every graph input and weight the program reads into its DRAM tensor: from `inputs_dir`
// (NAME.npy, by graph value name) when present, otherwise seeded data (weights from their file
// or seed). Returns the values used, indexed like graph.values (for the reference).
std::vector<std::optional<HostTensor>> place_model_inputs(const CompileResult& compiled, const std::string& inputs_dir,
                                                          uint64_t seed, MachineState& state);

// Host memory a run of `compiled` takes for tensor data: the simulated machine
// (machine_state_bytes), the model's inputs and weights as generated or read, and with `check`
// the reference's copy of every graph value (and for float values their fp64 evaluation).
int64_t model_run_bytes(const CompileResult& compiled, const TargetLimits& target, bool check);

// One kernel checked: the graph ops it covers (an op and the activation folded into it, and
// the kernels before it whose output stayed on chip) run by the reference on the simulator's
// own inputs to them, against the kernel's simulated output: int8 bit-exact, floats within
// the bound derived for those ops (compiler/reference_fp64.h, docs/numerics.md).
struct KernelCheck {
  std::string kernel;            // the kernel (its graph op's name)
  std::vector<std::string> ops;  // the graph ops the comparison covers, in order
  Comparison comparison;         // of the last op's output
};

// One model output checked end to end from the model's inputs.
struct OutputCheck {
  std::string name;
  DType type = DType::Int8;
  bool ok = false;
  // Integer outputs: against the reference, bit-exact.
  Comparison reference;
  // Float outputs: against the fp64 evaluation of the whole graph (same inputs and weights,
  // no intermediate rounding), as relative RMS errors ||got - exact|| / ||exact||; ok when the
  // simulated output's is within `bound` = bf16_roundings * 2^-8 + fp32_roundings * 2^-24
  // (end_to_end_bound in compiler/reference_fp64.h, docs/numerics.md).
  double relative_rms_error = 0;
  double reference_relative_rms_error = 0;  // the fp32 reference's own, for comparison
  int64_t bf16_roundings = 0;               // on the path where the bound is largest
  int64_t fp32_roundings = 0;               // on the same path
  double bound = 0;
};

struct ModelCheck {
  bool ok = true;
  int64_t kernels_checked = 0;    // comparisons made (a kernel whose output stays on chip is
                                  // checked with the kernel that reads it)
  int64_t kernels_bit_exact = 0;  // of those, bit-exact
  int64_t kernels_failed = 0;     // of those, outside their tolerance
  std::vector<KernelCheck> kernels;
  std::vector<OutputCheck> outputs;
  std::string text;  // the lines `tpusim run --check` prints
};
// Checks every kernel on its simulated inputs (above), then every model output end to end:
// integer outputs bit-exact against the reference; float outputs against the fp64 evaluation
// within the end-to-end bound (rounding compounds through a deep network, so the per-kernel
// checks are what holds each op to its definition; this one bounds the whole).
ModelCheck check_model_outputs(const CompileResult& compiled, const std::vector<std::optional<HostTensor>>& given,
                               const MachineState& state);

// A per-op summary of the compiler's choices (tiling, depthwise strategy, fusion).
std::string compile_summary(const CompileResult& compiled);

}  // namespace tpusim
