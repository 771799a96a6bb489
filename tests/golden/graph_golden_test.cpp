// Golden tests for the graph text format: each tests/golden/graphs/NAME.graph is parsed (which
// runs shape inference) and printed, and the text must equal NAME.expected.graph beside it;
// the expected text itself must survive print -> parse -> print unchanged.
//
// To accept new output after a deliberate change to the printer, run the suite with
// TPUSIM_UPDATE_GOLDEN=1 and review the diff of the .expected.graph files before committing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "test_util.h"

using namespace tpusim;

namespace {

// Every golden graph, by name. A new file in graphs/ must be added here (a test case checks
// that none is forgotten).
const std::vector<std::string> kGoldenGraphs = {
    "cnn",            // int8 CNN: conv, relu, clip, pools, flatten, linear, gelu; inferred types and scales
    "conv-variants",  // 1-D, dilated, grouped, depthwise, strided, asymmetric pads; int32 and fp32 results
    "transformer",    // bf16 block: layernorm, linear, attention (GQA, causal, window, mask), add, mul, matmul, softmax
    "data-movement",  // concat, flatten, reshape, transpose, broadcasting add/mul, 1-D pools, float clip with -inf
    "syntax",         // tabs, CRLF, comments, names with '.', escapes, float spellings, output before definitions
};

std::string graphs_dir() { return std::string(TPUSIM_TEST_DATA) + "/golden/graphs"; }

bool updating() {
  const char* update = std::getenv("TPUSIM_UPDATE_GOLDEN");
  return update != nullptr && std::string(update) == "1";
}

}  // namespace

TEST_CASE("golden graphs print canonically and round-trip", "[golden][graph]") {
  for (const auto& name : kGoldenGraphs) {
    DYNAMIC_SECTION(name) {
      std::string input_path = graphs_dir() + "/" + name + ".graph";
      std::string expected_path = graphs_dir() + "/" + name + ".expected.graph";
      Graph graph = parse_graph(test::read_text_file(input_path), name + ".graph");
      CHECK(verify_graph(graph).empty());
      std::string printed = print_graph(graph);
      if (updating()) test::write_text_file(expected_path, printed);
      std::string expected = test::read_text_file(expected_path);
      CHECK(printed == expected);

      // print -> parse -> print is byte-identical.
      Graph reparsed = parse_graph(expected, name + ".expected.graph");
      CHECK(print_graph(reparsed) == expected);
    }
  }
}

TEST_CASE("the golden graphs use every op kind", "[golden][graph]") {
  std::set<OpKind> used;
  for (const auto& name : kGoldenGraphs) {
    Graph graph = parse_graph(test::read_text_file(graphs_dir() + "/" + name + ".graph"), name + ".graph");
    for (const auto& op : graph.ops) used.insert(op.kind);
  }
  for (int k = 0; k < kOpKindCount; ++k) {
    INFO(op_info(static_cast<OpKind>(k)).name);
    CHECK(used.count(static_cast<OpKind>(k)) == 1);
  }
}

TEST_CASE("every golden graph in the directory is listed", "[golden][graph]") {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(graphs_dir())) {
    std::string file = entry.path().filename().string();
    const std::string expected_suffix = ".expected.graph";
    if (file.size() > expected_suffix.size() &&
        file.compare(file.size() - expected_suffix.size(), expected_suffix.size(), expected_suffix) == 0) {
      file = file.substr(0, file.size() - expected_suffix.size()) + ".graph";
    }
    INFO(file);
    REQUIRE(file.size() > 6);
    REQUIRE(file.compare(file.size() - 6, 6, ".graph") == 0);
    std::string name = file.substr(0, file.size() - 6);
    CHECK(std::find(kGoldenGraphs.begin(), kGoldenGraphs.end(), name) != kGoldenGraphs.end());
    found.push_back(name);
  }
  for (const auto& name : kGoldenGraphs) {
    INFO(name);
    CHECK(std::count(found.begin(), found.end(), name) == 2);  // NAME.graph and NAME.expected.graph
  }
}
