// Inputs that once crashed, hung or took too long in a reader, found by the fuzz targets or
// while writing them (docs/fuzzing.md), with the exact message each gives now. Inputs small
// enough to keep as files live with their format in tests/errors/; the ones here are made in
// memory because only their size matters.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "ir/diagnostics.h"
#include "ir/graph.h"
#include "ir/program.h"

using namespace tpusim;

namespace {

template <typename Read>
std::string error_of(Read&& read, double& seconds) {
  auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    read();
  } catch (const Error& e) {
    message = e.what();
  }
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return message;
}

// Far above what a linear reader needs for these inputs (well under a second in Release, a
// few seconds under the sanitizers), far below what a quadratic one did (minutes).
constexpr double kSecondsAllowed = 60;
constexpr int kDeclarations = 200000;

}  // namespace

TEST_CASE("many tensor and token declarations read in linear time", "[fuzz][errors]") {
  // The names were looked up by searching every earlier declaration.
  std::string text;
  for (int i = 0; i < kDeclarations; ++i) text += "tensor T" + std::to_string(i) + " int8 [1] input\n";
  for (int i = 0; i < kDeclarations; ++i) text += "token t" + std::to_string(i) + " dma -> mxu\n";
  text += "token t7 dma -> mxu\n";
  double seconds = 0;
  CHECK(error_of([&] { parse_program(text, "many.tpu"); }, seconds) ==
        "many.tpu:400001:7: error: token 't7' is declared twice (first at line 200008)");
  CHECK(seconds < kSecondsAllowed);
}

TEST_CASE("a long chain of graph values reads in linear time", "[fuzz][errors]") {
  // Each definition searched every earlier value, twice (the parser's check, Graph::add_value's).
  std::string text = "graph chain\ninput x0 : fp32[1,4]\n";
  for (int i = 1; i < kDeclarations; ++i) {
    text += "value x" + std::to_string(i) + " = relu(x" + std::to_string(i - 1) + ")\n";
  }
  text += "value x5 = relu(x0)\n";
  double seconds = 0;
  CHECK(error_of([&] { parse_graph(text, "chain.graph"); }, seconds) ==
        "chain.graph:200002:7: error: value 'x5' is defined twice (first at line 7)");
  CHECK(seconds < kSecondsAllowed);
}
