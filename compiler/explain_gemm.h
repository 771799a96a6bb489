// `tpusim explain gemm`: a GEMM on the PE-level array, cycle by cycle. The program is
// gemm_program's; A and B are small seeded integers (so that every sum can be followed by
// hand); every frame is the simulator's own array (simulator/array_frames.h).
#pragma once

#include <cstdint>
#include <vector>

#include "compiler/gemm_program.h"
#include "simulator/array_frames.h"

namespace tpusim {

struct GemmExplanation {
  GemmShape shape;
  GemmProgram program;
  std::vector<double> a, b, c;  // A[M,K], B[K,N] as given, C[M,N] as simulated (row-major)
  bool c_correct = false;       // C equals A . B computed here in double (exact for these sizes)
  int64_t total_cycles = 0;
  std::vector<ArrayFrame> frames;  // cycles [first, last] of the run
  int64_t first = 0;
};

struct ExplainRange {
  int64_t first = 0, last = -1;  // cycles; last < 0: to the end of the run
  int64_t max_frames = 20000;
};

// `values` as the array's operand bytes (int8, or bf16 bit patterns, little-endian).
std::vector<uint8_t> operand_bytes(const std::vector<double>& values, DType type);

// Inputs: uniform integers in [-3, 3] from RandomStream(seed), A first.
GemmExplanation explain_gemm(const GemmShape& shape, const ArchConfig& arch, uint64_t seed, const ExplainRange& range);

}  // namespace tpusim
