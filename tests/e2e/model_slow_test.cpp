// Whole networks compiled, simulated and checked against the reference implementation. Each
// takes tens of seconds, so this suite has the label `slow` and the default run leaves it out:
//   ctest --test-dir build -L slow
#include <catch2/catch.hpp>

#include <string>

#include "compiler/pipeline.h"
#include "html_report_checks.h"
#include "ir/graph.h"
#include "model_checks.h"
#include "test_util.h"

using namespace tpusim;
using test::run_with_json;

namespace {

// Every MAC of the graph is simulated: the array's useful MACs are the graph's, less those of
// depthwise convolutions the compiler put on the VPU. The figures come from the JSON report,
// so this holds whether or not the text report was printed.
void require_all_macs_simulated(const std::string& model, const nlohmann::json& report) {
  const test::ReportMacs macs = test::report_macs(report);
  CHECK(macs.graph == graph_macs(load_model(test::source_dir() + "/" + model)));
  CHECK(macs.useful + macs.on_vpu == macs.graph);
  CHECK(macs.useful > 0);
}

// Runs a model with --check: exit 0, nothing on stderr, every kernel and output bit-exact,
// every MAC simulated.
void run_bit_exact(const std::string& model, const std::string& arguments) {
  test::CommandResult r;
  auto report = run_with_json("run " + model + " " + arguments + " --check", r);
  INFO(arguments);
  test::require_bit_exact(r, report);
  require_all_macs_simulated(model, report);
}

// Runs a float model with --check: every kernel within its bound, every output within the
// end-to-end bound of the fp64 evaluation. Returns the report.
nlohmann::json run_float_checked(const std::string& model, const std::string& arguments, test::CommandResult& r) {
  auto report = run_with_json("run " + model + " " + arguments + " --check", r);
  INFO(r.out << r.err);
  CHECK(r.err.empty());
  const auto& check = report["check"];
  CHECK(check["ok"] == true);
  CHECK(check["kernels"]["checked"].get<int64_t>() >= 1);
  CHECK(check["kernels"]["failed"] == 0);
  for (const auto& k : check["kernel_results"]) CHECK(k["mismatches"] == 0);
  REQUIRE(check["outputs"].size() >= 1);
  for (const auto& o : check["outputs"]) {
    CHECK(o["ok"] == true);
    CHECK(o["relative_rms_error"].get<double>() <= o["bound"].get<double>());
  }
  return report;
}

}  // namespace

TEST_CASE("resnet18 on edge-32x32 is bit-exact", "[slow][model]") {
  run_bit_exact("examples/models/resnet18.yaml", "--arch edge-32x32 -q --no-race-check");
}

TEST_CASE("resnet50 on edge-32x32 is bit-exact", "[slow][model]") {
  run_bit_exact("examples/models/resnet50.yaml", "--arch edge-32x32 -q --no-race-check");
}

TEST_CASE("mobilenetv2 on edge-32x32 is bit-exact", "[slow][model]") {
  run_bit_exact("examples/models/mobilenetv2.yaml", "--arch edge-32x32 -q --no-race-check");
}

TEST_CASE("resnet50 on tpu-v1 is bit-exact, with race checks and the full report", "[slow][model]") {
  run_bit_exact("examples/models/resnet50.yaml", "--arch tpu-v1");
}

TEST_CASE("resnet50 as bf16 on tpu-v4-like matches the reference per kernel and fp64 end to end", "[slow][model]") {
  test::CommandResult r;
  auto report = run_float_checked("examples/models/resnet50.yaml", "--arch tpu-v4-like --type bf16 -q --no-race-check", r);
  require_all_macs_simulated("examples/models/resnet50.yaml", report);
  CHECK(report["check"]["outputs"][0]["name"] == "fc");
}

// The transformer examples, each with both attention lowerings, on the machine they were
// written for: every kernel within its float bound of the reference on its simulated inputs,
// the block's output within its end-to-end bound.
TEST_CASE("transformer blocks pass --check with flash and materialized attention on tpu-v4-like", "[slow][model][attention]") {
  for (const char* model : {"gpt2-block", "bert-layer", "vit-block", "sliding-window-block"}) {
    for (const char* lowering : {"flash", "materialized"}) {
      DYNAMIC_SECTION(model << " " << lowering) {
        test::CommandResult r;
        auto report = run_float_checked(std::string("examples/models/") + model + ".yaml",
                                        std::string("--arch tpu-v4-like --no-race-check --attention ") + lowering, r);
        CHECK(r.out.find(std::string("attention, ") + lowering) != std::string::npos);
        // Masked tiles are skipped, so the array does at most the graph's MACs.
        const test::ReportMacs macs = test::report_macs(report);
        CHECK(macs.useful > 0);
        CHECK(macs.useful <= macs.graph);
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
