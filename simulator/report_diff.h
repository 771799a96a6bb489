// Two runs' reports side by side (`tpusim diff A.json B.json`): two machines, two `--set`s,
// two compiler choices. Layers are matched by label; each row has both runs' cycles,
// utilization and DRAM bytes and their deltas, the biggest change in cycles first. Since each
// run's layer cycles add up to its total, the rows' cycle deltas add up to the total's.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace tpusim {

// The part of a JSON report (schema_version 2) a comparison reads.
struct ReportSummary {
  std::string file, program, arch, fidelity;
  int64_t total_cycles = 0, dram_bytes = 0;
  double utilization = 0;
  struct Layer {
    std::string label, op;
    int64_t cycles = 0, dram_bytes = 0;
    double utilization = 0;
    std::string bound;
  };
  std::vector<Layer> layers;
};

// Reads `path`; a file that is not a tpusim JSON report of schema_version 2 is an error naming
// the file and the line:column or key.
ReportSummary read_report_summary(const std::string& path);

struct LayerDiff {
  std::string label, op;
  std::optional<ReportSummary::Layer> a, b;  // absent: the layer is in one run only
  int64_t cycles_delta = 0, dram_delta = 0;
};

struct ReportDiff {
  ReportSummary a, b;
  std::vector<LayerDiff> layers;  // biggest |cycles delta| first (ties: A's order)
};

ReportDiff diff_reports(const ReportSummary& a, const ReportSummary& b);
std::string diff_text(const ReportDiff& diff);
// The same as one self-contained HTML page: a bar per layer for its change in cycles, and the
// table.
std::string diff_html(const ReportDiff& diff);

}  // namespace tpusim
