// Property test: hundreds of random tiled-GEMM programs (random array shapes, dataflows,
// operand types, tilings, buffer/bank/DRAM settings, VPU epilogues; random_gemm_programs.h).
// For each:
//   - the cycle simulator at PE fidelity and at fast fidelity, which learn their timing
//     independently (the PE array's state; closed forms), agree on the total cycles, every
//     counter, every instruction's issue and completion cycle, and every byte;
//   - both equal the reference interpreter byte for byte;
//   - the result equals a plain matrix product computed here.
// timing_mutation_test.cpp shows that this comparison notices an off-by-one in either timing.
#include <catch2/catch.hpp>

#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/interpreter.h"
#include "simulator/random_data.h"
#include "simulator/semantics.h"
#include "simulator/simulator.h"
#include "unit/fidelity_comparison.h"
#include "unit/random_gemm_programs.h"

using namespace tpusim;
using namespace tpusim::test;

TEST_CASE("random programs: PE-level, fast and reference interpreter agree byte for byte",
          "[property][simulator]") {
  RandomStream rng(20261125);
  int by_dataflow[3] = {0, 0, 0};
  for (int iteration = 0; iteration < 300; ++iteration) {
    RandomGemmCase c = random_gemm_case(rng);
    ++by_dataflow[static_cast<int>(c.dataflow)];
    INFO("iteration " << iteration << "\narch:\n" << c.arch_yaml << "program:\n" << c.program);
    ArchConfig arch = parse_arch_yaml(c.arch_yaml, "property.yaml");
    Program program = parse_program(c.program, "property.tpu");
    TargetLimits target = target_limits(arch);
    auto problems = verify_program(program, target);
    for (const auto& p : problems) INFO(p.what());
    REQUIRE(problems.empty());

    MachineState initial = make_machine_state(program, target);
    load_program_inputs(program, "", static_cast<uint64_t>(iteration), initial);

    MachineState reference = initial;
    interpret_program(program, target, reference);

    const FidelityRun fast = run_at_fidelity(program, arch, initial, Fidelity::Fast);
    const FidelityRun pe = run_at_fidelity(program, arch, initial, Fidelity::Pe);

    REQUIRE(pe.state.dram == reference.dram);
    REQUIRE(fast.state.dram == reference.dram);
    REQUIRE(pe.state.buffers == reference.buffers);
    REQUIRE(fast.state.buffers == reference.buffers);
    REQUIRE(reference.dram[2] == expected_product(c, initial));
    const std::string difference = first_difference(pe, fast);
    INFO(difference);
    REQUIRE(difference.empty());
    // Every unit's cycle causes sum to the total.
    for (int u = 0; u < kUnitCount; ++u) {
      int64_t sum = 0;
      for (int k = 0; k < kCycleCauseCount; ++k) sum += fast.result.totals.cycles[u][k];
      REQUIRE(sum == fast.result.total_cycles);
    }
    REQUIRE(pe.result.pe_updates > 0);
  }
  // The generator reached every dataflow.
  CHECK(by_dataflow[0] > 50);
  CHECK(by_dataflow[1] > 50);
  CHECK(by_dataflow[2] > 50);
}
