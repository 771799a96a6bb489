// `tpusim diff A.json B.json`: two runs' JSON reports side by side, layer by layer.
#include <fstream>
#include <iostream>

#include "ir/diagnostics.h"
#include "simulator/report_diff.h"
#include "tools/commands.h"
#include "tools/output_files.h"

namespace tpusim::cli {

void register_diff_command(CLI::App& app) {
  struct Options {
    std::string a, b, html;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("diff", "Compare two runs' JSON reports (tpusim run ... --json FILE) layer by layer");
  cmd->add_option("a", options->a, "The first report (A)")->required();
  cmd->add_option("b", options->b, "The second report (B)")->required();
  cmd->add_option("--html", options->html, "Also write the comparison as a self-contained HTML page to this file");
  cmd->callback([options] {
    require_writable(options->html, "--html");
    const ReportSummary a = read_report_summary(options->a);
    const ReportSummary b = read_report_summary(options->b);
    const ReportDiff diff = diff_reports(a, b);
    std::cout << diff_text(diff);
    if (!options->html.empty()) {
      write_file(options->html, diff_html(diff));
    }
  });
}

}  // namespace tpusim::cli
