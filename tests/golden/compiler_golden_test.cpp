// Golden tests for the compiler: each model is compiled for a machine with every pass printed
// (`--print-after` for all of them), and the text after each pass must equal
// tests/golden/compiler/MODEL[.ARCH].after-PASS.expected. The passes that do not look at the
// machine (infer-shapes, unroll) have one file per model, shared by every machine it is
// compiled for; the others have one per model and machine.
//
// To accept new output after a deliberate change to a pass or a printer, run the suite with
// TPUSIM_UPDATE_GOLDEN=1 and review the diff of the .expected files before committing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "compiler/pipeline.h"
#include "ir/graph.h"
#include "ir/program.h"
#include "simulator/arch.h"
#include "test_util.h"

using namespace tpusim;

namespace {

struct GoldenCase {
  std::string model;  // the golden files' prefix
  std::string path;   // relative to the source tree's root
  std::string arch;   // a preset, with `overrides` applied; the files say `arch_label` (default: arch)
  std::vector<std::string> overrides = {};
  AttentionLowering attention = AttentionLowering::Flash;
  std::string arch_label = "";
};

// Every model and machine compiled here. A new file in compiler/ must come from one of these
// (a test case checks that none is forgotten).
const std::vector<GoldenCase> kGoldenCases = {
    // conv + relu, depthwise 3x3/2 (on teach-4x4 and edge-32x32 the depthwise pass may choose
    // different units), pointwise, strided projection, residual add, global pool, linear
    {"tiny-cnn", "examples/models/tiny-cnn.yaml", "teach-4x4"},
    {"tiny-cnn", "examples/models/tiny-cnn.yaml", "edge-32x32"},
    // 1-D dilated causal convolutions and residual adds
    {"tcn", "examples/models/tcn.yaml", "edge-32x32"},
    // maxpool, padded avgpool, concat, a clip of its own, transpose, flatten; relu6 and a clip fused
    {"pool-concat", "tests/golden/models/pool-concat.yaml", "teach-4x4"},
    {"pool-concat", "tests/golden/models/pool-concat.yaml", "edge-32x32"},
    // attention, both lowerings: causal 8 x 8 in 4 x 4 score tiles (one empty, two partial);
    // materialized keeps the scores on chip
    {"attention-teach-flash", "examples/models/attention-teach.yaml", "teach-4x4", {"mxu.operand_type=bf16"},
     AttentionLowering::Flash, "teach-4x4-bf16"},
    {"attention-teach-materialized", "examples/models/attention-teach.yaml", "teach-4x4", {"mxu.operand_type=bf16"},
     AttentionLowering::Materialized, "teach-4x4-bf16"},
    // grouped kv heads and a causal window of 3 over 6 tokens; materialized spills its scores
    // to DRAM in a 512-byte unified buffer
    {"attention-window-flash", "tests/golden/models/attention-window.yaml", "teach-4x4",
     {"mxu.operand_type=bf16", "unified_buffer.bytes=512"}, AttentionLowering::Flash, "teach-4x4-bf16-512"},
    {"attention-window-materialized", "tests/golden/models/attention-window.yaml", "teach-4x4",
     {"mxu.operand_type=bf16", "unified_buffer.bytes=512"}, AttentionLowering::Materialized, "teach-4x4-bf16-512"},
};

// The passes whose output does not depend on the machine.
const std::set<std::string> kMachineIndependent = {"infer-shapes", "unroll"};

std::string golden_dir() { return std::string(TPUSIM_TEST_DATA) + "/golden/compiler"; }

bool updating() {
  const char* update = std::getenv("TPUSIM_UPDATE_GOLDEN");
  return update != nullptr && std::string(update) == "1";
}

std::string expected_file(const GoldenCase& c, const std::string& pass) {
  std::string stem = kMachineIndependent.count(pass) ? c.model : c.model + "." + (c.arch_label.empty() ? c.arch : c.arch_label);
  return stem + ".after-" + pass + ".expected";
}

CompileOptions print_every_pass() {
  CompileOptions options;
  options.print_after = pass_names();
  return options;
}

ArchConfig case_arch(const GoldenCase& c) { return load_arch(c.arch, c.overrides); }

CompileResult compile_case(const GoldenCase& c, CompileOptions options) {
  options.lowering.attention = c.attention;
  return compile_graph(load_model(test::source_dir() + "/" + c.path), case_arch(c), options);
}

// Splits the pipeline's log into the text printed after each pass. The log is the sequence
// "# after PASS\n<text>" in the order the passes run.
std::map<std::string, std::string> split_log(const std::string& log) {
  std::map<std::string, std::string> stages;
  const auto names = pass_names();
  size_t at = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string header = "# after " + names[i] + "\n";
    REQUIRE(log.compare(at, header.size(), header) == 0);
    at += header.size();
    size_t end = log.size();
    if (i + 1 < names.size()) {
      end = log.find("# after " + names[i + 1] + "\n", at);
      REQUIRE(end != std::string::npos);
    }
    stages[names[i]] = log.substr(at, end - at);
    at = end;
  }
  return stages;
}

}  // namespace

