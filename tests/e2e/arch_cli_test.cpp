// `tpusim arch show` and `tpusim arch list` from the command line.
#include <catch2/catch.hpp>

#include "test_util.h"

using tpusim::test::run_tpusim;

namespace {
bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("arch show applies --set overrides", "[arch][cli]") {
  auto r = run_tpusim("arch show examples/arch/teach-4x4.yaml --set mxu.rows=8");
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(contains(r.out, "\n  rows: 8\n"));
  CHECK(contains(r.out, "\n  cols: 4\n"));
}

TEST_CASE("arch show takes --set more than once", "[arch][cli]") {
  auto r = run_tpusim(
      "arch show teach-4x4 --set mxu.rows=8 --set mxu.cols=16 "
      "--set 'unified_buffer.bytes=8 KiB'");
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "\n  rows: 8\n  cols: 16\n"));
  CHECK(contains(r.out,
                 "unified_buffer:\n  bytes: 8192  # 8 KiB\n  banks: 1\n"
                 "  bytes_per_cycle: 16\n"));
  CHECK(contains(r.out, "vpu:\n  lanes: 4\n"));  // the file sets lanes: 4
}

TEST_CASE("arch show tpu-v1 prints the resolved machine", "[arch][cli]") {
  auto r = run_tpusim("arch show tpu-v1");
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  for (const char* expected :
       {"name: tpu-v1\n", "  rows: 256\n", "  cols: 256\n", "  dataflow: ws\n",
        "  operand_type: int8\n", "  clock_mhz: 700\n", "  weight_double_buffering: true\n",
        "  bytes: 25165824  # 24 MiB\n", "  bytes: 262144  # 256 KiB\n",
        "  bytes: 4194304  # 4 MiB\n", "  bytes_per_cycle: 1024\n", "  lanes: 256\n",
        "  exp:        { latency: 8, interval: 2 }\n",
        "  bytes_per_cycle: 48.571429  # 34.0 GB/s at 700 MHz\n", "  latency_cycles: 140\n"}) {
    INFO(expected);
    CHECK(contains(r.out, expected));
  }
}

TEST_CASE("arch show output loads back to the same output", "[arch][cli]") {
  std::string dir = tpusim::test::make_temp_dir("arch-cli");
  auto first = run_tpusim("arch show tpu-v4-like");
  REQUIRE(first.exit_code == 0);
  tpusim::test::write_text_file(dir + "/printed.yaml", first.out);
  auto second = run_tpusim("arch show '" + dir + "/printed.yaml'");
  CHECK(second.exit_code == 0);
  CHECK(second.out == first.out);
}

TEST_CASE("arch list lists the four presets", "[arch][cli]") {
  auto r = run_tpusim("arch list");
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out.starts_with("edge-32x32 "));
  CHECK(contains(r.out, "\nteach-4x4    4x4 int8 ws, 100 MHz"));
  CHECK(contains(r.out, "\ntpu-v1       256x256 int8 ws, 700 MHz, unified buffer 24 MiB"));
  CHECK(contains(r.out, "\ntpu-v4-like  128x128 bf16 ws, 1050 MHz"));
  CHECK(contains(r.out, "DRAM 1200.0 GB/s\n"));
}
