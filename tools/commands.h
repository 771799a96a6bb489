// The tpusim CLI's subcommands. Each registers itself on the app and does nothing but parse
// flags and call the libraries.
#pragma once

#include <CLI/CLI.hpp>

namespace tpusim::cli {

void register_arch_command(CLI::App& app);
void register_run_command(CLI::App& app);

}  // namespace tpusim::cli