TEST_CASE("the text after every pass matches its golden file", "[golden][compiler]") {
  for (const auto& c : kGoldenCases) {
    DYNAMIC_SECTION(c.model << " on " << c.arch) {
      CompileResult result = compile_case(c, print_every_pass());
      auto stages = split_log(result.log);
      REQUIRE(stages.size() == pass_names().size());

      // The log shows what the pipeline returns.
      CHECK(stages["infer-shapes"] == print_graph(result.graph));
      CHECK(stages["tile"] == print_kernels(result.kernels, true));
      CHECK(stages["emit"] == print_program(result.program));

      for (const auto& pass : pass_names()) {
        INFO("pass " << pass);
        std::string path = golden_dir() + "/" + expected_file(c, pass);
        if (updating()) test::write_text_file(path, stages[pass]);
        CHECK(stages[pass] == test::read_text_file(path));
      }
    }
  }
}

TEST_CASE("compiling twice gives byte-identical text", "[golden][compiler][determinism]") {
  for (const auto& c : kGoldenCases) {
    DYNAMIC_SECTION(c.model << " on " << c.arch) {
      CompileResult first = compile_case(c, print_every_pass());
      CompileResult second = compile_case(c, print_every_pass());
      CHECK(first.log == second.log);
      CHECK(print_program(first.program) == print_program(second.program));
      CHECK(first.tensor_of_value == second.tensor_of_value);
      // Printing a pass's output does not change what the pipeline produces.
      CompileResult quiet = compile_case(c, CompileOptions{});
      CHECK(quiet.log.empty());
      CHECK(print_program(quiet.program) == print_program(first.program));
    }
  }
}

TEST_CASE("the compiled program and graph survive print -> parse -> print", "[golden][compiler][roundtrip]") {
  for (const auto& c : kGoldenCases) {
    DYNAMIC_SECTION(c.model << " on " << c.arch) {
      CompileResult result = compile_case(c, CompileOptions{});
      std::string program_text = print_program(result.program);
      Program reparsed = parse_program(program_text, c.model + ".tpu");
      CHECK(print_program(reparsed) == program_text);
      // The reparsed program still verifies against the machine it was compiled for.
      CHECK(verify_program(reparsed, target_limits(case_arch(c))).empty());

      std::string graph_text = print_graph(result.graph);
      Graph graph = parse_graph(graph_text, c.model + ".graph");
      CHECK(print_graph(graph) == graph_text);
    }
  }
}

TEST_CASE("every golden compiler file in the directory is expected", "[golden][compiler]") {
  std::set<std::string> expected;
  for (const auto& c : kGoldenCases) {
    for (const auto& pass : pass_names()) expected.insert(expected_file(c, pass));
  }
  std::set<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(golden_dir())) {
    found.insert(entry.path().filename().string());
  }
  for (const auto& file : found) {
    INFO(file << " is not produced by any golden case (remove it or add its case)");
    CHECK(expected.count(file) == 1);
  }
  for (const auto& file : expected) {
    INFO(file << " is missing (run with TPUSIM_UPDATE_GOLDEN=1)");
    CHECK(found.count(file) == 1);
  }
}
