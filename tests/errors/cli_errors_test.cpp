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
