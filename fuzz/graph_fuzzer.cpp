// Fuzzes the graph IR text reader: parse_graph (which infers shapes), then verify_graph. A
// graph that parses must print to text that parses and prints to the same text (the round
// trip of docs/graph-format.md).
#include <vector>

#include "fuzz/fuzz_support.h"
#include "ir/graph.h"

using namespace tpusim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = fuzz::as_text(data, size);
  auto graph = fuzz::accepted([&] { return parse_graph(text, "fuzz.graph"); });
  if (!graph) return 0;
  std::vector<Error> problems = verify_graph(*graph);
  (void)problems;
  std::string printed = print_graph(*graph);
  std::string reprinted = print_graph(parse_graph(printed, "fuzz-printed.graph"));
  if (reprinted != printed) {
    fuzz::property_failed("print(parse(print(g))) differs from print(g)", printed, reprinted);
  }
  return 0;
}
