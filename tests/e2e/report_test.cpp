// `tpusim run --report ... -o DIR`: the renderings of one report, and what they must agree on.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "test_util.h"

using tpusim::test::run_tpusim;

namespace {

const std::string kRun = "run examples/models/tiny-cnn.yaml --arch edge-32x32";

size_t lines_of(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

}  // namespace

TEST_CASE("report: every rendering written to -o DIR, the same on every run", "[report]") {
  const std::string a = tpusim::test::make_temp_dir("report-a"), b = tpusim::test::make_temp_dir("report-b");
  for (const std::string& dir : {a, b}) {
    auto r = run_tpusim(kRun + " --report table --report json --report csv -o " + dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.empty());  // the table went to the directory
  }
  const std::vector<std::string> files = {"report.txt", "report.json", "COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv",
                                          "DETAILED_ACCESS_REPORT.csv", "layers.csv"};
  for (const std::string& file : files) {
    INFO(file);
    CHECK(tpusim::test::read_text_file(a + "/" + file) == tpusim::test::read_text_file(b + "/" + file));
  }
  auto json = nlohmann::json::parse(tpusim::test::read_text_file(a + "/report.json"));
  CHECK(json["schema_version"] == 2);
  const auto& layers = json["layers"];
  REQUIRE(layers.size() == 8);
  int64_t cycles = 0;
  for (const auto& layer : layers) {
    INFO(layer["label"]);
    cycles += layer["cycles"].get<int64_t>();
    CHECK(!layer["op"].get<std::string>().empty());
    CHECK(!layer["diagnosis"]["text"].get<std::string>().empty());
    CHECK(layer["roofline"]["ops_per_cycle"].get<double>() >= 0);
  }
  CHECK(cycles == json["total_cycles"].get<int64_t>());
  CHECK(layers[4]["label"] == "res");
  CHECK(layers[4]["op"] == "add");
  CHECK(layers[4]["op_text"].get<std::string>().starts_with("residual add: pw + proj"));
  CHECK(layers[0]["gemm"]["rows_used"] == 9);  // conv1: K box 1x3 taps x 3 channels
  // One CSV row per layer under each header.
  for (size_t i = 2; i < files.size(); ++i) {
    INFO(files[i]);
    CHECK(lines_of(tpusim::test::read_text_file(a + "/" + files[i])) == 1 + layers.size());
  }
  // The table in the file is the one `run` prints.
  auto printed = run_tpusim(kRun);
  CHECK(printed.out == tpusim::test::read_text_file(a + "/report.txt"));
}

TEST_CASE("report: --sort cycles puts the slowest layer first", "[report]") {
  auto r = run_tpusim(kRun + " --sort cycles --report json");
  REQUIRE(r.exit_code == 0);
  auto json = nlohmann::json::parse(r.out);  // JSON alone on stdout
  std::string slowest;
  int64_t most = -1;
  for (const auto& layer : json["layers"]) {
    if (layer["cycles"].get<int64_t>() > most) {
      most = layer["cycles"].get<int64_t>();
      slowest = layer["label"].get<std::string>();
    }
  }
  auto table = run_tpusim(kRun + " --sort cycles");
  const size_t header = table.out.find("  layer ");
  REQUIRE(header != std::string::npos);
  const size_t row = table.out.find('\n', header) + 1;
  CHECK(table.out.substr(row, 2 + slowest.size()) == "  " + slowest);
}

TEST_CASE("report: flags that cannot work are refused before the run", "[report][errors]") {
  auto csv = run_tpusim(kRun + " --report csv");
  CHECK(csv.exit_code == 1);
  CHECK(csv.err == "--report: error: csv writes four files (SCALE-Sim's three and layers.csv): give a directory with "
                   "-o DIR\n");
  const std::string dir = tpusim::test::make_temp_dir("report-none");
  auto no_kind = run_tpusim(kRun + " -o " + dir);
  CHECK(no_kind.exit_code == 1);
  CHECK(no_kind.err == "-o: error: say which reports to write there with --report table|json|csv (repeatable)\n");
  auto bad = run_tpusim(kRun + " --report pdf");
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("--report") != std::string::npos);
}
