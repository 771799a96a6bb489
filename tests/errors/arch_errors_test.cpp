// Bad machine descriptions -> the exact message a user sees. One file per mistake in
// tests/errors/arch/; overrides and lookups are checked without files.
#include <catch2/catch.hpp>

#include "ir/diagnostics.h"
#include "simulator/arch.h"
#include "test_util.h"

using namespace tpusim;

namespace {

// The full text of the error that loading `path` with `overrides` raises ("" if none).
std::string load_error(const std::string& path, const std::vector<std::string>& overrides = {}) {
  try {
    load_arch(path, overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Loads tests/errors/arch/<name>.yaml and returns its error without the file name prefix.
std::string file_error(const std::string& name) {
  std::string path = std::string(TPUSIM_TEST_DATA) + "/errors/arch/" + name + ".yaml";
  std::string text = load_error(path);
  REQUIRE(text.starts_with(path + ":"));
  return text.substr(path.size() + 1);
}

const char* kValid = R"(mxu: { rows: 8, cols: 8 }
unified_buffer: { bytes: 1KiB }
weight_buffer: { bytes: 256 }
accumulator: { bytes: 1KiB }
dram: { bytes_per_cycle: 4 }
)";

}  // namespace

TEST_CASE("errors carry file, line, column and key path", "[arch][errors]") {
  std::string path = std::string(TPUSIM_TEST_DATA) + "/errors/arch/zero_rows.yaml";
  try {
    load_arch(path);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.location().file == path);
    CHECK(e.location().line == 4);
    CHECK(e.location().column == 9);
    CHECK(e.location().key_path == "mxu.rows");
    CHECK(e.message() == "must be at least 1, got 0");
  }
}

TEST_CASE("unknown keys are named, with the nearest valid key or the list", "[arch][errors]") {
  CHECK(file_error("unknown_key") ==
        "6:3: error: mxu.rwos: unknown key 'rwos'; did you mean 'rows'?");
  CHECK(file_error("unknown_key_no_suggestion") ==
        "6:3: error: mxu.banana: unknown key 'banana'; valid keys here are: rows, cols, dataflow, "
        "operand_type, clock_mhz, weight_double_buffering");
  CHECK(file_error("unknown_section") ==
        "12:1: error: dramm: unknown key 'dramm'; did you mean 'dram'?");
  CHECK(file_error("duplicate_key") ==
        "6:3: error: mxu.rows: duplicate key 'rows' (first given at line 4); keep only one");
}

TEST_CASE("values of the wrong type say what was expected and what was found", "[arch][errors]") {
  CHECK(file_error("not_an_integer") == "4:9: error: mxu.rows: expected an integer, got 'abc'");
  CHECK(file_error("not_a_bool") ==
        "6:28: error: mxu.weight_double_buffering: expected true or false, got 'yes'");
  CHECK(file_error("not_a_number") ==
        "13:20: error: dram.bytes_per_cycle: expected a number, got 'fast'");
  CHECK(file_error("mapping_for_scalar") ==
        "4:9: error: mxu.rows: expected an integer, got a mapping");
  CHECK(file_error("sequence_for_scalar") ==
        "5:9: error: mxu.cols: expected an integer, got a sequence");
  CHECK(file_error("empty_value") ==
        "5:3: error: mxu.cols: expected an integer, got an empty value");
  CHECK(file_error("scalar_for_mapping") ==
        "3:6: error: mxu: expected a mapping with keys rows, cols, dataflow, operand_type, "
        "clock_mhz, weight_double_buffering, got '256'");
  CHECK(file_error("bad_byte_size") ==
        "7:10: error: unified_buffer.bytes: expected a byte size (an integer with an optional "
        "unit B, KiB, MiB, GiB, KB, MB or GB), got '24 megabytes'");
  CHECK(file_error("byte_size_wrong_case") ==
        "7:10: error: unified_buffer.bytes: expected a byte size (an integer with an optional "
        "unit B, KiB, MiB, GiB, KB, MB or GB), got '4 kib'; units are case-sensitive: did you "
        "mean 'KiB'?");
}

TEST_CASE("missing required keys say where to add them", "[arch][errors]") {
  CHECK(file_error("missing_required") ==
        "3:1: error: mxu.cols: missing required key; add 'cols:' under 'mxu:' (the number of PE "
        "columns, 1 to 16384)");
  CHECK(file_error("missing_section") ==
        "2:1: error: dram.bytes_per_cycle: missing required key; add 'bytes_per_cycle:' under "
        "'dram:' (sustained bandwidth in bytes per MXU clock cycle, greater than 0)");
}

TEST_CASE("sizes, counts and clocks must be in range", "[arch][errors]") {
  CHECK(file_error("zero_rows") == "4:9: error: mxu.rows: must be at least 1, got 0");
  CHECK(file_error("rows_too_large") == "4:9: error: mxu.rows: must be at most 16384, got 20000");
  CHECK(file_error("zero_clock") == "6:14: error: mxu.clock_mhz: must be greater than 0, got 0");
  CHECK(file_error("zero_bytes") == "7:10: error: unified_buffer.bytes: must be at least 1, got 0");
  CHECK(file_error("negative_banks") ==
        "8:10: error: unified_buffer.banks: must be at least 1, got -2");
  CHECK(file_error("negative_lanes") ==
        "13:10: error: vpu.lanes: must be at least 0 (0 or absent means mxu.cols), got -1");
  CHECK(file_error("zero_channels") == "14:13: error: dram.channels: must be at least 1, got 0");
  CHECK(file_error("negative_dram_latency") ==
        "14:19: error: dram.latency_cycles: must be at least 0, got -5");
  CHECK(file_error("zero_dram_bandwidth") ==
        "13:20: error: dram.bytes_per_cycle: must be greater than 0, got 0");
  CHECK(file_error("zero_interval") == "13:32: error: vpu.exp.interval: must be at least 1, got 0");
  CHECK(file_error("zero_latency") == "14:14: error: vpu.add.latency: must be at least 1, got 0");
}

TEST_CASE("enumerations list their choices", "[arch][errors]") {
  CHECK(file_error("bad_dataflow") ==
        "6:13: error: mxu.dataflow: must be ws, os or is (weight-, output- or "
        "input-stationary), got 'wx'");
  CHECK(file_error("bad_operand_type") ==
        "6:17: error: mxu.operand_type: must be int8 or bf16, got 'fp16'");
  CHECK(load_error("teach-4x4", {"mxu.operand_type=int32"}) ==
        "--set mxu.operand_type=int32: error: mxu.operand_type: must be int8 or bf16, got "
        "'int32' (int32 is an accumulator type: int8 accumulates in int32, bf16 in fp32)");
}

TEST_CASE("buffers must feed the array and hold one tile", "[arch][errors]") {
  CHECK(file_error("bytes_not_divisible") ==
        "8:10: error: unified_buffer.banks: 3 banks cannot split 1000 bytes evenly; make bytes a "
        "multiple of 3");
  CHECK(file_error("unified_buffer_bandwidth") ==
        "8:20: error: unified_buffer.bytes_per_cycle: must be at least 8 (the array reads one "
        "vector of max(rows, cols) = 8 int8 elements per cycle), got 4; leave it out or set 0 to "
        "use the minimum");
  CHECK(file_error("weight_buffer_bandwidth") ==
        "11:20: error: weight_buffer.bytes_per_cycle: must be at least 16 (the array loads one "
        "row of max(rows, cols) = 8 bf16 weights per cycle), got 8; leave it out or set 0 to use "
        "the minimum");
  CHECK(file_error("accumulator_bandwidth") ==
        "12:20: error: accumulator.bytes_per_cycle: must be at least 32 (the array writes one row "
        "of max(rows, cols) = 8 int32 accumulators per cycle), got 8; leave it out or set 0 to "
        "use the minimum");
  CHECK(file_error("unified_buffer_too_small") ==
        "7:10: error: unified_buffer.bytes: must hold at least one 8x8 tile of int8 operands (64 "
        "bytes), got 32");
  CHECK(file_error("weight_buffer_too_small") ==
        "9:10: error: weight_buffer.bytes: must hold two 8x8 int8 weight tiles (128 bytes) "
        "because mxu.weight_double_buffering is true (the next tile loads while the current one "
        "computes), got 64; make it larger or set mxu.weight_double_buffering to false");
  CHECK(file_error("weight_buffer_too_small_single") ==
        "10:10: error: weight_buffer.bytes: must hold at least one 8x8 int8 weight tile (64 "
        "bytes), got 32");
  CHECK(file_error("accumulator_too_small") ==
        "11:10: error: accumulator.bytes: must hold at least one 8x8 tile of int32 accumulators "
        "(256 bytes), got 128");
}

TEST_CASE("files that are not a config at all", "[arch][errors]") {
  CHECK(file_error("malformed") ==
        "4:15: error: malformed YAML: end of map flow not found (a '{' is not closed by '}')");
  CHECK(file_error("empty") ==
        "1:1: error: the file is empty; an arch config needs at least mxu.rows, mxu.cols, the "
        "bytes of unified_buffer, weight_buffer and accumulator, and dram.bytes_per_cycle (see "
        "examples/arch/teach-4x4.yaml)");
  CHECK(file_error("only_comma") ==
        "1:1: error: malformed YAML: no value here; a description is a mapping of 'key: value' lines");
  CHECK(file_error("top_level_sequence") ==
        "2:1: error: the top level must be a mapping of sections (name, mxu, unified_buffer, "
        "weight_buffer, accumulator, vpu, dram), got a sequence");
  CHECK(file_error("two_documents") ==
        "15:1: error: expected one YAML document, found 2; remove the extra '---' sections");
}

TEST_CASE("missing files and unknown presets", "[arch][errors]") {
  CHECK(load_error("no/such/dir/arch.yaml") ==
        "no/such/dir/arch.yaml: error: cannot open file: no such file or directory");
  CHECK(load_error("tpu-v9") ==
        "tpu-v9: error: cannot open file, and there is no preset of that name (did you mean "
        "'tpu-v1'?); presets: edge-32x32, teach-4x4, tpu-v1, tpu-v4-like");
  CHECK(load_error("warp-drive") ==
        "warp-drive: error: cannot open file, and there is no preset of that name; presets: "
        "edge-32x32, teach-4x4, tpu-v1, tpu-v4-like");
  CHECK(load_error("tpu-v1.yaml") ==
        "tpu-v1.yaml: error: cannot open file: no such file or directory; to use the preset, give "
        "its name: tpu-v1");
  std::string directory = std::string(TPUSIM_TEST_DATA) + "/errors/arch";
  CHECK(load_error(directory) ==
        directory + ": error: is a directory; give an arch YAML file or a preset name");
}

TEST_CASE("override errors are located at the override", "[arch][errors]") {
  CHECK(load_error("teach-4x4", {"mxu.rwos=8"}) ==
        "--set mxu.rwos=8: error: mxu.rwos: unknown key 'rwos'; did you mean 'rows'?");
  CHECK(load_error("teach-4x4", {"mxu.rows"}) ==
        "--set mxu.rows: error: expected key.path=value, e.g. --set mxu.rows=64");
  CHECK(load_error("teach-4x4", {"mxu..rows=8"}) ==
        "--set mxu..rows=8: error: expected key.path=value with a dotted key path such as "
        "mxu.rows, got key 'mxu..rows'");
  CHECK(load_error("teach-4x4", {"mxu=8"}) ==
        "--set mxu=8: error: mxu: is a section, not a value; set its keys one at a time, e.g. "
        "--set mxu.rows=...");
  CHECK(load_error("teach-4x4", {"mxu.rows.x=8"}) ==
        "--set mxu.rows.x=8: error: mxu.rows.x: mxu.rows is a value, not a section; it has no "
        "key 'x'");
  CHECK(load_error("teach-4x4", {"vpu.exp.speed=1"}) ==
        "--set vpu.exp.speed=1: error: vpu.exp.speed: unknown key 'speed'; valid keys here are: "
        "latency, interval");
  // Values go through the same checks as the file's, and are blamed on the override.
  CHECK(load_error("teach-4x4", {"mxu.rows=8", "mxu.cols=0"}) ==
        "--set mxu.cols=0: error: mxu.cols: must be at least 1, got 0");
  CHECK(load_error("teach-4x4", {"mxu.rows=abc"}) ==
        "--set mxu.rows=abc: error: mxu.rows: expected an integer, got 'abc'");
  CHECK(load_error("teach-4x4", {"mxu.rows="}) ==
        "--set mxu.rows=: error: mxu.rows: expected an integer, got an empty value");
  CHECK(load_error("teach-4x4", {"mxu.rows=[1"}) ==
        "--set mxu.rows=[1: error: mxu.rows: cannot read the value as YAML: end of sequence flow "
        "not found");
  CHECK(load_error("teach-4x4", {"weight_buffer.bytes=16"}) ==
        "--set weight_buffer.bytes=16: error: weight_buffer.bytes: must hold two 4x4 int8 weight "
        "tiles (32 bytes) because mxu.weight_double_buffering is true (the next tile loads while "
        "the current one computes), got 16; make it larger or set mxu.weight_double_buffering to "
        "false");
  // A problem the override only reveals is still located where it is.
  std::string error = load_error("teach-4x4", {"unified_buffer.banks=3"});
  CHECK(error ==
        "--set unified_buffer.banks=3: error: unified_buffer.banks: 3 banks cannot "
        "split 4096 bytes evenly; make bytes a multiple of 3");
  // An override does not hide an error in the file.
  try {
    parse_arch_yaml(std::string(kValid) + "vpu: { lanes: -1 }\n", "t.yaml", {"mxu.rows=4"});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) ==
          "t.yaml:6:15: error: vpu.lanes: must be at least 0 (0 or absent means mxu.cols), got -1");
  }
}

TEST_CASE("the CLI prints only the message and exits 1", "[arch][errors][cli]") {
  auto r = test::run_tpusim("arch show tests/errors/arch/unknown_key.yaml");
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err ==
        "tests/errors/arch/unknown_key.yaml:6:3: error: mxu.rwos: unknown key 'rwos'; did you "
        "mean 'rows'?\n");

  r = test::run_tpusim("arch show teach-4x4 --set mxu.rwos=8");
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "--set mxu.rwos=8: error: mxu.rwos: unknown key 'rwos'; did you mean 'rows'?\n");
}
