// `tpusim run --report ... -o DIR`: the renderings of one report, and what they must agree on.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "test_util.h"

using tpusim::test::run_tpusim;

namespace {

const std::string kRun = "run examples/models/tiny-cnn.yaml --arch edge-32x32";

size_t lines_of(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

}  // namespace

TEST_CASE("report: every rendering written to -o DIR, the same on every run", "[report]") {
  const std::string a = tpusim::test::make_temp_dir("report-a"), b = tpusim::test::make_temp_dir("report-b");
  for (const std::string& dir : {a, b}) {
    auto r = run_tpusim(kRun + " --report table --report json --report csv --report html -o " + dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.empty());  // the table went to the directory
  }
  const std::vector<std::string> files = {"report.txt",           "report.json",
                                          "COMPUTE_REPORT.csv",   "BANDWIDTH_REPORT.csv",
                                          "DETAILED_ACCESS_REPORT.csv", "layers.csv", "report.html"};
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
  CHECK(layers[4]["op"] == "residual add");
  CHECK(layers[1]["op"] == "depthwise conv");
  CHECK(layers[4]["op_text"].get<std::string>().starts_with("residual add: pw + proj"));
  CHECK(layers[0]["gemm"]["rows_used"] == 27);  // conv1: all of K = 3x3 taps x 3 channels in one box
  // One CSV row per layer under each header.
  for (size_t i = 2; i < 6; ++i) {
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
  CHECK(no_kind.err == "-o: error: say which reports to write there with --report table|json|csv|html (repeatable)\n");
  auto bad = run_tpusim(kRun + " --report pdf");
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("--report") != std::string::npos);
}

TEST_CASE("diff: one model on two machines, a row per layer, deltas that add up to the total's", "[report][diff]") {
  const std::string dir = tpusim::test::make_temp_dir("diff");
  for (const std::string arch : {"edge-32x32", "teach-4x4"}) {
    auto r = run_tpusim("run examples/models/tiny-cnn.yaml -q --arch " + arch + " --json " + dir + "/" + arch + ".json");
    REQUIRE(r.exit_code == 0);
  }
  auto d = run_tpusim("diff " + dir + "/edge-32x32.json " + dir + "/teach-4x4.json");
  INFO(d.out << d.err);
  REQUIRE(d.exit_code == 0);
  // Rows between the header and the total: one per layer, each with its cycles delta in column 5.
  std::istringstream lines(d.out);
  std::string line;
  std::vector<std::vector<std::string>> rows;
  bool in_table = false;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;) w.push_back(s);
    if (!w.empty() && w[0] == "layer") {
      in_table = true;
      continue;
    }
    if (in_table && !w.empty()) rows.push_back(w);
  }
  REQUIRE(rows.size() == 9);  // 8 layers and the total
  REQUIRE(rows.back()[0] == "total");
  // Read from the right (an op may be two words): a layer row ends "cycles-A cycles-B delta
  // change util-A util-B dram-A dram-B dram-delta bound-A -> bound-B", the total without bounds.
  auto column = [](const std::vector<std::string>& row, size_t from_end) { return std::stoll(row[row.size() - from_end]); };
  int64_t sum = 0, previous = INT64_MAX;
  for (size_t i = 0; i + 1 < rows.size(); ++i) {
    INFO(rows[i][0]);
    const int64_t delta = column(rows[i], 10);
    CHECK(std::llabs(delta) <= previous);  // biggest change first
    previous = std::llabs(delta);
    sum += delta;
    CHECK(column(rows[i], 11) - column(rows[i], 12) == delta);
  }
  const auto& total = rows.back();
  CHECK(column(total, 8) - column(total, 9) == sum);
  CHECK(column(total, 7) == sum);
}

TEST_CASE("diff: a file that is not a report is named with where it goes wrong", "[report][diff][errors]") {
  const std::string dir = tpusim::test::make_temp_dir("diff-bad");
  auto good = run_tpusim("run examples/programs/gemm-4x4.tpu --arch teach-4x4 -q --json " + dir + "/good.json");
  REQUIRE(good.exit_code == 0);
  tpusim::test::write_text_file(dir + "/broken.json", "{\n  \"schema_version\": 2,\n  oops\n}\n");
  tpusim::test::write_text_file(dir + "/v1.json", "{\"schema_version\": 1}\n");
  tpusim::test::write_text_file(dir + "/partial.json", "{\"schema_version\": 2, \"program\": \"p\", \"arch\": {\"name\": 3}}\n");
  auto broken = run_tpusim("diff " + dir + "/broken.json " + dir + "/good.json");
  CHECK(broken.exit_code == 1);
  CHECK(broken.err == dir + "/broken.json:3:3: error: not valid JSON; a report is written by `tpusim run ... --json "
                            "FILE` or `--report json`\n");
  auto v1 = run_tpusim("diff " + dir + "/good.json " + dir + "/v1.json");
  CHECK(v1.err == dir + "/v1.json: error: schema_version: this is a version 1 report; diff reads version 2 (run the "
                        "model again with this tpusim)\n");
  auto partial = run_tpusim("diff " + dir + "/partial.json " + dir + "/good.json");
  CHECK(partial.err == dir + "/partial.json: error: arch.name: expected a string, got a number\n");
  auto missing = run_tpusim("diff " + dir + "/none.json " + dir + "/good.json");
  CHECK(missing.err == dir + "/none.json: error: cannot open report file (check the path)\n");
}

