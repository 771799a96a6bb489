// `tpusim compile MODEL --arch A -o prog.tpu`: run the compiler, write or print a stage.
#include <fstream>
#include <iostream>

#include "compiler/pipeline.h"
#include "tools/commands.h"

namespace tpusim::cli {

void add_compiler_flags(CLI::App* cmd, CompilerFlags& flags) {
  cmd->add_option("--im2col", flags.im2col,
                  "buffer: load each input window once, the MXU walks it (default); dma: the DMA walks the input "
                  "in DRAM per kernel tap; materialize: write im2col matrices to DRAM first (teaching)")
      ->check(CLI::IsMember({"buffer", "dma", "materialize"}));
  cmd->add_option("--attention", flags.attention,
                  "flash: per block of queries, key/value tiles with a running softmax; the score matrix never exists "
                  "(default); materialized: the whole score matrix, then softmax, then . v")
      ->check(CLI::IsMember({"flash", "materialized"}));
  cmd->add_option("--depthwise", flags.depthwise, "auto (the faster unit, default), mxu or vpu")
      ->check(CLI::IsMember({"auto", "mxu", "vpu"}));
  cmd->add_option("--type", flags.model_type,
                  "Run the model as int8 or bf16 instead of its own type (seeded weights; e.g. an int8 model on a "
                  "bf16 machine)")
      ->check(CLI::IsMember({"int8", "bf16"}));
  cmd->add_flag("--no-on-chip", flags.no_on_chip,
                "Send every tensor between layers through DRAM (to measure what keeping them on chip saves)");
  cmd->add_option("--print-after", flags.print_after, "Print the IR after this pass (repeatable)")->allow_extra_args(false);
  cmd->add_flag("--time-passes", flags.time_passes, "Print how long each pass took");
}

CompileOptions compile_options(const CompilerFlags& flags) {
  CompileOptions options;
  options.lowering.im2col = flags.im2col == "materialize" ? Im2colMode::Materialize
                            : flags.im2col == "dma"       ? Im2colMode::Dma
                                                          : Im2colMode::Buffer;
  options.lowering.depthwise = flags.depthwise;
  options.lowering.attention = flags.attention == "materialized" ? AttentionLowering::Materialized : AttentionLowering::Flash;
  options.lowering.on_chip = !flags.no_on_chip;
  if (!flags.model_type.empty()) options.model_type = parse_dtype(flags.model_type);
  options.print_after = flags.print_after;
  options.time_passes = flags.time_passes;
  options.log_stream = &std::cerr;  // pass output appears as each pass finishes
  return options;
}

namespace {

struct Options {
  std::string model, arch, output, emit = "program";
  std::vector<std::string> overrides;
  CompilerFlags flags;
  LimitFlags limits;
};

void write_output(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::cout << text;
    return;
  }
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error({path, 0, 0, ""}, "cannot write the output file (check that the directory exists)");
}

void compile(const Options& o) {
  const ResourceLimits limits = resource_limits(o.limits);
  CompileOptions options = compile_options(o.flags);
  options.limits = limits;
  ArchConfig arch = load_arch(o.arch, o.overrides);
  if (o.emit == "graph") {
    // The graph does not depend on the machine or the later passes.
    Graph graph = load_model(o.model, limits);
    prepare_graph(graph, options);
    write_output(o.output, print_graph(graph));
    return;
  }
  CompileResult result = compile_graph(load_model(o.model, limits), arch, options);
  std::string text;
  if (o.emit == "graph") text = print_graph(result.graph);
  if (o.emit == "lowered") {
    text = print_kernels(unroll_to_kernels(result.graph, options.lowering), false);
  }
  if (o.emit == "tiled") text = print_kernels(result.kernels, true);
  if (o.emit == "program") text = print_program(result.program);
  write_output(o.output, text);
}

}  // namespace

void register_compile_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("compile", "Compile a model (.yaml, .graph or SCALE-Sim .csv) to a program for a machine");
  cmd->add_option("model", o->model, "Model description (*.yaml), graph (*.graph) or SCALE-Sim topology (*.csv)")->required();
  cmd->add_option("--arch", o->arch, "Target: preset name or YAML file")->required();
  cmd->add_option("--set", o->overrides, "Override an arch field, e.g. --set mxu.rows=64")->allow_extra_args(false);
  cmd->add_option("-o,--output", o->output, "Write here instead of standard output");
  cmd->add_option("--emit", o->emit, "What to write: graph, lowered, tiled or program (default)")
      ->check(CLI::IsMember({"graph", "lowered", "tiled", "program"}));
  add_compiler_flags(cmd, o->flags);
  add_limit_flags(cmd, o->limits, false);
  cmd->callback([o] { compile(*o); });
}

}  // namespace tpusim::cli
