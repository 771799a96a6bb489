// Inputs that once crashed, hung, took too long or broke a round trip, found by the fuzz
// targets or while writing them (docs/fuzzing.md), with what each gives now. Bad inputs small
// enough to keep as files live with their format in tests/errors/; the ones here are made in
// memory (their size is the point, or they are a family of valid models).
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "ir/diagnostics.h"
#include "ir/graph.h"
#include "ir/program.h"
#include "model_checks.h"
#include "test_util.h"

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

TEST_CASE("a comment ending in carriage returns prints back as it reads", "[fuzz][errors]") {
  // One '\r' was taken as a CRLF line end, so each round trip lost one more.
  const std::string text = "# a comment\r\r\r\ntensor x int8 [4] input  # after x\r\r\n";
  Program program = parse_program(text, "cr.tpu");
  const std::string printed = print_program(program);
  CHECK(printed == "# a comment\ntensor x int8 [4] input  # after x\n");
  CHECK(print_program(parse_program(printed, "cr-printed.tpu")) == printed);
}

TEST_CASE("a linear layer on a value of any rank compiles and is bit-exact", "[fuzz][model]") {
  // Rank 4 stored its rows into the wrong dimension (an internal error: the program did not
  // verify); rank 1 divided by zero. The layer's rows are all leading indices in order.
  const std::string dir = test::make_temp_dir("linear-rank");
  for (const std::string shape : {"[6]", "[4, 6]", "[2, 4, 6]", "[1, 3, 6, 6]", "[2, 3, 5, 2, 6]"}) {
    const std::string path = dir + "/linear.yaml";
    test::write_text_file(path, "name: linear_rank\ntype: int8\nseed: 7\ninputs:\n  x: {shape: " + shape +
                                    ", scale: 0.02}\nlayers:\n  - linear: {name: fc, out_features: 5}\n"
                                    "outputs: [fc]\n");
    for (const std::string arch : {"teach-4x4", "edge-32x32"}) {
      INFO(shape << " on " << arch);
      test::CommandResult r;
      const auto report = test::run_with_json("run " + path + " --arch " + arch + " --check -q", r);
      test::require_bit_exact(r, report);
    }
  }
}
