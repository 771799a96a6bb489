// How much a run may take from the host: memory for simulated data, and simulated work. Every
// size tpusim would allocate or simulate on the strength of user input is checked against
// these before the allocation or the work starts (docs/limits.md; `--max-memory`,
// `--max-cycles`, `--max-instructions` on the command line).
#pragma once

#include <cstdint>
#include <string_view>

#include "ir/diagnostics.h"

namespace tpusim {

// Half of this machine's memory (or of the memory its control group may use, when that is
// less): the default of ResourceLimits::max_memory_bytes.
int64_t default_max_memory_bytes();

struct ResourceLimits {
  // Host memory for tensor data: simulated DRAM tensors, on-chip buffers, seeded weights and
  // inputs, the reference's tensors. Default: half of this machine's memory.
  int64_t max_memory_bytes = default_max_memory_bytes();
  // Simulated cycles of one run (10^11 by default: at 1 GHz, 100 simulated seconds).
  int64_t max_cycles = 100'000'000'000;
  // Instructions one run may execute, each iteration of a `repeat` loop counted (10^9).
  int64_t max_instructions = 1'000'000'000;
  // Instructions the compiler may write into one program (its text, loops not expanded).
  int64_t max_program_instructions = 2'000'000;
};

// Throws an error at `where` when `bytes` of host memory for `what` is more than the limit
// allows: "<what> would take 1.5 GiB of memory, more than --max-memory allows (1 GiB); ...".
void require_memory(int64_t bytes, const ResourceLimits& limits, const SourceLocation& where, std::string_view what);

}  // namespace tpusim
