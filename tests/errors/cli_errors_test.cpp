#include <catch2/catch.hpp>

#include "test_util.h"

using tpusim::test::run_tpusim;

TEST_CASE("an unknown subcommand is a user error with exit code 1", "[cli]") {
  auto r = run_tpusim("frobnicate");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("frobnicate") != std::string::npos);
}

TEST_CASE("no subcommand is a user error with exit code 1", "[cli]") {
  auto r = run_tpusim("");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("subcommand") != std::string::npos);
}

namespace {

// The whole stderr of a command that must fail as a user error (exit 1, nothing on stdout).
std::string flag_error(const std::string& arguments) {
  auto r = run_tpusim(arguments);
  INFO(arguments << "\n" << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  return r.err;
}

}  // namespace

TEST_CASE("flag mistakes are errors in tpusim's form, with the nearest flag", "[cli]") {
  CHECK(flag_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 --fidelty pe") ==
        "error: unknown flag '--fidelty' for 'tpusim run'; did you mean '--fidelity'? (see tpusim run --help)\n");
  CHECK(flag_error("compile examples/models/tiny-cnn.yaml --arch teach-4x4 --emitt=tiled") ==
        "error: unknown flag '--emitt' for 'tpusim compile'; did you mean '--emit'? (see tpusim compile --help)\n");
  CHECK(flag_error("arch show teach-4x4 --frobnicate") ==
        "error: unknown flag '--frobnicate' for 'tpusim arch show' (see tpusim arch show --help)\n");
  CHECK(flag_error("--versio") == "error: unknown flag '--versio'; did you mean '--version'? (see tpusim --help)\n");
  CHECK(flag_error("arch shw") ==
        "error: unknown command 'shw' for 'tpusim arch'; did you mean 'show'? (see tpusim arch --help)\n");
  CHECK(flag_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 --fidelity pee") ==
        "error: --fidelity: pee not in {pe,fast} (see tpusim run --help)\n");
  CHECK(flag_error("run examples/models/tiny-cnn.yaml") == "error: --arch is required (see tpusim run --help)\n");
  CHECK(flag_error("run a.tpu b.tpu --arch teach-4x4") == "error: unexpected argument: b.tpu (see tpusim run --help)\n");
}

TEST_CASE("explain gemm: bad flags and sizes are located errors", "[cli][explain]") {
  CHECK(flag_error("explain gemm --cycles 5:2") == "--cycles: error: '5:2': the range ends before it starts\n");
  CHECK(flag_error("explain gemm --cycles x") ==
        "--cycles: error: 'x' is not a range of cycles: write A:B (e.g. 10:20), A: or :B, with whole numbers >= 0\n");
  CHECK(flag_error("explain gemm --cycles 900:") ==
        "--cycles: error: --cycles starts at 900, but the run has 80 cycles (0 to 79)\n");
  CHECK(flag_error("explain gemm --dataflow xs") == "--dataflow: error: 'xs' is not a dataflow: use ws, os or is\n");
  CHECK(flag_error("explain gemm --play -5") == "--play: error: --play takes milliseconds >= 0\n");
  CHECK(flag_error("explain gemm --m 0") == "explain gemm: error: --m, --k and --n must be positive (got 0, 4, 4)\n");
  CHECK(flag_error("explain gemm --m 100 --k 100") ==
        "explain gemm: error: A (100 x 100 int8) takes 10000 bytes, more than the unified_buffer holds (4 KiB); "
        "choose a smaller --m or --k, or a bigger machine (--set unified_buffer.bytes=...)\n");
  CHECK(flag_error("explain gemm --html /nonexistent/gemm.html") ==
        "/nonexistent/gemm.html: error: --html: cannot write here: the directory '/nonexistent' does not exist\n");
  CHECK(flag_error("explain gemm --arch tpu-v1") ==
        "--arch: error: explain draws arrays of up to 64 x 64 PEs, and tpu-v1 is 256 x 256; use a smaller one (e.g. "
        "--arch teach-4x4, or --set mxu.rows=8 --set mxu.cols=8)\n");
  CHECK(flag_error("explain gemm --m 500 --k 64 --n 64 --arch edge-32x32") ==
        "explain: error: more than 4096 cycles to draw; choose a range with --cycles A:B\n");
}
