// Random tiled-GEMM programs, for the tests that compare the two fidelities: a random machine
// (array shape, dataflow, operand type, double buffering, banks, DRAM) and a program that
// computes C = A.B tile by tile on it (every tile in its own buffer region, so the only
// orderings are producer -> consumer tokens), stores C and a VPU epilogue of it as Q.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "simulator/arch.h"
#include "simulator/random_data.h"
#include "simulator/semantics.h"

namespace tpusim::test {

struct RandomGemmCase {
  Dataflow dataflow;
  DType type;
  int64_t rows, cols, M, K, N;
  int64_t k_tile = 1;  // the reduction is summed per k-tile, then tiles are added in order
  bool double_buffering;
  std::string arch_yaml;  // the machine
  std::string program;    // its program text
};

// The next case from `rng`: about a third each ws, os and is.
RandomGemmCase random_gemm_case(RandomStream& rng);

// C = A.B in the accumulator type from the inputs in `initial`, summing k from 0 (the
// documented order; fp32 sums each k-tile from +0.0 and adds the tiles in order).
std::vector<uint8_t> expected_product(const RandomGemmCase& c, const MachineState& initial);

}  // namespace tpusim::test
