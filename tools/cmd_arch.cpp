// `tpusim arch show NAME|FILE [--set key=value ...]`: print the resolved machine as YAML.
#include <iostream>

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
  show->add_option("target", options->target,
                   "Preset name (tpu-v1, tpu-v4-like, edge-32x32, teach-4x4) or a YAML file")
      ->required();
  show->add_option("--set", options->overrides, "Override a field, e.g. --set mxu.rows=64")
      ->allow_extra_args(false);
  show->callback([options] {
    ArchConfig config = load_arch(options->target, options->overrides);
    std::cout << arch_to_yaml(config);
  });
}

}  // namespace tpusim::cli
