// Fuzzes the SCALE-Sim topology reader: parse_scalesim_topology (conv and GEMM layouts), then
// the compiler's first pass (prepare_graph). Topologies small enough to compile quickly also
// go through the whole compiler for teach-4x4, whose output must verify against the machine
// (fuzz/graph_targets.h).
#include "compiler/frontend/scalesim_topology.h"
#include "fuzz/graph_targets.h"

using namespace tpusim;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::teach_4x4();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = fuzz::as_text(data, size);
  auto graph = fuzz::accepted([&] {
    Graph g = parse_scalesim_topology(text, "fuzz.csv", ScaleSimOptions{}, fuzz::reader_limits());
    prepare_graph(g, CompileOptions{});
    return g;
  });
  if (graph) fuzz::compile_if_small(*graph);
  return 0;
}
