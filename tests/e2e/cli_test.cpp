#include <catch2/catch.hpp>

#include "test_util.h"
#include "tpusim/version.h"

using tpusim::test::run_tpusim;

TEST_CASE("tpusim --version prints the version", "[cli]") {
  auto r = run_tpusim("--version");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "tpusim " TPUSIM_VERSION "\n");
}

TEST_CASE("tpusim --help lists the subcommands", "[cli]") {
  auto r = run_tpusim("--help");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("arch") != std::string::npos);
}
