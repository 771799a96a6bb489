// `tpusim run MODEL.yaml` end to end on the small example models: compile, simulate, check the
// outputs against the reference implementation, and hold the report's figures to what the
// model implies (MACs, DRAM traffic, cycles per cause).
#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/pipeline.h"
#include "ir/dtype.h"
#include "ir/graph.h"
#include "model_checks.h"
#include "test_util.h"

using namespace tpusim;
using test::require_bit_exact;
using test::run_with_json;
using test::run_tpusim;

namespace {

// The report's line "model MACs X (graph), Y useful MACs simulated".
struct MacsLine {
  int64_t graph = -1, simulated = -1;
};

MacsLine macs_line(const std::string& report) {
  // (Read without <regex>, whose GCC 12 headers warn under the sanitizers.)
  const size_t at = report.find("model MACs ");
  REQUIRE(at != std::string::npos);
  std::istringstream line(report.substr(at + 11));
  MacsLine macs;
  std::string graph_word, useful_word;
  line >> macs.graph >> graph_word >> macs.simulated >> useful_word;
  REQUIRE(graph_word == "(graph),");
  REQUIRE(useful_word == "useful");
  return macs;
}

int64_t value_bytes(const Value& v) { return v.element_count() * dtype_size(v.dtype); }

// Bytes the program must move at least once: every input and weight read, every output written.
int64_t model_bytes(const Graph& graph) {
  int64_t bytes = 0;
  for (const auto& v : graph.values) {
    if (v.kind == ValueKind::Input || v.kind == ValueKind::Weight) bytes += value_bytes(v);
  }
  for (int o : graph.outputs) bytes += value_bytes(graph.values[static_cast<size_t>(o)]);
  return bytes;
}

Graph load(const std::string& path) { return load_model(test::source_dir() + "/" + path); }

int64_t dram_bytes(const nlohmann::json& report) {
  return report["totals"]["bytes"]["dram"]["read"].get<int64_t>() +
         report["totals"]["bytes"]["dram"]["written"].get<int64_t>();
}

struct ModelRun {
  std::string model, arch, fidelity;
};

}  // namespace

TEST_CASE("models: compiled, simulated and bit-exact with the reference", "[model][run]") {
  const std::vector<ModelRun> runs = {
      {"examples/models/tiny-cnn.yaml", "teach-4x4", "fast"},
      {"examples/models/tiny-cnn.yaml", "edge-32x32", "fast"},
      {"examples/models/tcn.yaml", "edge-32x32", "fast"},
      {"examples/models/tiny-cnn.yaml", "teach-4x4", "pe"},
  };
  for (const auto& run : runs) {
    DYNAMIC_SECTION(run.model << " on " << run.arch << " at fidelity " << run.fidelity) {
      test::CommandResult r;
      auto json = run_with_json("run " + run.model + " --arch " + run.arch + " --check --fidelity " + run.fidelity, r);
      require_bit_exact(r, json);

      // Every MAC of the graph is simulated, and no other.
      Graph graph = load(run.model);
      MacsLine macs = macs_line(r.out);
      CHECK(macs.graph == graph_macs(graph));
      CHECK(macs.simulated == macs.graph);
      CHECK(json["totals"]["macs"]["useful"].get<int64_t>() == macs.simulated);
      const test::ReportMacs report = test::report_macs(json);
      CHECK(report.graph == macs.graph);
      CHECK(report.on_vpu + report.useful == report.graph);
      // Useful MACs never exceed what the mapped (padded) tiles occupied.
      CHECK(json["totals"]["macs"]["useful"].get<int64_t>() <= json["totals"]["macs"]["mapped"].get<int64_t>());
      CHECK(json["totals"]["mapping_efficiency"].get<double>() <= 1.0);

      // The inputs and weights are read and the outputs written at least once.
      CHECK(dram_bytes(json) >= model_bytes(graph));

      // Each unit's cycles by cause sum to the total.
      const int64_t total = json["total_cycles"].get<int64_t>();
      CHECK(total > 0);
      for (const auto& unit : {"dma", "mxu", "vpu"}) {
        INFO(unit);
        int64_t sum = 0;
        for (const auto& [cause, cycles] : json["totals"]["unit_cycles"][unit].items()) sum += cycles.get<int64_t>();
        CHECK(sum == total);
      }
    }
  }
}

