// `tpusim arch show NAME|FILE [--set key.path=value ...]`: print the resolved machine as YAML.
// `tpusim arch list`: the presets shipped in examples/arch/, one line each.
#include <iostream>

#include <fmt/format.h>

#include "simulator/arch.h"
#include "tools/commands.h"

namespace tpusim::cli {

void register_arch_command(CLI::App& app) {
  auto* arch = app.add_subcommand("arch", "Inspect target machine descriptions");
  arch->require_subcommand(1);

  auto* show = arch->add_subcommand(
      "show", "Print a machine description with every field resolved (defaults filled in)");
  struct Options {
    std::string target;
    std::vector<std::string> overrides;
  };
  auto options = std::make_shared<Options>();
  show->add_option("target", options->target, "Preset name (see `tpusim arch list`) or a YAML file")
      ->required();
  show->add_option("--set", options->overrides,
                   "Override a field, e.g. --set mxu.rows=64 (repeatable)")
      ->allow_extra_args(false);
  show->callback([options] {
    ArchConfig config = load_arch(options->target, options->overrides);
    std::cout << arch_to_yaml(config);
  });

  auto* list = arch->add_subcommand("list", "List the preset machines in examples/arch/");
  list->callback([] {
    std::vector<std::string> names = arch_preset_names();
    size_t width = 0;
    for (const auto& name : names) width = std::max(width, name.size());
    for (const auto& name : names) {
      std::cout << fmt::format("{:<{}}  {}\n", name, width, arch_summary(load_arch(name)));
    }
  });
}

}  // namespace tpusim::cli
