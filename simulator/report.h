// Renderings of a run's report (simulator/report_model.h): a table for people, JSON (with a
// schema_version) for tools, SCALE-Sim's CSV files and tpusim's per-layer CSV for
// spreadsheets. They format the report's figures and compute none (docs/report.md).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "simulator/report_model.h"

namespace tpusim {

// `sort`: "start" (the order layers started) or "cycles" (slowest first).
std::string report_text(const RunReport& report, const std::string& sort = "start");
std::string report_json(const RunReport& report);

// {file name, contents}: COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv and
// DETAILED_ACCESS_REPORT.csv with SCALE-Sim's columns, and layers.csv with tpusim's own.
std::vector<std::pair<std::string, std::string>> report_csv_files(const RunReport& report);

// One self-contained HTML page (inline CSS, SVG and a little JavaScript; nothing fetched):
// utilization and stall bars per layer, a roofline, the units' activity and the unified
// buffer's occupancy over time, and a sortable per-layer table with each layer's diagnosis and
// the compiler's choices.
std::string report_html(const RunReport& report);

// `text` with &, <, > and " written as HTML entities (for text and attribute values).
std::string html_escape(const std::string& text);

}  // namespace tpusim
