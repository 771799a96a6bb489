// Checks shared by the suites that run whole models through `tpusim run --check --json`: they
// read the check's counts and the MAC totals from the JSON report, not from the text.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace tpusim::test {

// Runs `arguments` with --json and returns the JSON report (the text report is in `r`).
inline nlohmann::json run_with_json(const std::string& arguments, CommandResult& r) {
  const std::string dir = make_temp_dir("model-json");
  r = run_tpusim(arguments + " --json " + dir + "/report.json");
  INFO(arguments << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(read_text_file(dir + "/report.json"));
}

// What keeps a report's check from being bit-exact, one line per problem ("" when every kernel
// and every output is bit-exact): no check, no kernel checked, a kernel not bit-exact, an
// output not bit-exact or no output checked.
inline std::string bit_exact_problems(const nlohmann::json& report) {
  if (!report.contains("check")) return "the report has no check (run with --check)\n";
  const nlohmann::json& check = report["check"];
  std::string problems;
  if (!check.value("ok", false)) problems += "the check failed\n";
  const int64_t checked = check["kernels"].value("checked", int64_t{0});
  const int64_t exact = check["kernels"].value("bit_exact", int64_t{0});
  if (checked < 1) problems += "no kernel was checked\n";
  if (exact != checked) problems += std::to_string(exact) + " of " + std::to_string(checked) + " kernels bit-exact\n";
  for (const auto& k : check["kernel_results"]) {
    if (!k.value("bit_exact", false)) problems += "kernel " + k.value("kernel", std::string()) + " is not bit-exact\n";
  }
  if (check["outputs"].empty()) problems += "no output was checked\n";
  for (const auto& o : check["outputs"]) {
    if (!o.value("bit_exact", false)) problems += "output " + o.value("name", std::string()) + " is not bit-exact\n";
  }
  return problems;
}

// The run succeeded and its check found every kernel and every output bit-exact.
inline void require_bit_exact(const CommandResult& r, const nlohmann::json& report) {
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(bit_exact_problems(report) == "");
}

// The MAC totals the report gives: the graph's, those of depthwise convolutions run on the VPU
// and the array's useful MACs (REQUIREs that all three are there).
struct ReportMacs {
  int64_t graph = -1, on_vpu = -1, useful = -1;
};
inline ReportMacs report_macs(const nlohmann::json& report) {
  REQUIRE(report.contains("graph_macs"));
  REQUIRE(report.contains("macs_on_vpu"));
  REQUIRE(report["totals"]["macs"].contains("useful"));
  return {report["graph_macs"].get<int64_t>(), report["macs_on_vpu"].get<int64_t>(),
          report["totals"]["macs"]["useful"].get<int64_t>()};
}

}  // namespace tpusim::test
