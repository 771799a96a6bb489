// A GEMM C[M,N] = A[M,K] · B[K,N] written as a program for any of the three dataflows, tiled to
// the array: the program `tpusim explain gemm` runs and animates (docs/teaching.md). A, B and C
// stay whole in the buffers (a teaching size), so the program is the dataflow and nothing else:
//
//   ws  the array holds a K×N tile of B (k-tiles of <= rows, n-tiles of <= cols); all M rows
//       of A stream through it; k-tiles after the first accumulate.
//   os  each PE holds one C[m][n] (m-tiles of <= rows, n-tiles of <= cols); column k of A
//       enters from the left and row k of B from the top, K steps, then the sums drain.
//   is  the array holds a K×M tile of A, transposed (k-tiles of <= rows, m-tiles of <= cols);
//       all N columns of B stream through it, and C comes out transposed (C^T rows).
#pragma once

#include <cstdint>
#include <string>

#include "ir/program.h"
#include "simulator/arch.h"

namespace tpusim {

struct GemmShape {
  int64_t m = 0, k = 0, n = 0;
};

// One tile the program computes, in the order the MXU runs them.
struct GemmTile {
  int64_t m0 = 0, m = 0, k0 = 0, k = 0, n0 = 0, n = 0;
};

struct GemmProgram {
  std::string text;  // the program, commented (program format, docs/program-format.md)
  Program program;   // parsed and verified against the machine
  std::vector<GemmTile> tiles;
};

// The program for `shape` on `arch` (its dataflow, operand type and array). An Error, naming
// the flag to change, when a dimension is not positive or A, B or C does not fit its buffer.
GemmProgram gemm_program(const GemmShape& shape, const ArchConfig& arch);

}  // namespace tpusim
