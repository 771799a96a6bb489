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
