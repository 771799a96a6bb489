// The tpusim CLI's subcommands. Each registers itself on the app and does nothing but parse
// flags and call the libraries.
#pragma once

#include <CLI/CLI.hpp>

#include "compiler/pipeline.h"

namespace tpusim::cli {

void register_arch_command(CLI::App& app);
void register_run_command(CLI::App& app);
void register_compile_command(CLI::App& app);
void register_diff_command(CLI::App& app);
void register_explain_command(CLI::App& app);

// Compiler flags shared by `compile` and `run` (for models).
struct CompilerFlags {
  std::string im2col = "buffer";
  std::string attention = "flash";
  std::string depthwise = "auto";
  std::string model_type;
  bool no_on_chip = false;
  std::vector<std::string> print_after;
  bool time_passes = false;
};
void add_compiler_flags(CLI::App* cmd, CompilerFlags& flags);
CompileOptions compile_options(const CompilerFlags& flags);

// Resource limits (docs/limits.md): `--max-memory` for every command that loads a model or
// program, `--max-cycles` and `--max-instructions` for those that simulate.
struct LimitFlags {
  std::string max_memory, max_cycles, max_instructions;
};
void add_limit_flags(CLI::App* cmd, LimitFlags& flags, bool simulates);
ResourceLimits resource_limits(const LimitFlags& flags);  // defaults for flags not given
// `--seed`: a decimal integer from 0 to 2^64 - 1.
uint64_t parse_seed(const std::string& text);

}  // namespace tpusim::cli