TEST_CASE("models: both fidelities agree on tiny-cnn's cycles and traffic", "[model][run][fidelity]") {
  test::CommandResult fast_run, pe_run;
  auto fast = run_with_json("run examples/models/tiny-cnn.yaml --arch teach-4x4 -q --fidelity fast", fast_run);
  auto pe = run_with_json("run examples/models/tiny-cnn.yaml --arch teach-4x4 -q --fidelity pe", pe_run);
  CHECK(fast["total_cycles"] == pe["total_cycles"]);
  CHECK(fast["totals"]["unit_cycles"] == pe["totals"]["unit_cycles"]);
  CHECK(fast["totals"]["bytes"] == pe["totals"]["bytes"]);
}

TEST_CASE("models: a depthwise convolution on the VPU is not counted as array MACs", "[model][run][depthwise]") {
  const std::string model = "examples/models/tiny-cnn.yaml";
  Graph graph = load(model);
  int64_t depthwise_macs = 0;
  for (const auto& op : graph.ops) {
    if (op.kind == OpKind::Conv && op.attr_int("groups", 1) > 1) depthwise_macs += op_macs(graph, op);
  }
  REQUIRE(depthwise_macs == 4 * 4 * 4 * 3 * 3);  // dw: [1, 4, 4, 4] outputs, one 3x3 filter each

  for (const std::string arch : {"teach-4x4", "edge-32x32"}) {
    DYNAMIC_SECTION(arch) {
      test::CommandResult r;
      auto json = run_with_json("run " + model + " --arch " + arch + " --check --depthwise vpu", r);
      require_bit_exact(r, json);
      CHECK(r.out.find("-> VPU (forced by --depthwise)") != std::string::npos);
      MacsLine macs = macs_line(r.out);
      CHECK(macs.graph == graph_macs(graph));
      CHECK(macs.graph - macs.simulated == depthwise_macs);
      CHECK(test::report_macs(json).on_vpu == depthwise_macs);

      // Forced onto the MXU, every MAC is the array's again.
      test::CommandResult mxu;
      auto mxu_json = run_with_json("run " + model + " --arch " + arch + " --check --depthwise mxu", mxu);
      require_bit_exact(mxu, mxu_json);
      CHECK(test::report_macs(mxu_json).on_vpu == 0);
      MacsLine mxu_macs = macs_line(mxu.out);
      CHECK(mxu_macs.simulated == mxu_macs.graph);
    }
  }
}

// Observed DRAM bytes (read + written), default fidelity:
//   tiny-cnn on teach-4x4:  buffer 4746, dma 5970, materialize 10834
//   tiny-cnn on edge-32x32: buffer 4470, dma 5826, materialize 10690
//   tcn on edge-32x32:      buffer 259072, dma 298128, materialize 437392
// Materializing writes every im2col matrix to DRAM and reads it back, so it moves the most;
// the DMA walk re-reads each input element once per tap that reaches it, which here lies in
// between, but only materialize > buffer is a property of the modes.
TEST_CASE("models: materialized im2col moves more DRAM bytes than im2col in the buffer", "[model][run][im2col]") {
  const std::vector<ModelRun> runs = {
      {"examples/models/tiny-cnn.yaml", "teach-4x4", "fast"},
      {"examples/models/tiny-cnn.yaml", "edge-32x32", "fast"},
      {"examples/models/tcn.yaml", "edge-32x32", "fast"},
  };
  for (const auto& run : runs) {
    DYNAMIC_SECTION(run.model << " on " << run.arch) {
      std::map<std::string, int64_t> bytes;
      for (const std::string mode : {"buffer", "dma", "materialize"}) {
        test::CommandResult r;
        auto json = run_with_json("run " + run.model + " --arch " + run.arch + " --check --im2col " + mode, r);
        require_bit_exact(r, json);
        bytes[mode] = dram_bytes(json);
        MacsLine macs = macs_line(r.out);
        CHECK(macs.simulated == macs.graph);
      }
      INFO("buffer " << bytes["buffer"] << ", dma " << bytes["dma"] << ", materialize " << bytes["materialize"]);
      CHECK(bytes["materialize"] > bytes["buffer"]);
      CHECK(bytes["buffer"] >= model_bytes(load(run.model)));
    }
  }
}

