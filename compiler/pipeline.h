// The compiler pipeline: model description -> graph IR -> kernels -> tiles -> program.
// `compile_graph` is the whole pipeline as one readable function (pipeline.cpp); every stage
// can be printed (`--emit`), printed after a pass (`--print-after`) and timed (`--time-passes`).
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "compiler/kernels.h"
#include "compiler/passes/passes.h"
#include "ir/graph.h"
#include "ir/program.h"
#include "ir/resource_limits.h"
#include "simulator/arch.h"

namespace tpusim {

// Names of the passes in the order they run.
std::vector<std::string> pass_names();

struct CompileOptions {
  LoweringOptions lowering;
  // Run the model in this element type instead of its own (int8 <-> bf16): every int8 value
  // becomes bf16 and int32 biases fp32 (or back), with seeded data. Empty: the model's type.
  std::optional<DType> model_type;
  std::vector<std::string> print_after;  // pass names; their output goes to `log`
  bool time_passes = false;
  // limits.max_program_instructions bounds the program (checked when tiling, before emitting).
  ResourceLimits limits;
  // When set, --print-after and --time-passes output is written here as each pass finishes
  // (so it is not lost when a later pass fails) instead of collected in CompileResult::log.
  std::ostream* log_stream = nullptr;
  // Called as each pass starts, with its name (a progress display).
  std::function<void(const std::string&)> on_pass;
};

struct CompileResult {
  Graph graph;            // shape-inferred
  KernelModule kernels;   // tiled
  Program program;
  std::string log;        // --print-after and --time-passes output
  // The program tensor of each graph value (-1 when the program does not use it).
  std::vector<int> tensor_of_value;
};

CompileResult compile_graph(Graph graph, const ArchConfig& arch, const CompileOptions& options);

// The first pass alone (retype if asked, infer shapes, verify): what `--emit graph` prints. It
// needs no machine, so it works for graphs the later passes cannot lower yet.
void prepare_graph(Graph& graph, const CompileOptions& options);

// The model in another element type (see CompileOptions::model_type). Weights read from
// files keep their type, so they are an error here.
void retype_graph(Graph& graph, DType type);

// What a file given on the command line is, by its extension.
enum class InputKind : uint8_t {
  ModelYaml,  // *.yaml, *.yml: the model format (docs/model-format.md)
  Graph,      // *.graph: the graph IR's text form (docs/graph-format.md)
  Program,    // *.tpu: a program (docs/program-format.md)
  ScaleSimTopology,  // *.csv: a SCALE-Sim topology, conv or GEMM layers (docs/scalesim.md)
};
// An error naming the file for an extension tpusim does not read (an ONNX model, anything
// else), saying what it does read.
InputKind input_kind(const std::string& path);

// Loads a model description by file type: *.yaml / *.yml (the model format), *.graph (the
// graph IR's text form) or *.csv (a SCALE-Sim topology, read with the default options). A model
// whose inputs and weights need more than limits.max_memory_bytes is refused before any of
// their data is made.
Graph load_model(const std::string& path, const ResourceLimits& limits = {});

}  // namespace tpusim
