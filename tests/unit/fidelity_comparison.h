// Runs one program at a fidelity and compares two runs: the check behind "two fidelities, one
// truth" (docs/cycle-model.md), shared by the property test and the mutation test.
#pragma once

#include <string>

#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/semantics.h"
#include "simulator/simulator.h"

namespace tpusim::test {

struct FidelityRun {
  SimulationResult result;  // with its trace
  MachineState state;       // the buffers and DRAM at the end
};

// Simulates `program` from `initial` at `fidelity`, recording the trace.
FidelityRun run_at_fidelity(const Program& program, const ArchConfig& arch,
                            const MachineState& initial, Fidelity fidelity);

// The first difference between two runs of the same program, in this order: the total cycles,
// a counter (pe.updates aside: only the PE fidelity steps registers), the trace (every
// instruction instance's issue and completion cycles), the buffers, the DRAM. Empty if the
// runs agree on all of them.
std::string first_difference(const FidelityRun& pe, const FidelityRun& fast);

}  // namespace tpusim::test