TEST_CASE("models: the teaching attention passes --check with both lowerings on teach-4x4", "[model][run][attention]") {
  const std::string model = "examples/models/attention-teach.yaml --arch teach-4x4 --set mxu.operand_type=bf16";
  std::map<std::string, int64_t> dram;
  for (const std::string lowering : {"flash", "materialized"}) {
    DYNAMIC_SECTION(lowering) {
      test::CommandResult r;
      nlohmann::json report = run_with_json("run " + model + " --check --attention " + lowering, r);
      INFO(r.out);
      // Every kernel compared element by element (q, k, v and the attention), the output within
      // its end-to-end bound of the fp64 evaluation.
      REQUIRE(report.contains("check"));
      const auto& check = report["check"];
      CHECK(check["ok"] == true);
      CHECK(check["kernels"]["checked"] == 4);
      CHECK(check["kernels"]["failed"] == 0);
      for (const auto& k : check["kernel_results"]) CHECK(k["mismatches"] == 0);
      REQUIRE(check["outputs"].size() == 1);
      CHECK(check["outputs"][0]["ok"] == true);
      CHECK(check["outputs"][0]["relative_rms_error"].get<double>() <= check["outputs"][0]["bound"].get<double>());
      CHECK(r.out.find("attention, " + lowering + ": score tiles 4x4 per head, 3 computed of 4 (1 full, 2 partial), 1 "
                       "empty skipped") != std::string::npos);
      // The JSON report says the same.
      REQUIRE(report["attention"].size() == 1);
      const auto& tiles = report["attention"][0]["score_tiles_per_head"];
      CHECK(report["attention"][0]["lowering"] == lowering);
      CHECK(tiles["computed"] == 3);
      CHECK(tiles["empty"] == 1);
      CHECK(tiles["partial"] == 2);
      // The skipped tile's MACs are not simulated: the graph counts all four tiles.
      const MacsLine macs = macs_line(r.out);
      CHECK(macs.graph - macs.simulated == 2 * 4 * 4 * 4);
    }
  }
}

// The helper the model suites rely on reads counts, so a check with one kernel or one output
// that is not bit-exact (or no check at all) is reported, even though its text says "bit-exact".
TEST_CASE("models: the bit-exact helper fails on a check that is not bit-exact", "[model][run][check]") {
  test::CommandResult r;
  nlohmann::json good = run_with_json("run examples/models/tiny-cnn.yaml --arch teach-4x4 -q --check", r);
  CHECK(test::bit_exact_problems(good) == "");

  nlohmann::json kernel = good;
  kernel["check"]["kernels"]["bit_exact"] = kernel["check"]["kernels"]["checked"].get<int64_t>() - 1;
  kernel["check"]["kernel_results"][1]["bit_exact"] = false;
  CHECK(test::bit_exact_problems(kernel) == "6 of 7 kernels bit-exact\nkernel dw is not bit-exact\n");

  nlohmann::json output = good;
  output["check"]["outputs"][0]["bit_exact"] = false;
  CHECK(test::bit_exact_problems(output) == "output fc is not bit-exact\n");

  nlohmann::json none = good;
  none["check"]["kernels"]["checked"] = 0;
  none["check"]["kernels"]["bit_exact"] = 0;
  none["check"]["kernel_results"] = nlohmann::json::array();
  none["check"]["outputs"] = nlohmann::json::array();
  CHECK(test::bit_exact_problems(none) == "no kernel was checked\nno output was checked\n");

  nlohmann::json unchecked = run_with_json("run examples/models/tiny-cnn.yaml --arch teach-4x4 -q", r);
  CHECK(test::bit_exact_problems(unchecked) == "the report has no check (run with --check)\n");
}
