// The reference interpreter: the untimed definition of what a program computes. Units run
// one instruction at a time, each in its own program order, in a fixed rotation (dma, mxu,
// vpu); an instruction runs when all the tokens it waits on are available. No cycles, no
// bandwidth, plain loops (simulator/semantics.h). The cycle-level simulator must end with the
// same bytes.
#pragma once

#include "ir/program.h"
#include "simulator/hazard.h"
#include "simulator/semantics.h"

namespace tpusim {

struct InterpreterResult {
  Traffic traffic;
  int64_t instructions = 0;  // dynamic instruction instances executed
};

// Runs `program` on `state` (which holds its inputs). Throws tpusim::Error on an out-of-range
// access, a race, or a deadlock (every unit left waits on a token nobody will signal).
InterpreterResult interpret_program(const Program& program, const TargetLimits& target,
                                    MachineState& state);

// "Unit X is blocked at <instruction> waiting on token T (count 0; produced by Y)" lines,
// shared with the cycle-level simulator's deadlock report.
std::string describe_blocked_wait(const Program& program, Unit unit, const Instruction& in,
                                  const std::vector<int64_t>& token_counts);

}  // namespace tpusim
