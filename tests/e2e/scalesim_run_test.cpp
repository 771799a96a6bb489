// `tpusim compile|run TOPOLOGY.csv` end to end: SCALE-Sim's own topology files compile to the
// GEMM shapes SCALE-Sim gives them and run bit-exact against the reference.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "model_checks.h"
#include "test_util.h"

using namespace tpusim;
using test::require_bit_exact;
using test::run_tpusim;
using test::run_with_json;

namespace {

int count_lines_starting(const std::string& text, const std::string& prefix) {
  int count = 0;
  for (size_t at = 0; at < text.size();) {
    if (text.compare(at, prefix.size(), prefix) == 0) ++count;
    const size_t end = text.find('\n', at);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return count;
}

}  // namespace

TEST_CASE("scalesim: ResNet-18's layers lower to SCALE-Sim's GEMMs", "[scalesim][cli]") {
  const auto r =
      run_tpusim("compile examples/scalesim/Resnet18.csv --arch edge-32x32 --emit lowered");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(count_lines_starting(r.out, "gemm ") == 21);
  // M = output pixels (E = ceil((H - R + s) / s)), K = R * S * C, N = filters.
  CHECK(r.out.find(
            "gemm Conv1 (conv): M=12100 K=147 N=64 A=Conv1.ifmap B=Conv1.w bias=- -> Conv1 ") !=
        std::string::npos);
  CHECK(r.out.find("gemm Conv3_s (conv): M=841 K=64 N=128 ") != std::string::npos);
  CHECK(r.out.find("gemm FC (conv): M=1 K=512 N=1000 ") != std::string::npos);
}

TEST_CASE("scalesim: SCALE-Sim's small topologies run bit-exact", "[scalesim][run]") {
  for (const char* topology :
       {"examples/scalesim/test.csv", "examples/scalesim/test_mnk_input.csv"}) {
    DYNAMIC_SECTION(topology) {
      test::CommandResult r;
      const auto json =
          run_with_json(std::string("run ") + topology + " --arch edge-32x32 --check", r);
      require_bit_exact(r, json);
      CHECK(r.out.find("tpusim report: ") == 0);
    }
  }
}

TEST_CASE("scalesim: windows past the edge and per-channel layers run bit-exact at PE level",
          "[scalesim][run]") {
  // Stride 2 over 10 rows with a 3-row filter (SCALE-Sim's last window runs past the edge), a
  // 1x1 stride-4 layer whose last window is wholly past it, and a 'DP' (depthwise) layer.
  const std::string dir = test::make_temp_dir("scalesim-edge");
  test::write_text_file(
      dir + "/edge.csv",
      "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
      "Strides,\n"
      "Edge, 10, 9, 3, 2, 3, 5, 2,\n"
      "Past, 10, 10, 1, 1, 4, 8, 4,\n"
      "Dw_DP, 9, 9, 3, 3, 6, 2, 2,\n");
  test::CommandResult r;
  const auto json =
      run_with_json("run " + dir + "/edge.csv --arch teach-4x4 --check --fidelity pe", r);
  require_bit_exact(r, json);
}

TEST_CASE("scalesim: a bad topology is a located error with exit code 1",
          "[scalesim][errors][cli]") {
  const auto r =
      run_tpusim("compile tests/errors/topologies/filter-too-tall.csv --arch edge-32x32");
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err ==
        "tests/errors/topologies/filter-too-tall.csv:3:14: error: Filter Height: is 9, more "
        "than the IFMAP Height 7: SCALE-Sim does not pad, so the filter must fit in the input; "
        "use a filter of at most 7 rows or a taller IFMAP\n");
}
