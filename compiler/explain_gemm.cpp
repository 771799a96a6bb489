// explain gemm: the program run at PE fidelity with a frame recorder (explain_gemm.h).
#include "compiler/explain_gemm.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "ir/diagnostics.h"
#include "simulator/random_data.h"
#include "simulator/semantics.h"

namespace tpusim {
std::vector<uint8_t> operand_bytes(const std::vector<double>& values, DType type) {
  std::vector<uint8_t> bytes(values.size() * dtype_size(type), 0);
  for (size_t i = 0; i < values.size(); ++i) {
    if (type == DType::Int8) {
      bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(values[i]));
    } else {
      const uint16_t bits = float_to_bf16(static_cast<float>(values[i]));
      bytes[2 * i] = static_cast<uint8_t>(bits & 0xff);
      bytes[2 * i + 1] = static_cast<uint8_t>(bits >> 8);
    }
  }
  return bytes;
}

GemmExplanation explain_gemm(const GemmShape& shape, const ArchConfig& arch, uint64_t seed, const ExplainRange& range) {
  require_drawable_array(arch);
  GemmExplanation out;
  out.shape = shape;
  out.program = gemm_program(shape, arch);
  const Program& program = out.program.program;
  const DType type = arch.mxu.operand_type;
  RandomStream rng(seed);
  out.a.resize(static_cast<size_t>(shape.m * shape.k));
  out.b.resize(static_cast<size_t>(shape.k * shape.n));
  for (double& v : out.a) v = static_cast<double>(rng.uniform_int(-3, 3));
  for (double& v : out.b) v = static_cast<double>(rng.uniform_int(-3, 3));

  MachineState state = make_machine_state(program, target_limits(arch));
  state.dram[0] = operand_bytes(out.a, type);
  state.dram[1] = operand_bytes(out.b, type);

  if (range.first < 0 || (range.last >= 0 && range.last < range.first)) {
    throw Error({"--cycles", 0, 0, ""}, fmt::format("--cycles {}:{} is not a range of cycles (A:B with 0 <= A <= B)",
                                                    range.first, range.last));
  }
  FrameRecorder recorder(range.first, range.last < 0 ? INT64_MAX : range.last, range.max_frames);
  SimulationOptions options;
  options.fidelity = Fidelity::Pe;
  options.observe = recorder.observer();
  const SimulationResult result = simulate_program(program, arch, state, options);
  out.total_cycles = result.total_cycles;
  if (range.first >= result.total_cycles) {
    throw Error({"--cycles", 0, 0, ""}, fmt::format("--cycles starts at {}, but the run has {} cycles (0 to {})",
                                                    range.first, result.total_cycles, result.total_cycles - 1));
  }
  out.frames = recorder.take();
  out.first = range.first;

  // C as stored, against A . B.
  const std::vector<uint8_t>& c_bytes = state.dram[2];
  out.c.resize(static_cast<size_t>(shape.m * shape.n));
  out.c_correct = true;
  for (int64_t m = 0; m < shape.m; ++m) {
    for (int64_t n = 0; n < shape.n; ++n) {
      const size_t i = static_cast<size_t>(m * shape.n + n);
      if (type == DType::Int8) {
        int32_t v;
        std::memcpy(&v, c_bytes.data() + 4 * i, 4);
        out.c[i] = v;
      } else {
        float v;
        std::memcpy(&v, c_bytes.data() + 4 * i, 4);
        out.c[i] = v;
      }
      double expected = 0;
      for (int64_t k = 0; k < shape.k; ++k) {
        expected += out.a[static_cast<size_t>(m * shape.k + k)] * out.b[static_cast<size_t>(k * shape.n + n)];
      }
      out.c_correct = out.c_correct && expected == out.c[i];
    }
  }
  return out;
}

}  // namespace tpusim