TEST_CASE("trace: trace-event JSON whose slices nest on every track, with counter tracks", "[report][trace]") {
  const std::string dir = tpusim::test::make_temp_dir("trace-nest");
  auto r = run_tpusim(kRun + " -q --trace " + dir + "/t.json");
  REQUIRE(r.exit_code == 0);
  auto trace = nlohmann::json::parse(tpusim::test::read_text_file(dir + "/t.json"));
  REQUIRE(trace["traceEvents"].is_array());
  std::map<int, std::string> track_names;
  std::map<int, std::vector<std::pair<int64_t, int64_t>>> slices;  // per tid: [ts, ts + dur)
  std::set<std::string> counters;
  size_t layer_slices = 0, op_named = 0, instructions = 0;
  for (const auto& e : trace["traceEvents"]) {
    INFO(e.dump());
    REQUIRE(e.contains("ph"));
    REQUIRE(e.contains("name"));
    REQUIRE(e["pid"].is_number_integer());
    const std::string ph = e["ph"];
    if (ph == "M") {
      REQUIRE(e["tid"].is_number_integer());
      if (e["name"] == "thread_name") track_names[e["tid"].get<int>()] = e["args"]["name"].get<std::string>();
    } else if (ph == "X") {
      REQUIRE(e["tid"].is_number_integer());
      REQUIRE(e["ts"].is_number_integer());
      REQUIRE(e["dur"].is_number_integer());
      CHECK(e["dur"].get<int64_t>() >= 1);
      const int tid = e["tid"].get<int>();
      slices[tid].push_back({e["ts"].get<int64_t>(), e["ts"].get<int64_t>() + e["dur"].get<int64_t>()});
      if (track_names[tid].starts_with("layers")) {
        ++layer_slices;
      } else {
        ++instructions;
        // Named by the graph op, then the instruction and its tile.
        const std::string name = e["name"];
        if (name.find(": ") != std::string::npos && name.find(e["args"]["label"].get<std::string>() + ": ") == 0) {
          ++op_named;
        }
      }
    } else if (ph == "C") {
      REQUIRE(e["ts"].is_number_integer());
      REQUIRE(e["args"].is_object());
      counters.insert(e["name"].get<std::string>());
    } else {
      FAIL("unexpected phase " << ph);
    }
  }
  CHECK(layer_slices == 8);
  CHECK(instructions > 0);
  CHECK(op_named == instructions);  // every instruction of a compiled model has its op's label
  CHECK(counters == std::set<std::string>{"DRAM bytes per cycle", "unified buffer bytes in flight"});
  // Every slice of a track is inside the open one or after it ends.
  for (auto& [tid, list] : slices) {
    INFO("track " << track_names[tid]);
    std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && a.second > b.second);
    });
    std::vector<std::pair<int64_t, int64_t>> open;
    for (const auto& s : list) {
      while (!open.empty() && open.back().second <= s.first) open.pop_back();
      if (!open.empty()) CHECK(s.second <= open.back().second);
      open.push_back(s);
    }
  }
}

TEST_CASE("progress: a bar on a terminal, not one byte of it otherwise", "[report][progress]") {
  const std::string run = "run examples/models/tiny-cnn.yaml --arch edge-32x32 --check";
  auto terminal = tpusim::test::run_tpusim_in_terminal(run);
  INFO(terminal.err);
  REQUIRE(terminal.exit_code == 0);
  CHECK(terminal.err.find("compiling: tile") != std::string::npos);
  CHECK(terminal.err.find("simulating [") != std::string::npos);
  CHECK(terminal.err.find("% of ") != std::string::npos);
  CHECK(terminal.err.find("checking the outputs against the reference") != std::string::npos);
  CHECK(terminal.err.ends_with("\r\033[K"));  // the line erased at the end
  // The report itself is the same as without a terminal, and goes to stdout.
  auto plain = run_tpusim(run);
  CHECK(plain.err.empty());
  CHECK(plain.out == terminal.out);
  // -q: nothing on the terminal either.
  auto quiet = tpusim::test::run_tpusim_in_terminal(run + " -q");
  CHECK(quiet.err.empty());
  // A program run too.
  auto program = tpusim::test::run_tpusim_in_terminal("run examples/programs/gemm-tiled-edge.tpu --arch edge-32x32");
  CHECK(program.err.find("simulating [") != std::string::npos);
}
