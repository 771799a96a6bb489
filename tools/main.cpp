// tpusim: compile models to systolic-array programs and simulate them cycle by cycle.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <new>

#include <CLI/CLI.hpp>

#include "ir/diagnostics.h"
#include "tools/commands.h"
#include "tpusim/version.h"

namespace {

// A command-line mistake in tpusim's own form: `error: ...`, with the nearest flag for a
// misspelt one and where to read more.
std::string flag_error_text(const CLI::ParseError& e, CLI::App& app, int argc, char** argv) {
  // The (sub)command the words name: `tpusim arch show ...` is `arch`'s `show`.
  CLI::App* command = &app;
  std::string name = "tpusim";
  int first_argument = 1;
  for (bool found = true; found && first_argument < argc;) {
    found = false;
    for (auto* sub : command->get_subcommands({})) {
      if (sub->get_name() == argv[first_argument]) {
        command = sub;
        name += " " + sub->get_name();
        ++first_argument;
        found = true;
        break;
      }
    }
  }
  const std::string help = " (see " + name + " --help)";
  if (command == &app && argc > 1 && std::string(argv[1]).starts_with("-")) {
    const std::string hint = tpusim::nearest_spelling(argv[1], {"--help", "--version"});
    return "error: unknown flag '" + std::string(argv[1]) + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
           help;
  }
  if (!command->get_subcommands({}).empty() && first_argument < argc && argv[first_argument][0] != '-') {
    std::vector<std::string> names;
    for (const auto* sub : command->get_subcommands({})) names.push_back(sub->get_name());
    const std::string hint = tpusim::nearest_spelling(argv[first_argument], names);
    return "error: unknown command '" + std::string(argv[first_argument]) + "' for '" + name + "'" +
           (hint.empty() ? "" : "; did you mean '" + hint + "'?") + help;
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    std::vector<std::string> flags;
    for (const CLI::Option* option : command->get_options()) {
      for (const std::string& long_name : option->get_lnames()) flags.push_back("--" + long_name);
    }
    for (int i = first_argument; i < argc; ++i) {
      std::string word = argv[i];
      const std::string flag = word.substr(0, word.find('='));
      if (!flag.starts_with("-") || std::find(flags.begin(), flags.end(), flag) != flags.end()) continue;
      if (flag.size() == 2 && command->get_option_no_throw(flag) != nullptr) continue;  // a short flag: -q
      const std::string hint = tpusim::nearest_spelling(flag, flags);
      return "error: unknown flag '" + flag + "' for '" + name + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
             help;
    }
    return "error: unexpected argument" + std::string(e.what()).substr(std::string(e.what()).find(':')) + help;
  }
  return std::string("error: ") + e.what() + help;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tpusim " TPUSIM_VERSION
               " - a TPU-style systolic-array simulator with an unrolling compiler"};
  app.name("tpusim");
  app.set_version_flag("--version", "tpusim " TPUSIM_VERSION);
  app.require_subcommand(1);
  tpusim::cli::register_arch_command(app);
  tpusim::cli::register_compile_command(app);
  tpusim::cli::register_run_command(app);
  tpusim::cli::register_diff_command(app);
  tpusim::cli::register_explain_command(app);

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
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cout.flush();
    std::cerr << flag_error_text(e, app, argc, argv) << "\n";
    return 1;
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
