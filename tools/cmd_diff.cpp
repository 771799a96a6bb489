// `tpusim diff A.json B.json`: two runs' JSON reports side by side, layer by layer.
#include <iostream>

#include "simulator/report_diff.h"
#include "tools/commands.h"

namespace tpusim::cli {

void register_diff_command(CLI::App& app) {
  struct Options {
    std::string a, b;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("diff", "Compare two runs' JSON reports (tpusim run ... --json FILE) layer by layer");
  cmd->add_option("a", options->a, "The first report (A)")->required();
  cmd->add_option("b", options->b, "The second report (B)")->required();
  cmd->callback([options] {
    const ReportSummary a = read_report_summary(options->a);
    const ReportSummary b = read_report_summary(options->b);
    std::cout << diff_text(diff_reports(a, b));
  });
}

}  // namespace tpusim::cli
