// tpusim: compile models to systolic-array programs and simulate them cycle by cycle.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <new>

#include <CLI/CLI.hpp>

#include "ir/diagnostics.h"
#include "tools/commands.h"
#include "tpusim/version.h"

int main(int argc, char** argv) {
  CLI::App app{"tpusim " TPUSIM_VERSION
               " - a TPU-style systolic-array simulator with an unrolling compiler"};
  app.name("tpusim");
  app.set_version_flag("--version", "tpusim " TPUSIM_VERSION);
  app.require_subcommand(1);
  tpusim::cli::register_arch_command(app);
  tpusim::cli::register_compile_command(app);
  tpusim::cli::register_run_command(app);

  try {
    // CLI11 reports an unknown command as a missing one; name it and suggest the nearest.
    if (argc > 1 && argv[1][0] != '-') {
      std::vector<std::string> names;
      for (const auto* sub : app.get_subcommands({})) names.push_back(sub->get_name());
      if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
        std::string hint = tpusim::nearest_spelling(argv[1], names);
        throw tpusim::Error("unknown command '" + std::string(argv[1]) + "'" +
                            (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
                            " (see tpusim --help)");
      }
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 1;
  } catch (const tpusim::Error& e) {
    std::cout.flush();
    std::cerr << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cout.flush();
    std::cerr << "error: out of memory (the model or program is too large for this machine's memory)\n";
    return 1;
  } catch (const tpusim::InternalError& e) {
    std::cout.flush();
    std::cerr << e.what() << "\n";
    return 2;
  }
  return 0;
}
