#include "compiler/pipeline.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/frontend/scalesim_topology.h"
#include "compiler/frontend/yaml_model.h"

namespace tpusim {

std::vector<std::string> pass_names() {
  return {"infer-shapes", "unroll", "depthwise", "allocate", "tile", "emit"};
}

InputKind input_kind(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".yaml" || ext == ".yml") return InputKind::ModelYaml;
  if (ext == ".graph") return InputKind::Graph;
  if (ext == ".tpu") return InputKind::Program;
  const SourceLocation where{path, 0, 0, ""};
  if (ext == ".onnx") {
    throw Error(where, "ONNX models are not read yet; describe the model in the model format (.yaml, "
                       "docs/model-format.md)");
  }
  if (ext == ".csv") return InputKind::ScaleSimTopology;
  throw Error(where, fmt::format("{}; tpusim reads models (.yaml, .graph, .csv) and programs (.tpu)",
                                 ext.empty() ? std::string("a file without an extension")
                                             : fmt::format("unknown file type '{}'", ext)));
}

Graph load_model(const std::string& path, const ResourceLimits& limits) {
  const InputKind kind = input_kind(path);
  if (kind == InputKind::Program) {
    throw Error({path, 0, 0, ""}, "is a program, not a model; run it with `tpusim run`, or give a model (.yaml, .graph, "
                                  ".csv)");
  }
  if (kind == InputKind::ScaleSimTopology) return load_scalesim_topology(path, {}, limits);
  if (kind == InputKind::Graph) return parse_graph([&] {
      std::ifstream in(path, std::ios::binary);
      if (!in) throw Error({path, 0, 0, ""}, "cannot open file (check the path)");
      std::ostringstream text;
      text << in.rdbuf();
      return text.str();
    }(), path);
  return load_model_yaml(path, limits);
}

void retype_graph(Graph& graph, DType type) {
  const bool to_float = type == DType::BF16;
  for (auto& v : graph.values) {
    if (!v.weight_file.empty()) {
      throw Error(v.location, fmt::format("'{}' is read from {}, which holds {} data; models run in another type "
                                          "need seeded weights", v.name, v.weight_file, dtype_name(v.dtype)));
    }
    if (to_float) {
      if (v.dtype == DType::Int8) v.dtype = DType::BF16;
      if (v.dtype == DType::Int32) v.dtype = DType::FP32;
      v.scale = 0;
    } else {
      if (v.dtype == DType::BF16) v.dtype = DType::Int8;
      if (v.dtype == DType::FP32) v.dtype = DType::Int32;
      if (v.dtype == DType::Int8 && v.scale == 0) {
        throw Error(v.location, fmt::format("'{}' has no quantization scale, so the model cannot run as int8", v.name));
      }
    }
  }
}

namespace {

// Runs one pass: times it, checks it, prints its result when asked.
class PassRunner {
 public:
  PassRunner(const CompileOptions& options, std::string& log) : options_(options), log_(log) {}

  template <typename Pass, typename Printer>
  void run(const std::string& name, Pass&& pass, Printer&& print) {
    if (options_.on_pass) options_.on_pass(name);
    auto start = std::chrono::steady_clock::now();
    pass();
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options_.time_passes) write(fmt::format("pass {:<14} {:9.3f} ms\n", name, seconds * 1e3));
    if (std::find(options_.print_after.begin(), options_.print_after.end(), name) != options_.print_after.end()) {
      write(fmt::format("# after {}\n{}", name, print()));
    }
  }

 private:
  void write(const std::string& text) {
    if (options_.log_stream) {
      *options_.log_stream << text << std::flush;
    } else {
      log_ += text;
    }
  }

  const CompileOptions& options_;
  std::string& log_;
};

}  // namespace

void prepare_graph(Graph& graph, const CompileOptions& options) {
  if (options.model_type) retype_graph(graph, *options.model_type);
  infer_shapes(graph);
  auto problems = verify_graph(graph);
  if (!problems.empty()) throw problems.front();
}

CompileResult compile_graph(Graph graph, const ArchConfig& arch, const CompileOptions& options) {
  for (const auto& name : options.print_after) {
    auto names = pass_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string hint = nearest_spelling(name, names);
      throw Error(fmt::format("--print-after: unknown pass '{}'{}; the passes are {}", name,
                              hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), fmt::join(names, ", ")));
    }
  }
  CompileResult result;
  PassRunner passes(options, result.log);

  passes.run(
      "infer-shapes",
      [&] { prepare_graph(graph, options); },
      [&] { return print_graph(graph); });
  passes.run("unroll", [&] { result.kernels = unroll_to_kernels(graph, options.lowering); },
             [&] { return print_kernels(result.kernels, false); });
  passes.run("depthwise", [&] { choose_depthwise_strategy(result.kernels, arch, options.lowering); },
             [&] { return print_kernels(result.kernels, false); });
  passes.run("allocate", [&] { allocate_buffers(result.kernels, arch, options.lowering.on_chip); },
             [&] { return print_kernels(result.kernels, false); });
  passes.run("tile", [&] { tile_kernels(result.kernels, arch, options.limits.max_program_instructions); }, [&] { return print_kernels(result.kernels, true); });
  passes.run(
      "emit",
      [&] {
        result.program = emit_program(result.kernels, arch, &result.tensor_of_value, options.limits.max_program_instructions);
        // The emitted program must verify: a failure here is a compiler bug, not user error.
        auto problems = verify_program(result.program, target_limits(arch));
        if (!problems.empty()) {
          internal_error(__FILE__, __LINE__, std::string("compiled program does not verify: ") + problems.front().what());
        }
      },
      [&] { return print_program(result.program); });
  result.graph = std::move(graph);
  return result;
}

}  // namespace tpusim
