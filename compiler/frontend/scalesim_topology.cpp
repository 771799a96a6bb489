// Reading SCALE-Sim topology files (compiler/frontend/scalesim_topology.h, docs/scalesim.md).
// The text is split into rows of fields, each field knowing its line and column; the header row
// says which layout the rows have; each row becomes one conv (or linear) with its own input,
// weight and output, as independent of the others as SCALE-Sim simulates them.
#include "compiler/frontend/scalesim_topology.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/frontend/defaults.h"
#include "ir/diagnostics.h"
#include "ir/sizes.h"
#include "simulator/random_data.h"

namespace tpusim {

namespace {

using frontend_defaults::accumulator_output_scale;
using frontend_defaults::default_weight_scale;
using frontend_defaults::kDefaultInputScale;
using frontend_defaults::kUniformInt8Rms;
using frontend_defaults::round_scale;

// The columns of each layout, spelled as SCALE-Sim's own files spell them.
const std::vector<std::string> kConvColumns = {"Layer name",    "IFMAP Height", "IFMAP Width",
                                               "Filter Height", "Filter Width", "Channels",
                                               "Num Filter",    "Strides"};
const std::vector<std::string> kGemmColumns = {"Layer", "M", "N", "K"};

const std::vector<std::string>& columns_of(TopologyFormat format) {
  return format == TopologyFormat::Gemm ? kGemmColumns : kConvColumns;
}
const char* layout_name(TopologyFormat format) {
  return format == TopologyFormat::Gemm ? "GEMM" : "conv";
}
std::string header_text(TopologyFormat format) {
  return fmt::format("{},", fmt::join(columns_of(format), ", "));
}

// ---------------------------------------------------------------------------------------------
// Rows and fields.

// One comma-separated field: its text without the blanks around it, and where it starts.
struct Field {
  std::string text;
  int column = 0;  // 1-based; for an empty field, where its text would be
};

struct Row {
  int line = 0;
  std::vector<Field> fields;
  int end_column = 0;  // just past the row's last character (blanks and comment left out)
};

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// The rows of the text. Blank lines are skipped, '#' starts a comment that runs to the end of
// the line (mobilnet_paper.csv marks rows `#dw`), and the empty field after a row's last comma
// is dropped: SCALE-Sim's rows end with a comma, but a row without one reads the same.
std::vector<Row> split_rows(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte order mark
  std::vector<Row> rows;
  int line = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view content = text.substr(start, end - start);
    ++line;
    if (size_t hash = content.find('#'); hash != std::string_view::npos)
      content = content.substr(0, hash);
    while (!content.empty() && is_blank(content.back())) content.remove_suffix(1);
    if (!content.empty() && !std::all_of(content.begin(), content.end(), is_blank)) {
      Row row;
      row.line = line;
      row.end_column = static_cast<int>(content.size()) + 1;
      size_t field_start = 0;
      while (true) {
        size_t comma = content.find(',', field_start);
        size_t first = field_start, last = comma == std::string_view::npos ? content.size() : comma;
        while (first < last && is_blank(content[first])) ++first;
        while (last > first && is_blank(content[last - 1])) --last;
        row.fields.push_back(
            Field{std::string(content.substr(first, last - first)), static_cast<int>(first) + 1});
        if (comma == std::string_view::npos) break;
        field_start = comma + 1;
      }
      if (row.fields.size() > 1 && row.fields.back().text.empty()) row.fields.pop_back();
      rows.push_back(std::move(row));
    }
    if (end == text.size()) break;
    start = end + 1;
  }
  return rows;
}

// Lower case with each run of blanks made one space: how header names are compared.
std::string normalized(std::string_view text) {
  std::string out;
  bool blank = false;
  for (char c : text) {
    if (is_blank(c)) {
      blank = true;
      continue;
    }
    if (blank && !out.empty()) out += ' ';
    blank = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool is_integer_text(std::string_view text) {
  if (text.starts_with('+') || text.starts_with('-')) text.remove_prefix(1);
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A row whose fields after the first are all integers is a layer, not a header.
bool looks_like_layer(const Row& row) {
  return row.fields.size() >= 2 &&
         std::all_of(row.fields.begin() + 1, row.fields.end(),
                     [](const Field& f) { return is_integer_text(f.text); });
}

// ---------------------------------------------------------------------------------------------
// The header row.

class TopologyReader {
 public:
  TopologyReader(std::string file, const ScaleSimOptions& options, const ResourceLimits& limits)
      : file_(std::move(file)), options_(options), limits_(limits) {
    graph_.file = file_;
    graph_.name = frontend_defaults::name_from_file(file_);
  }

  TopologyFormat read_header(const Row& header) const;
  void add_layer(const Row& row, TopologyFormat format);
  Graph finish();

 private:
  SourceLocation at(const Row& row, int column, std::string key_path = "") const {
    return SourceLocation{file_, row.line, column, std::move(key_path)};
  }
  [[noreturn]] void fail(const Row& row, int column, std::string key_path,
                         std::string message) const {
    throw Error(at(row, column, std::move(key_path)), std::move(message));
  }

  int64_t read_size(const Row& row, size_t index, TopologyFormat format) const;
  std::string layer_name(const Row& row, TopologyFormat format);
  void count_data(const Value& v, const SourceLocation& where);
  int add_data(const std::string& name, ValueKind kind, std::vector<int64_t> shape, double scale,
               const SourceLocation& where);
  void add_conv(const Row& row);
  void add_gemm(const Row& row);
  void add_product(OpKind kind, const std::string& name, int input, int weight, double reduction,
                   std::map<std::string, AttrValue> attrs, const SourceLocation& where);

  bool is_int8() const { return options_.type == DType::Int8; }

  std::string file_;
  const ScaleSimOptions& options_;
  const ResourceLimits& limits_;
  Graph graph_;
  std::set<std::string> names_;  // every value name so far
  int64_t data_bytes_ = 0;       // inputs and weights so far
  int64_t macs_ = 0;             // multiply-accumulates so far
};

TopologyFormat TopologyReader::read_header(const Row& header) const {
  const std::string either =
      fmt::format("'{}' (convolutions) or '{}' (GEMMs)", header_text(TopologyFormat::Conv),
                  header_text(TopologyFormat::Gemm));
  if (looks_like_layer(header)) {
    fail(header, header.fields[0].column, "",
         fmt::format("this is a layer, but the first line of a topology is its header: "
                     "SCALE-Sim skips it unread, so it would not simulate this layer; add the "
                     "header line {} above it",
                     either));
  }
  if (options_.format != TopologyFormat::Detect) return options_.format;

  const Field& first = header.fields[0];
  const std::string first_name = normalized(first.text);
  if (first_name != "layer name" && first_name != "layer") {
    fail(header, first.column, "",
         fmt::format("expected SCALE-Sim's header row, {}; got '{}'", either, first.text));
  }
  if (header.fields.size() < 2) {
    fail(header, header.end_column, "",
         fmt::format("the header names no columns after '{}'; SCALE-Sim's header rows are {}",
                     first.text, either));
  }
  const Field& second = header.fields[1];
  TopologyFormat format;
  if (normalized(second.text) == "ifmap height") {
    format = TopologyFormat::Conv;
  } else if (normalized(second.text) == "m") {
    format = TopologyFormat::Gemm;
  } else {
    fail(header, second.column, "",
         fmt::format("unknown column '{}': a conv topology's second column is 'IFMAP Height', "
                     "a GEMM topology's is 'M'; SCALE-Sim's header rows are {}",
                     second.text, either));
  }
  const std::vector<std::string>& columns = columns_of(format);
  for (size_t i = 2; i < columns.size(); ++i) {
    if (i >= header.fields.size()) {
      fail(header, header.end_column, "",
           fmt::format("the header ends after '{}'; a {} topology's header is '{}'",
                       header.fields.back().text, layout_name(format), header_text(format)));
    }
    if (normalized(header.fields[i].text) != normalized(columns[i])) {
      fail(header, header.fields[i].column, "",
           fmt::format("expected the column '{}', got '{}': SCALE-Sim reads the columns by "
                       "position, whatever the header says, so a {} topology's header is '{}'; "
                       "fix the header, or the order of the rows' columns",
                       columns[i], header.fields[i].text, layout_name(format),
                       header_text(format)));
    }
  }
  if (header.fields.size() > columns.size()) {
    const Field& extra = header.fields[columns.size()];
    if (normalized(extra.text) == "sparsity") {
      fail(header, extra.column, "",
           "SCALE-Sim's Sparsity column (N:M structured sparsity of the filters) is not read "
           "yet; remove the column and its values to simulate the layers dense");
    }
    fail(header, extra.column, "",
         fmt::format(
             "unexpected column '{}' after '{}': a {} topology has {} columns ('{}'); remove it",
             extra.text, columns.back(), layout_name(format), columns.size(), header_text(format)));
  }
  return format;
}

// ---------------------------------------------------------------------------------------------
// The layers.

int64_t TopologyReader::read_size(const Row& row, size_t index, TopologyFormat format) const {
  const Field& field = row.fields[index];
  const std::string& column = columns_of(format)[index];
  if (field.text.empty())
    fail(row, field.column, column, "missing; give a whole number of at least 1");
  if (!is_integer_text(field.text))
    fail(row, field.column, column, fmt::format("expected an integer, got '{}'", field.text));
  std::string_view digits = field.text;
  if (digits.starts_with('+')) digits.remove_prefix(1);
  int64_t value = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error == std::errc::result_out_of_range || value > kMaxDimension) {
    if (!digits.starts_with('-')) {
      fail(row, field.column, column,
           fmt::format("must be at most {} (the largest size tpusim accepts), got {}",
                       kMaxDimension, field.text));
    }
  }
  if (error != std::errc() || value < 1)
    fail(row, field.column, column, fmt::format("must be at least 1, got {}", field.text));
  return value;
}

// The layer's name made a graph name (other characters than letters, digits, '_' and '.' become
// '_'; "layer_" in front of one that does not start with a letter or '_'), and unique: SCALE-Sim
// allows two layers of one name, the graph does not, so the second becomes NAME_2.
std::string TopologyReader::layer_name(const Row& row, TopologyFormat format) {
  const Field& field = row.fields[0];
  if (field.text.empty())
    fail(row, field.column, columns_of(format)[0], "missing; give the layer a name");
  std::string base = field.text;
  for (char& c : base) {
    if (!frontend_defaults::is_name_char(c)) c = '_';
  }
  if (!frontend_defaults::is_name_start(base[0])) base = "layer_" + base;
  auto taken = [&](const std::string& name) {
    return names_.contains(name) || names_.contains(name + ".ifmap") ||
           names_.contains(name + ".w");
  };
  std::string name = base;
  for (int64_t suffix = 2; taken(name); ++suffix) name = fmt::format("{}_{}", base, suffix);
  return name;
}

// Counts the bytes of an input or weight against the memory limit before any data is made, as
// the model format does (docs/limits.md).
void TopologyReader::count_data(const Value& v, const SourceLocation& where) {
  const int64_t elements = element_count_or_fail(v.shape, where, v.name);
  const int64_t bytes =
      multiply_or_fail(elements, dtype_size(v.dtype), where, fmt::format("'{}'", v.name));
  data_bytes_ = add_or_fail(data_bytes_, bytes, where, "the model's data");
  require_memory(data_bytes_, limits_, where,
                 fmt::format("the model's inputs and weights (up to '{}')", v.name));
}

int TopologyReader::add_data(const std::string& name, ValueKind kind, std::vector<int64_t> shape,
                             double scale, const SourceLocation& where) {
  Value v;
  v.name = name;
  v.kind = kind;
  v.dtype = options_.type;
  v.shape = std::move(shape);
  v.scale = is_int8() ? scale : 0;
  v.location = where;
  if (kind == ValueKind::Weight) v.seed = seed_for(name, options_.seed);
  count_data(v, where);
  names_.insert(name);
  return graph_.add_value(std::move(v));
}

// The layer's op `name` = kind(input, weight), its output a graph output with the default scale
// of a layer without a bias (docs/model-format.md): x and w are seeded data of the default scales.
void TopologyReader::add_product(OpKind kind, const std::string& name, int input, int weight,
                                 double reduction, std::map<std::string, AttrValue> attrs,
                                 const SourceLocation& where) {
  const Value& x = graph_.values[static_cast<size_t>(input)];
  const Value& w = graph_.values[static_cast<size_t>(weight)];
  Value y;
  y.name = name;
  y.kind = ValueKind::Activation;
  y.dtype = options_.type;
  y.location = where;
  if (is_int8()) {
    y.scale = round_scale(
        accumulator_output_scale(x.scale, kUniformInt8Rms, w.scale, kUniformInt8Rms, reduction, 0));
  }
  names_.insert(name);
  const int output = graph_.add_value(std::move(y));
  Op op;
  op.kind = kind;
  op.name = name;
  op.inputs = {input, weight};
  op.output = output;
  op.attrs = std::move(attrs);
  op.location = where;
  graph_.add_op(std::move(op));
  graph_.outputs.push_back(output);
}

// `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
// Strides`: conv(x [1, C, H, W], w [N, C, R, S]) with the stride in both dims, unpadded but for
// SCALE-Sim's last window (below).
// A name containing "DP" is SCALE-Sim's depthwise layer, which it simulates as one layer per
// channel, each of one channel and all N filters: here one conv with groups = C and C * N
// filters, whose GEMM per group is that layer's.
void TopologyReader::add_conv(const Row& row) {
  const TopologyFormat format = TopologyFormat::Conv;
  const std::string name = layer_name(row, format);
  const int64_t height = read_size(row, 1, format), width = read_size(row, 2, format);
  const int64_t filter_height = read_size(row, 3, format), filter_width = read_size(row, 4, format);
  const int64_t channels = read_size(row, 5, format), filters = read_size(row, 6, format);
  const int64_t stride = read_size(row, 7, format);
  // SCALE-Sim asserts the same (its issue #9): without padding the filter must fit the input.
  if (filter_height > height) {
    fail(row, row.fields[3].column, kConvColumns[3],
         fmt::format("is {}, more than the IFMAP Height {}: SCALE-Sim does not pad, so the filter "
                     "must fit in the input; use a filter of at most {} rows or a taller IFMAP",
                     filter_height, height, height));
  }
  if (filter_width > width) {
    fail(row, row.fields[4].column, kConvColumns[4],
         fmt::format("is {}, more than the IFMAP Width {}: SCALE-Sim does not pad, so the filter "
                     "must fit in the input; use a filter of at most {} columns or a wider IFMAP",
                     filter_width, width, width));
  }
  const SourceLocation where = at(row, row.fields[0].column);
  const SourceLocation layer_where = at(row, row.fields[0].column, name);
  const bool depthwise = row.fields[0].text.find("DP") != std::string::npos;
  const int64_t groups = depthwise ? channels : 1;
  const int64_t out_channels = depthwise
                                   ? multiply_or_fail(channels, filters, layer_where,
                                                      "the filter count (Channels x Num Filter)")
                                   : filters;
  // SCALE-Sim's output size, ceil((H - R + s) / s) = ceil((H - R) / s) + 1, is one more than a
  // valid convolution's floor((H - R) / s) + 1 when s does not divide H - R: its last window runs
  // past the bottom (right) edge, where SCALE-Sim reads nothing (address -1). Zero padding at the
  // end only, (E - 1) * s + R - H, gives the same windows, so M and the MACs are SCALE-Sim's.
  const int64_t out_height = (height - filter_height + stride - 1) / stride + 1;
  const int64_t out_width = (width - filter_width + stride - 1) / stride + 1;
  const int64_t pad_bottom = (out_height - 1) * stride + filter_height - height;
  const int64_t pad_right = (out_width - 1) * stride + filter_width - width;

  element_count_or_fail(std::vector<int64_t>{1, out_channels, out_height, out_width}, layer_where,
                        name);
  const int x = add_data(name + ".ifmap", ValueKind::Input, {1, channels, height, width},
                         kDefaultInputScale, layer_where);
  // In floating point: the product may be past int64 until the weights' element count is checked.
  const double fan_in = static_cast<double>(channels / groups) *
                        static_cast<double>(filter_height) * static_cast<double>(filter_width);
  const int w = add_data(name + ".w", ValueKind::Weight,
                         {out_channels, channels / groups, filter_height, filter_width},
                         default_weight_scale(fan_in), layer_where);
  const int64_t reduction =
      channels / groups * filter_height * filter_width;  // at most the weights' elements
  const int64_t macs = multiply_or_fail(
      multiply_or_fail(out_height * out_width, out_channels, layer_where, "the layer's MAC count"),
      reduction, layer_where, "the layer's MAC count");
  macs_ = add_or_fail(macs_, macs, layer_where, "the model's MAC count");
  add_product(OpKind::Conv, name, x, w, static_cast<double>(reduction),
              {{"strides", std::vector<int64_t>{stride, stride}},
               {"pads", std::vector<int64_t>{0, 0, pad_bottom, pad_right}},
               {"dilations", std::vector<int64_t>{1, 1}},
               {"groups", groups}},
              where);
}

// `Layer, M, N, K`: SCALE-Sim's ifmap M x K times its filter K x N, here linear(x [M, K],
// w [N, K]) (linear keeps its weights as [out_features, in_features]).
void TopologyReader::add_gemm(const Row& row) {
  const TopologyFormat format = TopologyFormat::Gemm;
  const std::string name = layer_name(row, format);
  const int64_t m = read_size(row, 1, format), n = read_size(row, 2, format),
                k = read_size(row, 3, format);
  const SourceLocation where = at(row, row.fields[0].column);
  const SourceLocation layer_where = at(row, row.fields[0].column, name);
  element_count_or_fail(std::vector<int64_t>{m, n}, layer_where, name);
  const int x =
      add_data(name + ".ifmap", ValueKind::Input, {m, k}, kDefaultInputScale, layer_where);
  const int w = add_data(name + ".w", ValueKind::Weight, {n, k},
                         default_weight_scale(static_cast<double>(k)), layer_where);
  const int64_t macs =
      multiply_or_fail(m * n, k, layer_where, "the layer's MAC count");  // m * n: at most 2^62
  macs_ = add_or_fail(macs_, macs, layer_where, "the model's MAC count");
  add_product(OpKind::Linear, name, x, w, static_cast<double>(k), {}, where);
}

void TopologyReader::add_layer(const Row& row, TopologyFormat format) {
  const std::vector<std::string>& columns = columns_of(format);
  const std::string all = fmt::format("{}", fmt::join(columns, ", "));
  if (row.fields.size() < columns.size()) {
    fail(row, row.end_column, columns[row.fields.size()],
         fmt::format("missing; a {} layer has {} columns ({}), this row has {}",
                     layout_name(format), columns.size(), all, row.fields.size()));
  }
  if (row.fields.size() > columns.size()) {
    const Field& extra = row.fields[columns.size()];
    const bool ratio = extra.text.find(':') != std::string::npos;
    fail(row, extra.column, "",
         fmt::format("unexpected column '{}': a {} layer has {} columns ({}), this row has {}{}",
                     extra.text, layout_name(format), columns.size(), all, row.fields.size(),
                     ratio ? "; SCALE-Sim's N:M sparsity column is not read yet, remove it to "
                             "simulate the layer dense"
                           : "; remove it"));
  }
  if (format == TopologyFormat::Gemm) {
    add_gemm(row);
  } else {
    add_conv(row);
  }
}

Graph TopologyReader::finish() {
  infer_shapes(graph_);
  return std::move(graph_);
}

std::string read_topology_file(const std::string& path) {
  const SourceLocation where{path, 0, 0, ""};
  std::error_code error;
  if (!std::filesystem::exists(path, error))
    throw Error(where, "cannot open file: no such file or directory");
  if (std::filesystem::is_directory(path, error))
    throw Error(where, "is a directory; give a SCALE-Sim topology file (.csv)");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::string reason = std::strerror(errno);
    if (!reason.empty())
      reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
    throw Error(where, "cannot open file: " + reason);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

Graph parse_scalesim_topology(const std::string& text, const std::string& file_name,
                              const ScaleSimOptions& options, const ResourceLimits& limits) {
  const std::vector<Row> rows = split_rows(text);
  if (rows.empty()) {
    throw Error(SourceLocation{file_name, 0, 0, ""},
                fmt::format("the file is empty; a SCALE-Sim topology is a header line, '{}' "
                            "or '{}', then one layer a line (see examples/scalesim/)",
                            header_text(TopologyFormat::Conv), header_text(TopologyFormat::Gemm)));
  }
  TopologyReader reader(file_name, options, limits);
  const TopologyFormat format = reader.read_header(rows[0]);
  if (rows.size() == 1) {
    throw Error(SourceLocation{file_name, rows[0].line, 1, ""},
                fmt::format("no layers after the header; add one layer a line, such as '{}'",
                            format == TopologyFormat::Gemm ? "Gemm1, 64, 128, 256,"
                                                           : "Conv1, 224, 224, 3, 3, 3, 64, 1,"));
  }
  for (size_t i = 1; i < rows.size(); ++i) reader.add_layer(rows[i], format);
  return reader.finish();
}

Graph load_scalesim_topology(const std::string& path, const ScaleSimOptions& options,
                             const ResourceLimits& limits) {
  return parse_scalesim_topology(read_topology_file(path), path, options, limits);
}

}  // namespace tpusim
