// Bad SCALE-Sim topologies -> the exact message a user sees, file:line:col and the column's name
// included. Each case is a file in tests/errors/topologies/; the reader stops at the first
// problem. Limits that need a huge file (memory, MAC counts) are given as text.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "compiler/frontend/scalesim_topology.h"
#include "ir/diagnostics.h"
#include "test_util.h"

using namespace tpusim;

namespace {

struct ErrorCase {
  const char* name;     // topologies/NAME.csv
  std::string message;  // Error::what()
};

const std::vector<ErrorCase> kCases = {
    {"blank-lines-only",
     R"m(blank-lines-only.csv: error: the file is empty; a SCALE-Sim topology is a header line, 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,' or 'Layer, M, N, K,', then one layer a line (see examples/scalesim/))m"},
    {"empty-value",
     R"m(empty-value.csv:2:12: error: IFMAP Width: missing; give a whole number of at least 1)m"},
    {"empty",
     R"m(empty.csv: error: the file is empty; a SCALE-Sim topology is a header line, 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,' or 'Layer, M, N, K,', then one layer a line (see examples/scalesim/))m"},
    {"filter-too-tall",
     R"m(filter-too-tall.csv:3:14: error: Filter Height: is 9, more than the IFMAP Height 7: SCALE-Sim does not pad, so the filter must fit in the input; use a filter of at most 7 rows or a taller IFMAP)m"},
    {"filter-too-wide",
     R"m(filter-too-wide.csv:2:17: error: Filter Width: is 7, more than the IFMAP Width 5: SCALE-Sim does not pad, so the filter must fit in the input; use a filter of at most 5 columns or a wider IFMAP)m"},
    {"fractional", R"m(fractional.csv:2:31: error: Strides: expected an integer, got '1.5')m"},
    {"gemm-header-order",
     R"m(gemm-header-order.csv:1:11: error: expected the column 'N', got 'K': SCALE-Sim reads the columns by position, whatever the header says, so a GEMM topology's header is 'Layer, M, N, K,'; fix the header, or the order of the rows' columns)m"},
    {"gemm-missing-k",
     R"m(gemm-missing-k.csv:2:16: error: K: missing; a GEMM layer has 4 columns (Layer, M, N, K), this row has 3)m"},
    {"gemm-zero", R"m(gemm-zero.csv:2:12: error: N: must be at least 1, got 0)m"},
    {"header-extra-column",
     R"m(header-extra-column.csv:1:100: error: unexpected column 'Batch' after 'Strides': a conv topology has 8 columns ('Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,'); remove it)m"},
    {"header-misspelled",
     R"m(header-misspelled.csv:1:40: error: expected the column 'Filter Height', got 'Filter Heigth': SCALE-Sim reads the columns by position, whatever the header says, so a conv topology's header is 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,'; fix the header, or the order of the rows' columns)m"},
    {"header-only",
     R"m(header-only.csv:1:1: error: no layers after the header; add one layer a line, such as 'Conv1, 224, 224, 3, 3, 3, 64, 1,')m"},
    {"header-short",
     R"m(header-short.csv:1:78: error: the header ends after 'Channels'; a conv topology's header is 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,')m"},
    {"header-sparsity",
     R"m(header-sparsity.csv:1:109: error: SCALE-Sim's Sparsity column (N:M structured sparsity of the filters) is not read yet; remove the column and its values to simulate the layers dense)m"},
    {"missing-name",
     R"m(missing-name.csv:2:1: error: Layer name: missing; give the layer a name)m"},
    {"negative-stride",
     R"m(negative-stride.csv:2:31: error: Strides: must be at least 1, got -2)m"},
    {"no-header",
     R"m(no-header.csv:1:1: error: this is a layer, but the first line of a topology is its header: SCALE-Sim skips it unread, so it would not simulate this layer; add the header line 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,' (convolutions) or 'Layer, M, N, K,' (GEMMs) above it)m"},
    {"not-a-number",
     R"m(not-a-number.csv:2:13: error: IFMAP Width: expected an integer, got '22x')m"},
    {"sparsity-value",
     R"m(sparsity-value.csv:2:31: error: unexpected column '1:4': a conv layer has 8 columns (Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides), this row has 9; SCALE-Sim's N:M sparsity column is not read yet, remove it to simulate the layer dense)m"},
    {"tensor-too-large",
     R"m(tensor-too-large.csv:2:1: error: Big: tensor 'Big' of shape [1, 1, 2147483647, 2147483647] has more than 2^48 elements, the most one tensor may have; use smaller dimensions)m"},
    {"too-few-columns",
     R"m(too-few-columns.csv:2:20: error: Filter Width: missing; a conv layer has 8 columns (Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides), this row has 4)m"},
    {"too-large-for-int64",
     R"m(too-large-for-int64.csv:2:27: error: Num Filter: must be at most 2147483647 (the largest size tpusim accepts), got 99999999999999999999)m"},
    {"too-large",
     R"m(too-large.csv:2:27: error: Num Filter: must be at most 2147483647 (the largest size tpusim accepts), got 3000000000)m"},
    {"too-many-columns",
     R"m(too-many-columns.csv:2:34: error: unexpected column '2': a conv layer has 8 columns (Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides), this row has 9; remove it)m"},
    {"unknown-header",
     R"m(unknown-header.csv:1:1: error: expected SCALE-Sim's header row, 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,' (convolutions) or 'Layer, M, N, K,' (GEMMs); got 'Name')m"},
    {"unknown-second-column",
     R"m(unknown-second-column.csv:1:13: error: unknown column 'Height': a conv topology's second column is 'IFMAP Height', a GEMM topology's is 'M'; SCALE-Sim's header rows are 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,' (convolutions) or 'Layer, M, N, K,' (GEMMs))m"},
    {"zero-channels",
     R"m(zero-channels.csv:2:24: error: Channels: must be at least 1, got 0)m"},
};

std::string topologies_dir() {
  return std::string(TPUSIM_TEST_DATA) + "/errors/topologies";
}

std::string parse_error(const std::string& text, const std::string& file,
                        const ScaleSimOptions& options = {}, const ResourceLimits& limits = {}) {
  try {
    parse_scalesim_topology(text, file, options, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string run_case(const ErrorCase& c) {
  const std::string file = std::string(c.name) + ".csv";
  return parse_error(test::read_text_file(topologies_dir() + "/" + file), file);
}

const std::string kConvHeader =
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,\n";

}  // namespace

TEST_CASE("bad topologies give exact messages at file:line:col", "[errors][scalesim]") {
  for (const auto& c : kCases) {
    DYNAMIC_SECTION(c.name) {
      CHECK(run_case(c) == c.message);
    }
  }
}

TEST_CASE("every topology in errors/topologies has a case", "[errors][scalesim]") {
  for (const auto& entry : std::filesystem::directory_iterator(topologies_dir())) {
    std::string file = entry.path().filename().string();
    INFO(file);
    REQUIRE(file.ends_with(".csv"));
    std::string name = file.substr(0, file.size() - 4);
    CHECK(std::count_if(kCases.begin(), kCases.end(),
                        [&](const ErrorCase& c) { return c.name == name; }) == 1);
  }
}

TEST_CASE("topology errors carry the column's name as the key path", "[errors][scalesim]") {
  try {
    parse_scalesim_topology(
        kConvHeader + "Conv1, 224, 224, 3, 3, 3, 64, 1,\nConv2, 7, 7, 9, 3, 64, 64, 1,\n", "t.csv");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.location().file == "t.csv");
    CHECK(e.location().line == 3);
    CHECK(e.location().column == 14);
    CHECK(e.location().key_path == "Filter Height");
  }
}

TEST_CASE("a forced format skips the header unread, as SCALE-Sim does, but not a layer",
          "[errors][scalesim]") {
  ScaleSimOptions gemm;
  gemm.format = TopologyFormat::Gemm;
  // The rows of a conv file read as GEMMs have too many columns.
  CHECK(parse_error(kConvHeader + "Conv1, 224, 224, 3, 3, 3, 64, 1,\n", "t.csv", gemm) ==
        "t.csv:2:21: error: unexpected column '3': a GEMM layer has 4 columns (Layer, M, N, "
        "K), this row has 8; remove it");
  // A first line that is a layer would be skipped by SCALE-Sim: an error whatever the format.
  CHECK(parse_error("G1, 64, 64, 64,\n", "t.csv", gemm) ==
        "t.csv:1:1: error: this is a layer, but the first line of a topology is its header: "
        "SCALE-Sim skips it unread, so it would not simulate this layer; add the header line "
        "'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num "
        "Filter, Strides,' (convolutions) or 'Layer, M, N, K,' (GEMMs) above it");
}

TEST_CASE("topologies are refused before their data would pass --max-memory",
          "[errors][scalesim][limits]") {
  ResourceLimits limits;
  limits.max_memory_bytes = 1 << 20;
  CHECK(
      parse_error(kConvHeader + "Small, 8, 8, 3, 3, 3, 8, 1,\nConv1, 1024, 1024, 3, 3, 3, 64, 1,\n",
                  "t.csv", {}, limits) ==
      "t.csv:3:1: error: Conv1: the model's inputs and weights (up to 'Conv1.ifmap') would "
      "take 3 MiB of memory, more than --max-memory allows (1 MiB); use smaller tensors, or "
      "raise --max-memory if this machine has the memory");
}

TEST_CASE("a topology's MAC count may not overflow 64 bits", "[errors][scalesim][limits]") {
  // Every tensor is within 2^48 elements (the input exactly 2^48), but the MACs are about 2^92.
  // Nothing is allocated while reading, so the memory limit is lifted to reach the MAC check.
  ResourceLimits limits;
  limits.max_memory_bytes = std::numeric_limits<int64_t>::max();
  CHECK(parse_error(kConvHeader + "Huge, 16777216, 16777216, 8388608, 8388608, 1, 1, 1,\n", "t.csv",
                    {}, limits) ==
        "t.csv:2:1: error: Huge: the layer's MAC count is too large: 70368760954881 x "
        "70368744177664 does not fit in 64 bits");
  // Layers of just under 2^61 MACs each: the fifth takes the sum past 2^63.
  std::string text = kConvHeader;
  for (int i = 0; i < 5; ++i) text += "Big, 16777216, 16777216, 128, 64, 1, 1, 1,\n";
  CHECK(parse_error(text, "t.csv", {}, limits) ==
        "t.csv:6:1: error: Big_5: the model's MAC count is too large: 9223267583512313856 + "
        "2305816895878078464 does not fit in 64 bits");
}
