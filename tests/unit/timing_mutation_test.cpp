// Mutation test: proof that the fidelity comparison of the property test bites. Each mutant
// moves one closed-form term of the fast MXU schedule by +1 or -1 cycle, or puts an off-by-one
// into the PE array's skew or weight shift (simulator/timing_mutations.h). For every mutant,
// the comparison of the two fidelities (fidelity_comparison.h) must find a difference, or the
// simulator an internal error, on at least one program of a fixed set: random programs like
// the property test's, and a few written to expose the accumulator-port terms. The score is
// printed: `tpusim_unit_tests "[mutation]"`.
#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ir/diagnostics.h"
#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/random_data.h"
#include "simulator/semantics.h"
#include "simulator/simulator.h"
#include "simulator/timing_mutations.h"
#include "unit/fidelity_comparison.h"
#include "unit/random_gemm_programs.h"

using namespace tpusim;
using namespace tpusim::test;

namespace {

struct Mutant {
  std::string name;
  std::function<void(TimingMutations&)> apply;
  bool in_pe_array = false;  // faults the PE fidelity (else the fast one)
};

std::vector<Mutant> mutants() {
  struct Term {
    const char* name;
    int FastMxuTimingOffsets::*offset;
  };
  const Term terms[] = {
      {"load shift end (s+K)", &FastMxuTimingOffsets::shift_end},
      {"tile ready (s+K)", &FastMxuTimingOffsets::tile_ready},
      {"load done (s+K-1)", &FastMxuTimingOffsets::load_done},
      {"stream free (s+T)", &FastMxuTimingOffsets::stream_free},
      {"matmul done (s+T+R+N-3)", &FastMxuTimingOffsets::matmul_done},
      {"bank free (s+T+K+C-2)", &FastMxuTimingOffsets::bank_free},
      {"first accumulator write (s+R-1)", &FastMxuTimingOffsets::outputs_begin},
      {"last accumulator write (s+T+R+N-3)", &FastMxuTimingOffsets::outputs_end},
      {"os drain start (s+T+M+N-2)", &FastMxuTimingOffsets::os_drain_start},
      {"os done (drain start+R-1)", &FastMxuTimingOffsets::os_done},
      {"os stream free (done+1)", &FastMxuTimingOffsets::os_stream_free},
      {"os row written (drain start+R-1-m)", &FastMxuTimingOffsets::os_row_written},
  };
  std::vector<Mutant> list;
  for (const Term& term : terms) {
    for (int delta : {+1, -1}) {
      list.push_back({fmt::format("fast: {} {:+d}", term.name, delta),
                      [term, delta](TimingMutations& m) { m.fast_mxu.*term.offset = delta; },
                      false});
    }
  }
  for (int delta : {+1, -1}) {
    list.push_back({fmt::format("pe array: skew {:+d}", delta),
                    [delta](TimingMutations& m) { m.pe_array.skew = delta; }, true});
    list.push_back({fmt::format("pe array: weight shift {:+d}", delta),
                    [delta](TimingMutations& m) { m.pe_array.weight_shift = delta; }, true});
  }
  return list;
}

// Applies a mutant for the life of the scope, then puts back the zeros.
class ScopedMutation {
 public:
  explicit ScopedMutation(const Mutant& mutant) { mutant.apply(timing_mutations()); }
  ~ScopedMutation() { timing_mutations() = {}; }
  ScopedMutation(const ScopedMutation&) = delete;
  ScopedMutation& operator=(const ScopedMutation&) = delete;
};

// A program with its unmutated runs at both fidelities (which must agree).
struct TestProgram {
  std::string name;
  ArchConfig arch;
  Program program;
  MachineState initial;
  FidelityRun pe, fast;
};

void add_program(std::deque<TestProgram>& programs, std::string name, ArchConfig arch,
                 const std::string& text, uint64_t seed) {
  TestProgram& p = programs.emplace_back();
  p.name = std::move(name);
  p.arch = std::move(arch);
  p.program = parse_program(text, p.name + ".tpu");
  const TargetLimits target = target_limits(p.arch);
  verify_program_or_throw(p.program, target);
  p.initial = make_machine_state(p.program, target);
  load_program_inputs(p.program, "", seed, p.initial);
  p.pe = run_at_fidelity(p.program, p.arch, p.initial, Fidelity::Pe);
  p.fast = run_at_fidelity(p.program, p.arch, p.initial, Fidelity::Fast);
}

// Programs on teach-4x4 whose timing turns on the accumulator port: a VPU relu on other
// accumulators of a bank the MXU writes tries to issue a vector every cycle from `relu_start`
// (behind a one-vector copy with that interval), so its conflicts are the MXU's writes.
struct PortProgram {
  const char* name;
  std::vector<std::string> overrides;
  std::string text;
};

std::vector<PortProgram> port_programs() {
  const std::string ws_tile =
      "mxu.load_stationary src=wb[0] rows=4 cols=4 stride=4\n"
      "mxu.matmul src=ub[0] stride=4 count=4 dst=acc[0] dst_stride=16\n";
  const std::string os_tile =
      "mxu.matmul_os left=ub[0] left_stride=4 top=wb[0] top_stride=4 rows=4 cols=4 count=4 "
      "dst=acc[0] dst_stride=16\n";
  const std::string timer = "vpu.copy dst=acc[1536]:int32 src=acc[1536]:int32 cols=1\n";
  const std::string relu = "vpu.relu dst=acc[1024]:int32 src=acc[1024]:int32 rows=8 cols=4\n";
  return {
      // ws: outputs leave in [7, 13] (the matmul enters at 4).
      {"ws accumulator writes, relu from 5", {"vpu.convert.interval=5"}, ws_tile + timer + relu},
      {"ws accumulator writes, relu from 9", {"vpu.convert.interval=9"}, ws_tile + timer + relu},
      // os: rows are written in [10, 13] (the matmul enters at 0).
      {"os accumulator writes, relu from 9",
       {"vpu.convert.interval=9", "mxu.dataflow=os"},
       os_tile + timer + relu},
      {"os accumulator writes, relu from 11",
       {"vpu.convert.interval=11", "mxu.dataflow=os"},
       os_tile + timer + relu},
      // Two accumulator banks. The second matmul (one output, in bank 1, at cycle 6) is done
      // before the first (outputs in bank 0 until 8), so it is still in flight in cycle 7,
      // when the relu on bank 1 tries again.
      {"ws accumulator writes of a matmul done early",
       {"vpu.convert.interval=5", "accumulator.banks=2"},
       "mxu.load_stationary src=wb[0] rows=1 cols=4 stride=4\n"
       "mxu.matmul src=ub[0] stride=1 count=2 dst=acc[0] dst_stride=16\n"
       "mxu.load_stationary src=wb[16] rows=1 cols=1 stride=1\n"
       "mxu.matmul src=ub[16] stride=1 count=1 dst=acc[1024] dst_stride=4\n"
       "vpu.copy dst=ub[3072]:int8 src=ub[3072]:int8 cols=1\n"
       "vpu.relu dst=acc[1536]:int32 src=acc[1536]:int32 rows=8 cols=4\n"},
  };
}

std::deque<TestProgram> test_programs() {
  std::deque<TestProgram> programs;
  RandomStream rng(7);
  for (int i = 0; i < 60; ++i) {
    RandomGemmCase c = random_gemm_case(rng);
    add_program(programs, fmt::format("random program {}", i),
                parse_arch_yaml(c.arch_yaml, "mutation.yaml"), c.program, static_cast<uint64_t>(i));
  }
  for (const PortProgram& p : port_programs())
    add_program(programs, p.name, load_arch("teach-4x4", p.overrides), p.text, 1);
  return programs;
}

// Why the mutant is caught on one of `programs` (empty: it survives).
std::string find_difference(const Mutant& mutant, const std::deque<TestProgram>& programs) {
  for (const TestProgram& p : programs) {
    try {
      ScopedMutation scope(mutant);
      const std::string difference =
          mutant.in_pe_array
              ? first_difference(run_at_fidelity(p.program, p.arch, p.initial, Fidelity::Pe),
                                 p.fast)
              : first_difference(p.pe,
                                 run_at_fidelity(p.program, p.arch, p.initial, Fidelity::Fast));
      if (!difference.empty()) return p.name + ": " + difference;
    } catch (const InternalError& e) {
      return p.name + ": " + e.what();
    } catch (const Error& e) {
      return p.name + ": " + e.what();
    }
  }
  return "";
}

}  // namespace

TEST_CASE("every off-by-one in the fast schedule or the PE array makes the fidelities disagree",
          "[mutation][simulator]") {
  const std::deque<TestProgram> programs = test_programs();
  for (const TestProgram& p : programs) {
    INFO(p.name);
    REQUIRE(first_difference(p.pe, p.fast).empty());
  }
  const std::vector<Mutant> list = mutants();
  int killed = 0;
  std::string report;
  for (const Mutant& mutant : list) {
    const std::string caught_by = find_difference(mutant, programs);
    INFO(mutant.name);
    CHECK(!caught_by.empty());
    if (!caught_by.empty()) ++killed;
    report += fmt::format("  {:<48} {}\n", mutant.name,
                          caught_by.empty() ? "SURVIVED" : "killed by " + caught_by.substr(0, 110));
  }
  fmt::print("timing mutations: {} of {} mutants killed\n{}", killed, list.size(), report);
  CHECK(killed == static_cast<int>(list.size()));
}
