#include <catch2/catch.hpp>

#include "ir/diagnostics.h"

using namespace tpusim;

TEST_CASE("diagnostics are formatted as file:line:col: error: key: message", "[diagnostics]") {
  Error located({"arch.yaml", 3, 7, "mxu.rows"}, "must be positive, got 0");
  CHECK(std::string(located.what()) == "arch.yaml:3:7: error: mxu.rows: must be positive, got 0");
  CHECK(located.message() == "must be positive, got 0");
  CHECK(located.location().line == 3);

  Error file_only({"model.yaml", 0, 0, ""}, "cannot open file");
  CHECK(std::string(file_only.what()) == "model.yaml: error: cannot open file");

  Error bare("no input given");
  CHECK(std::string(bare.what()) == "error: no input given");
}

TEST_CASE("internal errors say they are bugs and where", "[diagnostics]") {
  try {
    TPUSIM_CHECK(1 + 1 == 3, "arithmetic broke");
    FAIL("TPUSIM_CHECK did not throw");
  } catch (const InternalError& e) {
    std::string text = e.what();
    CHECK(text.find("internal error at") == 0);
    CHECK(text.find("diagnostics_test.cpp") != std::string::npos);
    CHECK(text.find("arithmetic broke") != std::string::npos);
  }
}

TEST_CASE("nearest_spelling suggests close names and nothing for far ones", "[diagnostics]") {
  CHECK(nearest_spelling("rwos", {"rows", "cols", "dataflow"}) == "rows");
  CHECK(nearest_spelling("dataflw", {"rows", "cols", "dataflow"}) == "dataflow");
  CHECK(nearest_spelling("banana", {"rows", "cols", "dataflow"}).empty());
}
