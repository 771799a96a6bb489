// Whole networks compiled, simulated and checked against the reference implementation. Each
// takes tens of seconds, so this suite has the label `slow` and the default run leaves it out:
//   ctest --test-dir build -L slow
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "html_report_checks.h"
#include "model_checks.h"
#include "test_util.h"

using tpusim::test::run_tpusim;

namespace {

// Runs a model with --check: exit 0, nothing on stderr, every check line bit-exact.
void run_bit_exact(const std::string& arguments) {
  auto r = run_tpusim("run " + arguments + " --check");
  INFO(arguments);
  tpusim::test::require_bit_exact(r);
  // With the report printed, every MAC of the graph is simulated.
  // ("model MACs X (graph), Y useful MACs simulated", read without <regex>, whose GCC 12
  // headers warn under the sanitizers)
  const size_t at = r.out.find("model MACs ");
  if (at != std::string::npos) {
    std::istringstream line(r.out.substr(at + 11));
    std::string graph, words, simulated;
    line >> graph >> words >> simulated;
    CHECK(graph == simulated);
  }
}

}  // namespace

TEST_CASE("resnet18 on edge-32x32 is bit-exact", "[slow][model]") {
  run_bit_exact("examples/models/resnet18.yaml --arch edge-32x32 -q --no-race-check");
}

TEST_CASE("resnet50 on edge-32x32 is bit-exact", "[slow][model]") {
  run_bit_exact("examples/models/resnet50.yaml --arch edge-32x32 -q --no-race-check");
}

TEST_CASE("mobilenetv2 on edge-32x32 is bit-exact", "[slow][model]") {
  run_bit_exact("examples/models/mobilenetv2.yaml --arch edge-32x32 -q --no-race-check");
}

TEST_CASE("resnet50 on tpu-v1 is bit-exact, with race checks and the full report", "[slow][model]") {
  run_bit_exact("examples/models/resnet50.yaml --arch tpu-v1");
}

TEST_CASE("resnet50 as bf16 on tpu-v4-like matches the reference per kernel", "[slow][model]") {
  auto r = run_tpusim("run examples/models/resnet50.yaml --arch tpu-v4-like --type bf16 -q --no-race-check --check");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out.find("check: all ") != std::string::npos);
  CHECK(r.out.find("kernels match the reference on their simulated inputs") != std::string::npos);
  CHECK(r.out.find("end to end: fc: all 1000 bf16 elements within") != std::string::npos);
}

// The transformer examples, each with both attention lowerings, on the machine they were
// written for: every kernel within the float tolerance of the reference on its simulated inputs.
TEST_CASE("transformer blocks pass --check with flash and materialized attention on tpu-v4-like", "[slow][model][attention]") {
  for (const char* model : {"gpt2-block", "bert-layer", "vit-block", "sliding-window-block"}) {
    for (const char* lowering : {"flash", "materialized"}) {
      DYNAMIC_SECTION(model << " " << lowering) {
        auto r = run_tpusim(std::string("run examples/models/") + model + ".yaml --arch tpu-v4-like --no-race-check --check --attention " +
                            lowering);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        CHECK(r.err.empty());
        CHECK(r.out.find("check: all ") != std::string::npos);
        CHECK(r.out.find("kernels match the reference on their simulated inputs") != std::string::npos);
        CHECK(r.out.find(std::string("attention, ") + lowering) != std::string::npos);
      }
    }
  }
}

TEST_CASE("resnet18's HTML report opens in a browser: a bar and a roofline point per layer", "[slow][report][html]") {
  tpusim::test::check_html_report("examples/models/resnet18.yaml --arch tpu-v1 --no-race-check", "resnet18");
}

TEST_CASE("the GPT-2 block's HTML report opens in a browser: a bar and a roofline point per layer",
          "[slow][report][html]") {
  tpusim::test::check_html_report("examples/models/gpt2-block.yaml --arch tpu-v4-like --no-race-check", "gpt2-block");
}
