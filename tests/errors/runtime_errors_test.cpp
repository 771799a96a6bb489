// Programs that parse and verify but fail when run: races, deadlocks, a matmul with no tile.
// Each is reported the same way by the cycle-level simulator (both fidelities) and the
// reference interpreter, naming the instructions involved.
#include <catch2/catch.hpp>

#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/interpreter.h"
#include "simulator/npy.h"
#include "simulator/simulator.h"
#include "test_util.h"

using namespace tpusim;

namespace {

std::string path_of(const std::string& name) { return "tests/errors/runtime/" + name; }

// The message of the Error that running `name` raises, under `how`.
enum class Runner { Interpreter, Fast, Pe };
std::string run_error(const std::string& name, Runner how) {
  // Parsed under its repository-relative name, so messages are the same on every machine.
  Program program = parse_program(test::read_text_file(test::source_dir() + "/" + path_of(name)), path_of(name));
  ArchConfig arch = load_arch("teach-4x4");
  TargetLimits target = target_limits(arch);
  verify_program_or_throw(program, target);
  MachineState state = make_machine_state(program, target);
  load_program_inputs(program, "", 1, state);
  try {
    if (how == Runner::Interpreter) {
      interpret_program(program, target, state);
    } else {
      SimulationOptions options;
      options.fidelity = how == Runner::Pe ? Fidelity::Pe : Fidelity::Fast;
      simulate_program(program, arch, state, options);
    }
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("a missing token is reported as a race naming both instructions", "[runtime][race]") {
  const std::string expected =
      "tests/errors/runtime/missing_token_race.tpu:11:1: error: race on acc[0, 64): mxu.matmul at "
      "line 10 [gemm] writes it and dma.store at line 11 reads it with no token ordering them; add "
      "a token from mxu to dma (signal it from the first, wait on it in the second)";
  CHECK(run_error("missing_token_race.tpu", Runner::Fast) == expected);
  CHECK(run_error("missing_token_race.tpu", Runner::Pe) == expected);
  CHECK(run_error("missing_token_race.tpu", Runner::Interpreter) == expected);
}

TEST_CASE("a VPU write under the MXU's feet is a race", "[runtime][race]") {
  const std::string expected =
      "tests/errors/runtime/vpu_race.tpu:13:1: error: race on ub[0, 16): mxu.matmul at line 12 "
      "reads it and vpu.relu at line 13 writes it with no token ordering them; add a token from "
      "mxu to vpu (signal it from the first, wait on it in the second)";
  CHECK(run_error("vpu_race.tpu", Runner::Fast) == expected);
  CHECK(run_error("vpu_race.tpu", Runner::Interpreter) == expected);
}

TEST_CASE("a circular wait is reported as a deadlock listing the blocked instructions", "[runtime][deadlock]") {
  const std::string blocked =
      "\n  dma is blocked at dma.load (line 6) waiting on token 'c_ready' (from mxu)"
      "\n  mxu is blocked at mxu.load_stationary (line 7) waiting on token 'a_loaded' (from dma)";
  CHECK(run_error("circular_wait.tpu", Runner::Fast) ==
        "tests/errors/runtime/circular_wait.tpu: error: deadlock at cycle 0: no unit can continue; "
        "every remaining instruction waits on a token that nothing will signal:" + blocked);
  CHECK(run_error("circular_wait.tpu", Runner::Pe) ==
        "tests/errors/runtime/circular_wait.tpu: error: deadlock at cycle 0: no unit can continue; "
        "every remaining instruction waits on a token that nothing will signal:" + blocked);
  CHECK(run_error("circular_wait.tpu", Runner::Interpreter) ==
        "tests/errors/runtime/circular_wait.tpu: error: deadlock: no unit can continue; every "
        "remaining instruction waits on a token that nothing will signal:" + blocked);
}

TEST_CASE("a matmul with no tile in the array is a located error", "[runtime]") {
  const std::string expected =
      "tests/errors/runtime/matmul_without_tile.tpu:7:1: error: mxu.matmul runs before any "
      "mxu.load_stationary: the array holds no tile";
  CHECK(run_error("matmul_without_tile.tpu", Runner::Fast) == expected);
  CHECK(run_error("matmul_without_tile.tpu", Runner::Pe) == expected);
  CHECK(run_error("matmul_without_tile.tpu", Runner::Interpreter) == expected);
}

TEST_CASE("tpusim run reports runtime errors with exit code 1 and nothing on stdout", "[runtime][cli]") {
  auto r = test::run_tpusim("run tests/errors/runtime/circular_wait.tpu --arch teach-4x4");
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("tests/errors/runtime/circular_wait.tpu: error: deadlock at cycle 0", 0) == 0);
}

TEST_CASE("tpusim run rejects inputs of the wrong shape, naming the file", "[runtime][cli]") {
  std::string dir = test::make_temp_dir("inputs");
  HostTensor wrong{DType::Int8, {2, 2}, std::vector<uint8_t>(4, 1)};
  write_npy(dir + "/A.npy", wrong);
  auto r = test::run_tpusim("run examples/programs/gemm-4x4.tpu --arch teach-4x4 --inputs " + dir);
  CHECK(r.exit_code == 1);
  CHECK(r.err == dir + "/A.npy: error: holds int8 [2,2] but the program declares tensor 'A' as int8 [4,4] "
                       "(line " + std::to_string(load_program(test::source_dir() + "/examples/programs/gemm-4x4.tpu")
                                                     .tensors[0].location.line) +
                       "); write the file with that shape and type\n");
}

TEST_CASE("tpusim run with an --inputs directory that does not exist is an error", "[runtime][cli]") {
  auto r = test::run_tpusim("run examples/programs/gemm-4x4.tpu --arch teach-4x4 --inputs no/such/dir");
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "no/such/dir: error: --inputs: no such directory (give the directory that holds NAME.npy files)\n");
}
