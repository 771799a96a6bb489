// Loading, validating and printing the machine description (simulator/arch.h, docs/config.md).
// The YAML tree is read through a small typed reader: every value knows its key path and where
// it came from (a line:column in the file, or the `--set` override that replaced it), so every
// error can name both.
#include "simulator/arch.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "ir/diagnostics.h"
#include "simulator/yaml_text.h"
#include "tpusim/version.h"

namespace tpusim {

TargetLimits target_limits(const ArchConfig& arch) {
  TargetLimits limits;
  limits.rows = arch.mxu.rows;
  limits.cols = arch.mxu.cols;
  limits.dataflow = arch.mxu.dataflow;
  limits.operand_type = arch.mxu.operand_type;
  limits.buffer_bytes[static_cast<int>(Buffer::Unified)] = arch.unified_buffer.bytes;
  limits.buffer_bytes[static_cast<int>(Buffer::Weight)] = arch.weight_buffer.bytes;
  limits.buffer_bytes[static_cast<int>(Buffer::Accumulator)] = arch.accumulator.bytes;
  return limits;
}

namespace {

using yaml_text::child_path;
using yaml_text::contains;
using yaml_text::describe;
using yaml_text::join;
using yaml_text::parse_int64;
using yaml_text::trim;
using yaml_text::at_least;
using yaml_text::read_bool;
using yaml_text::read_integer;
using yaml_text::read_integer_at_least;
using yaml_text::read_number;
using yaml_text::scalar_text;

// ---------------------------------------------------------------------------------------------
// The schema: the keys each section accepts, in the order arch_to_yaml prints them.

struct VpuOp {
  const char* name;
  VectorOpTiming VpuConfig::*timing;
};
constexpr VpuOp kVpuOps[] = {
    {"add", &VpuConfig::add},
    {"mul", &VpuConfig::mul},
    {"max", &VpuConfig::max},
    {"exp", &VpuConfig::exp},
    {"reciprocal", &VpuConfig::reciprocal},
    {"rsqrt", &VpuConfig::rsqrt},
    {"reduction", &VpuConfig::reduction},
    {"convert", &VpuConfig::convert},
};

const std::vector<std::string> kTopLevelKeys = {
    "name", "mxu", "unified_buffer", "weight_buffer", "accumulator", "vpu", "dram"};
const std::vector<std::string> kMxuKeys = {"rows",         "cols",      "dataflow",
                                           "operand_type", "clock_mhz", "weight_double_buffering"};
const std::vector<std::string> kBufferKeys = {"bytes", "banks", "bytes_per_cycle"};
const std::vector<std::string> kVpuKeys = [] {
  std::vector<std::string> keys = {"lanes"};
  for (const auto& op : kVpuOps) keys.push_back(op.name);
  return keys;
}();
const std::vector<std::string> kVpuOpKeys = {"latency", "interval"};
const std::vector<std::string> kDramKeys = {"bytes_per_cycle", "latency_cycles", "channels"};

// The keys of the section at `path` ("" = the top level), or nullptr when `path` is a value.
const std::vector<std::string>* section_keys(const std::string& path) {
  if (path.empty()) return &kTopLevelKeys;
  if (path == "mxu") return &kMxuKeys;
  if (path == "unified_buffer" || path == "weight_buffer" || path == "accumulator")
    return &kBufferKeys;
  if (path == "vpu") return &kVpuKeys;
  if (path == "dram") return &kDramKeys;
  if (path.starts_with("vpu.") && path != "vpu.lanes" && contains(kVpuKeys, path.substr(4)))
    return &kVpuOpKeys;
  return nullptr;
}

std::string unknown_key_message(const std::string& key, const std::vector<std::string>& valid) {
  std::string hint = nearest_spelling(key, valid);
  if (!hint.empty()) return fmt::format("unknown key '{}'; did you mean '{}'?", key, hint);
  return fmt::format("unknown key '{}'; valid keys here are: {}", key, join(valid));
}

// Shortest text that reads back as the same double ("700", "48.571429").
std::string format_number(double value) {
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// ---------------------------------------------------------------------------------------------
// Where each part of the tree came from.

SourceLocation override_location(const std::string& override_text, const std::string& path) {
  return SourceLocation{"--set " + override_text, 0, 0, path};
}

class Provenance {
 public:
  explicit Provenance(std::string file) : file_(std::move(file)) {}

  void record_override(const std::string& path, const std::string& override_text) {
    overrides_[path] = override_text;
  }

  // The location to blame for the node at `path`: the override that set it, else the node's
  // own line:column (yaml-cpp marks are 0-based), else `fallback` (nodes an override created).
  SourceLocation locate(const YAML::Mark& mark, const std::string& path,
                        const SourceLocation& fallback) const {
    for (const auto& [overridden, text] : overrides_) {
      if (path == overridden || path.starts_with(overridden + "."))
        return override_location(text, path);
    }
    if (!mark.is_null()) return SourceLocation{file_, mark.line + 1, mark.column + 1, path};
    return SourceLocation{fallback.file, fallback.line, fallback.column, path};
  }

 private:
  std::string file_;
  std::map<std::string, std::string> overrides_;  // key path -> the override's text
};

// One value in the tree with its key path and the location to blame when it is wrong.
using Value = yaml_text::LocatedNode;

// A mapping in the tree. `where` locates the mapping itself (for "expected a mapping");
// `heading` the key that names it (for "missing required key"). An absent or empty section
// reads as empty: its keys take their defaults and a missing required key is reported at the
// parent's heading.
class Section {
 public:
  Section(const Provenance& provenance, std::string path, const YAML::Node& node,
          SourceLocation where, SourceLocation heading)
      : provenance_(&provenance),
        path_(std::move(path)),
        where_(std::move(where)),
        heading_(std::move(heading)) {
    const std::vector<std::string>* keys = section_keys(path_);
    TPUSIM_CHECK(keys != nullptr, "arch section '" + path_ + "' is not in the schema");
    if (!node.IsDefined() || node.IsNull()) return;
    if (!node.IsMap()) {
      throw Error(where_, fmt::format("expected a mapping with keys {}, got {}", join(*keys),
                                      describe(node)));
    }
    for (const auto& pair : node) {
      const YAML::Node key_node = pair.first;
      const YAML::Node value_node = pair.second;
      SourceLocation key_where = provenance.locate(key_node.Mark(), path_, where_);
      if (!key_node.IsScalar())
        throw Error(key_where, "expected a plain key name, got " + describe(key_node));
      std::string key = key_node.Scalar();
      key_where.key_path = child_path(path_, key);
      if (!contains(*keys, key)) throw Error(key_where, unknown_key_message(key, *keys));
      for (const Entry& earlier : entries_) {
        if (earlier.key == key) {
          throw Error(key_where, fmt::format("duplicate key '{}' (first given at line {}); "
                                             "keep only one",
                                             key, earlier.key_where.line));
        }
      }
      entries_.push_back(Entry{key, key_where, value_node});
    }
  }

  const std::string& path() const { return path_; }

  std::optional<Value> find(const std::string& key) const {
    for (const Entry& entry : entries_) {
      if (entry.key != key) continue;
      // An empty value has no useful mark of its own (yaml-cpp points past it): blame the key.
      YAML::Mark mark = entry.value.IsNull() ? YAML::Mark::null_mark() : entry.value.Mark();
      return Value{entry.value,
                   provenance_->locate(mark, entry.key_where.key_path, entry.key_where)};
    }
    return std::nullopt;
  }

  // `what` says what the key means and its range, for the "missing" message.
  Value require(const std::string& key, std::string_view what) const {
    if (auto value = find(key)) return *value;
    SourceLocation where = heading_;
    where.key_path = child_path(path_, key);
    throw Error(where,
                fmt::format("missing required key; add '{}:' under '{}:' ({})", key, path_, what));
  }

  Section section(const std::string& key) const {
    for (const Entry& entry : entries_) {
      if (entry.key != key) continue;
      return Section(*provenance_, entry.key_where.key_path, entry.value, find(key)->where,
                     entry.key_where);
    }
    return Section(*provenance_, child_path(path_, key), YAML::Node(), heading_, heading_);
  }

 private:
  struct Entry {
    std::string key;
    SourceLocation key_where;
    YAML::Node value;
  };
  const Provenance* provenance_;
  std::string path_;
  SourceLocation where_;
  SourceLocation heading_;
  std::vector<Entry> entries_;
};

// ---------------------------------------------------------------------------------------------
// Typed values.

struct ByteUnit {
  const char* name;
  int64_t bytes;
};
constexpr ByteUnit kByteUnits[] = {
    {"B", 1},     {"KiB", int64_t{1} << 10}, {"MiB", int64_t{1} << 20}, {"GiB", int64_t{1} << 30},
    {"KB", 1000}, {"MB", 1000 * 1000},       {"GB", 1000 * 1000 * 1000}};

}  // namespace

int64_t parse_byte_size(const std::string& text, const SourceLocation& where) {
  auto fail = [&](const std::string& message) { throw Error(where, message); };
  std::string_view rest = trim(text);
  size_t digits = 0;
  if (digits < rest.size() && (rest[digits] == '-' || rest[digits] == '+')) ++digits;
  while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
  std::string_view number_text = rest.substr(0, digits);
  std::string_view unit = trim(rest.substr(digits));

  std::string expected = fmt::format(
      "expected a byte size (an integer with an optional unit B, KiB, MiB, GiB, KB, MB or GB), "
      "got '{}'",
      text);
  bool too_large = false;
  std::optional<int64_t> number = parse_int64(number_text, &too_large);
  if (too_large) fail(fmt::format("byte size '{}' is too large", text));
  if (!number) fail(expected);
  int64_t scale = 0;
  for (const ByteUnit& candidate : kByteUnits) {
    if (unit == candidate.name) scale = candidate.bytes;
  }
  if (unit.empty()) scale = 1;
  if (scale == 0) {
    // Units are case-sensitive (kb would be kilobits); say which one was probably meant.
    for (const ByteUnit& candidate : kByteUnits) {
      std::string_view name = candidate.name;
      if (name.size() == unit.size() &&
          std::equal(name.begin(), name.end(), unit.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        fail(fmt::format("{}; units are case-sensitive: did you mean '{}'?", expected,
                               candidate.name));
      }
    }
    fail(expected);
  }
  const int64_t limit = std::numeric_limits<int64_t>::max() / scale;
  if (*number > limit || *number < -limit)
    fail(fmt::format("byte size '{}' is too large", text));
  return *number * scale;
}

namespace {

// `24MiB`, `4 MiB`, `256`, `64KB`: an integer and an optional unit.
int64_t read_byte_size(const Value& value) {
  return parse_byte_size(scalar_text(value, "a byte size such as 24MiB"), value.where);
}

// `number` if it is at most `maximum`, else "must be at most MAXIMUM{note}, got NUMBER".
int64_t at_most(const Value& value, int64_t number, int64_t maximum, std::string_view note = "") {
  if (number > maximum) value.fail(fmt::format("must be at most {}{}, got {}", maximum, note, number));
  return number;
}

double read_positive_number(const Value& value) {
  double number = read_number(value);
  if (!(number > 0))
    value.fail(fmt::format("must be greater than 0, got {}", format_number(number)));
  return number;
}

// ---------------------------------------------------------------------------------------------
// Sections.

int64_t read_array_dimension(const Section& mxu, const std::string& key, const char* what) {
  Value value = mxu.require(key, fmt::format("{}, 1 to {}", what, kMaxArrayDimension));
  int64_t number = read_integer_at_least(value, 1);
  if (number > kMaxArrayDimension)
    value.fail(fmt::format("must be at most {}, got {}", kMaxArrayDimension, number));
  return number;
}

MxuConfig read_mxu(const Section& section) {
  MxuConfig mxu;
  mxu.rows = read_array_dimension(section, "rows", "the number of PE rows");
  mxu.cols = read_array_dimension(section, "cols", "the number of PE columns");
  if (auto value = section.find("dataflow")) {
    const std::string& text = scalar_text(*value, "ws, os or is");
    std::optional<Dataflow> dataflow = parse_dataflow(text);
    if (!dataflow) {
      value->fail(fmt::format(
          "must be ws, os or is (weight-, output- or input-stationary), got '{}'", text));
    }
    mxu.dataflow = *dataflow;
  }
  if (auto value = section.find("operand_type")) {
    const std::string& text = scalar_text(*value, "int8 or bf16");
    std::optional<DType> type = parse_dtype(text);
    if (!type || (*type != DType::Int8 && *type != DType::BF16)) {
      std::string why = type ? fmt::format(
                                   " ({} is an accumulator type: int8 accumulates in "
                                   "int32, bf16 in fp32)",
                                   text)
                             : "";
      value->fail(fmt::format("must be int8 or bf16, got '{}'{}", text, why));
    }
    mxu.operand_type = *type;
  }
  if (auto value = section.find("clock_mhz")) mxu.clock_mhz = read_positive_number(*value);
  if (auto value = section.find("weight_double_buffering"))
    mxu.weight_double_buffering = read_bool(*value);
  return mxu;
}

// What the array needs from one buffer: room for one array-sized tile and, per port, the
// bytes it moves each cycle. The texts explain the numbers in the error messages.
struct BufferNeeds {
  int64_t capacity = 0;
  std::string capacity_reason;  // "must hold ..."
  std::string capacity_advice;  // appended after "got N"
  int64_t bytes_per_cycle = 0;
  std::string bandwidth_reason;
};

BufferConfig read_buffer(const Section& section, const BufferNeeds& needs) {
  BufferConfig buffer;
  Value bytes = section.require("bytes", "the capacity, e.g. 24MiB");
  buffer.bytes = at_most(bytes, at_least(bytes, read_byte_size(bytes), 1), kMaxBufferBytes,
                         " (4 GiB: the simulator holds every buffer byte in memory)");
  if (auto value = section.find("banks")) buffer.banks = at_most(*value, read_integer_at_least(*value, 1), kMaxBufferBytes);
  std::optional<Value> bytes_per_cycle = section.find("bytes_per_cycle");
  if (bytes_per_cycle) {
    buffer.bytes_per_cycle = at_most(*bytes_per_cycle,
                                     read_integer_at_least(*bytes_per_cycle, 0, " (0 or absent means the minimum the array needs)"),
                                     kMaxBufferBytes);
  }

  // The default of one bank divides every size, so a mismatch means banks was given.
  if (buffer.bytes % buffer.banks != 0) {
    section.find("banks")->fail(
        fmt::format("{} banks cannot split {} bytes evenly; make bytes a multiple of {}",
                    buffer.banks, buffer.bytes, buffer.banks));
  }
  if (buffer.bytes < needs.capacity) {
    bytes.fail(
        fmt::format("{}, got {}{}", needs.capacity_reason, buffer.bytes, needs.capacity_advice));
  }
  if (buffer.bytes_per_cycle == 0) {
    buffer.bytes_per_cycle = needs.bytes_per_cycle;
  } else if (buffer.bytes_per_cycle < needs.bytes_per_cycle) {
    bytes_per_cycle->fail(
        fmt::format("must be at least {} ({}), got {}; leave it out or set 0 to use the minimum",
                    needs.bytes_per_cycle, needs.bandwidth_reason, buffer.bytes_per_cycle));
  }
  return buffer;
}

VpuConfig read_vpu(const Section& section, const MxuConfig& mxu) {
  VpuConfig vpu;
  if (auto value = section.find("lanes"))
    vpu.lanes = at_most(*value, read_integer_at_least(*value, 0, " (0 or absent means mxu.cols)"), kMaxArrayDimension);
  if (vpu.lanes == 0) vpu.lanes = mxu.cols;
  for (const VpuOp& op : kVpuOps) {
    Section timing_section = section.section(op.name);
    VectorOpTiming& timing = vpu.*op.timing;
    if (auto value = timing_section.find("latency"))
      timing.latency = at_most(*value, read_integer_at_least(*value, 1), kMaxCycleCount);
    if (auto value = timing_section.find("interval"))
      timing.interval = at_most(*value, read_integer_at_least(*value, 1), kMaxCycleCount);
  }
  return vpu;
}

DramConfig read_dram(const Section& section) {
  DramConfig dram;
  Value bandwidth = section.require("bytes_per_cycle", "sustained bandwidth in bytes per MXU clock cycle, greater than 0");
  dram.bytes_per_cycle = read_positive_number(bandwidth);
  if (dram.bytes_per_cycle > static_cast<double>(kMaxBufferBytes)) {
    bandwidth.fail(fmt::format("must be at most {}, got {}", kMaxBufferBytes, format_number(dram.bytes_per_cycle)));
  }
  if (auto value = section.find("latency_cycles"))
    dram.latency_cycles = at_most(*value, read_integer_at_least(*value, 0), kMaxCycleCount);
  if (auto value = section.find("channels")) dram.channels = at_most(*value, read_integer_at_least(*value, 1), 1024);
  return dram;
}

ArchConfig read_arch(const Section& top, const std::string& default_name) {
  ArchConfig arch;
  arch.name = default_name;
  if (auto value = top.find("name")) {
    arch.name = scalar_text(*value, "a name");
    if (arch.name.empty()) value->fail("must not be empty");
  }
  arch.mxu = read_mxu(top.section("mxu"));
  const MxuConfig& mxu = arch.mxu;

  // max(rows, cols) covers every dataflow: the array takes one vector along one edge and
  // produces one along the other each cycle, whichever way the operands are mapped.
  const int64_t vector_elements = std::max(mxu.rows, mxu.cols);
  const int64_t tile_elements = mxu.rows * mxu.cols;
  const int64_t operand_bytes = dtype_size(mxu.operand_type);
  const DType accumulator = accumulator_type(mxu.operand_type);
  const int64_t accumulator_bytes = dtype_size(accumulator);
  const std::string_view operand_name = dtype_name(mxu.operand_type);
  const std::string_view accumulator_name = dtype_name(accumulator);

  BufferNeeds unified;
  unified.capacity = tile_elements * operand_bytes;
  unified.capacity_reason =
      fmt::format("must hold at least one {}x{} tile of {} operands ({} bytes)", mxu.rows, mxu.cols,
                  operand_name, unified.capacity);
  unified.bytes_per_cycle = vector_elements * operand_bytes;
  unified.bandwidth_reason =
      fmt::format("the array reads one vector of max(rows, cols) = {} {} elements per cycle",
                  vector_elements, operand_name);
  arch.unified_buffer = read_buffer(top.section("unified_buffer"), unified);

  BufferNeeds weight;
  if (mxu.weight_double_buffering) {
    weight.capacity = 2 * tile_elements * operand_bytes;
    weight.capacity_reason = fmt::format(
        "must hold two {}x{} {} weight tiles ({} bytes) because mxu.weight_double_buffering is "
        "true (the next tile loads while the current one computes)",
        mxu.rows, mxu.cols, operand_name, weight.capacity);
    weight.capacity_advice = "; make it larger or set mxu.weight_double_buffering to false";
  } else {
    weight.capacity = tile_elements * operand_bytes;
    weight.capacity_reason = fmt::format("must hold at least one {}x{} {} weight tile ({} bytes)",
                                         mxu.rows, mxu.cols, operand_name, weight.capacity);
  }
  weight.bytes_per_cycle = vector_elements * operand_bytes;
  weight.bandwidth_reason =
      fmt::format("the array loads one row of max(rows, cols) = {} {} weights per cycle",
                  vector_elements, operand_name);
  arch.weight_buffer = read_buffer(top.section("weight_buffer"), weight);

  BufferNeeds accumulators;
  accumulators.capacity = tile_elements * accumulator_bytes;
  accumulators.capacity_reason =
      fmt::format("must hold at least one {}x{} tile of {} accumulators ({} bytes)", mxu.rows,
                  mxu.cols, accumulator_name, accumulators.capacity);
  accumulators.bytes_per_cycle = vector_elements * accumulator_bytes;
  accumulators.bandwidth_reason =
      fmt::format("the array writes one row of max(rows, cols) = {} {} accumulators per cycle",
                  vector_elements, accumulator_name);
  arch.accumulator = read_buffer(top.section("accumulator"), accumulators);

  arch.vpu = read_vpu(top.section("vpu"), mxu);
  arch.dram = read_dram(top.section("dram"));
  return arch;
}

// ---------------------------------------------------------------------------------------------
// Overrides: `key.path=value`, applied to the tree before it is read, so they go through the
// same checks as the file. Errors in the override itself are located at the override.

void apply_override(YAML::Node root, const std::string& text, Provenance& provenance) {
  SourceLocation where{"--set " + text, 0, 0, ""};
  size_t equals = text.find('=');
  if (equals == std::string::npos)
    throw Error(where, "expected key.path=value, e.g. --set mxu.rows=64");
  std::string path(trim(std::string_view(text).substr(0, equals)));
  std::string value_text(trim(std::string_view(text).substr(equals + 1)));

  std::vector<std::string> segments;
  std::stringstream splitter(path);
  for (std::string segment; std::getline(splitter, segment, '.');) segments.push_back(segment);
  if (path.empty() || path.back() == '.' ||
      std::any_of(segments.begin(), segments.end(), [](const auto& s) { return s.empty(); })) {
    throw Error(where, fmt::format("expected key.path=value with a dotted key path such as "
                                   "mxu.rows, got key '{}'",
                                   path));
  }

  // The key path must exist in the schema and name a value, not a section.
  std::string prefix;
  for (const std::string& segment : segments) {
    const std::vector<std::string>* keys = section_keys(prefix);
    where.key_path = child_path(prefix, segment);
    if (keys == nullptr)
      throw Error(where,
                  fmt::format("{} is a value, not a section; it has no key '{}'", prefix, segment));
    if (!contains(*keys, segment)) throw Error(where, unknown_key_message(segment, *keys));
    prefix = where.key_path;
  }
  if (const std::vector<std::string>* keys = section_keys(path)) {
    throw Error(where, fmt::format("is a section, not a value; set its keys one at a time, "
                                   "e.g. --set {}.{}=...",
                                   path, keys->front()));
  }

  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    throw Error(where, "cannot read the value as YAML: " + e.msg);
  }

  // Walk down, creating sections the file leaves out. A section that is not a mapping is
  // left alone: reading the tree reports it at its place in the file.
  YAML::Node current = root;
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    YAML::Node child = current[segments[i]];
    if (!child.IsDefined() || child.IsNull())
      current[segments[i]] = YAML::Node(YAML::NodeType::Map);
    YAML::Node section = current[segments[i]];
    if (!section.IsMap()) return;
    current.reset(section);
  }
  current[segments.back()] = value;
  provenance.record_override(path, text);
}

std::string read_arch_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error))
    throw Error(SourceLocation{path, 0, 0, ""},
                "is a directory; give an arch YAML file or a preset name");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::string reason = std::strerror(errno);
    if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(reason[0]));
    throw Error(SourceLocation{path, 0, 0, ""}, "cannot open file: " + reason);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string preset_directory() {
  return std::string(TPUSIM_SOURCE_DIR) + "/examples/arch";
}

// Where a bare name is looked up: $TPUSIM_ARCH_PATH (':'-separated), then the presets.
std::vector<std::string> arch_search_directories() {
  std::vector<std::string> directories;
  if (const char* env = std::getenv("TPUSIM_ARCH_PATH")) {
    std::stringstream splitter(env);
    for (std::string directory; std::getline(splitter, directory, ':');) {
      if (!directory.empty()) directories.push_back(directory);
    }
  }
  directories.push_back(preset_directory());
  return directories;
}

bool ends_with_yaml(const std::string& text) {
  return text.ends_with(".yaml") || text.ends_with(".yml");
}

// Text for a name that reads back as the same string: plain when safe, else double-quoted.
std::string yaml_string(const std::string& text) {
  bool plain =
      !text.empty() && text != "null" && text != "Null" && text != "NULL" && text != "~" &&
      text.front() != '-' && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      });
  if (plain) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// yaml-cpp's messages name the parser's state; say what the user most likely has to fix.

std::string format_gigabytes_per_second(double bytes_per_cycle, double clock_mhz) {
  double gigabytes = bytes_per_cycle * clock_mhz * 1e6 / 1e9;
  return gigabytes >= 0.1 ? fmt::format("{:.1f}", gigabytes) : fmt::format("{:.3g}", gigabytes);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

ArchConfig parse_arch_yaml(const std::string& text, const std::string& file_name,
                           const std::vector<std::string>& overrides) {
  YAML::Node root = yaml_text::load_single_document(
      text, file_name,
      "the file is empty; an arch config needs at least mxu.rows, mxu.cols, the bytes of unified_buffer, "
      "weight_buffer and accumulator, and dram.bytes_per_cycle (see examples/arch/teach-4x4.yaml)");
  YAML::Mark root_mark = root.Mark();
  SourceLocation root_where{file_name, root_mark.line + 1, root_mark.column + 1, ""};
  if (!root.IsMap()) {
    throw Error(root_where, fmt::format("the top level must be a mapping of sections ({}), "
                                        "got {}",
                                        join(kTopLevelKeys), describe(root)));
  }

  Provenance provenance(file_name);
  for (const std::string& override_text : overrides)
    apply_override(root, override_text, provenance);

  std::string default_name = std::filesystem::path(file_name).stem().string();
  if (default_name.empty()) default_name = "arch";
  ArchConfig arch = read_arch(Section(provenance, "", root, root_where, root_where), default_name);
  arch.source = file_name;
  return arch;
}

ArchConfig load_arch(const std::string& name_or_path, const std::vector<std::string>& overrides) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::exists(name_or_path, error))
    return parse_arch_yaml(read_arch_file(name_or_path), name_or_path, overrides);

  SourceLocation where{name_or_path, 0, 0, ""};
  std::vector<std::string> presets = arch_preset_names();
  bool looks_like_name = !name_or_path.empty() && name_or_path.find('/') == std::string::npos &&
                         !ends_with_yaml(name_or_path);
  if (looks_like_name) {
    for (const std::string& directory : arch_search_directories()) {
      fs::path candidate = fs::path(directory) / (name_or_path + ".yaml");
      if (fs::is_regular_file(candidate, error))
        return parse_arch_yaml(read_arch_file(candidate.string()), candidate.string(), overrides);
    }
    std::string hint = nearest_spelling(name_or_path, presets);
    throw Error(where,
                fmt::format("cannot open file, and there is no preset of that name{}; "
                            "presets: {}",
                            hint.empty() ? "" : " (did you mean '" + hint + "'?)", join(presets)));
  }
  std::string stem = fs::path(name_or_path).stem().string();
  std::string hint = name_or_path.find('/') == std::string::npos && contains(presets, stem)
                         ? "; to use the preset, give its name: " + stem
                         : "";
  throw Error(where, "cannot open file: no such file or directory" + hint);
}

std::string arch_to_yaml(const ArchConfig& arch) {
  std::string out;
  out += fmt::format("name: {}\n", yaml_string(arch.name));

  const MxuConfig& mxu = arch.mxu;
  out += "mxu:\n";
  out += fmt::format("  rows: {}\n", mxu.rows);
  out += fmt::format("  cols: {}\n", mxu.cols);
  out += fmt::format("  dataflow: {}\n", dataflow_name(mxu.dataflow));
  out += fmt::format("  operand_type: {}\n", dtype_name(mxu.operand_type));
  out += fmt::format("  clock_mhz: {}\n", format_number(mxu.clock_mhz));
  out += fmt::format("  weight_double_buffering: {}\n",
                     mxu.weight_double_buffering ? "true" : "false");

  auto print_buffer = [&out](const char* key, const BufferConfig& buffer) {
    out += fmt::format("{}:\n", key);
    out += fmt::format("  bytes: {}", buffer.bytes);
    if (buffer.bytes >= 1024) out += "  # " + format_byte_size(buffer.bytes);
    out += "\n";
    out += fmt::format("  banks: {}\n", buffer.banks);
    out += fmt::format("  bytes_per_cycle: {}\n", buffer.bytes_per_cycle);
  };
  print_buffer("unified_buffer", arch.unified_buffer);
  print_buffer("weight_buffer", arch.weight_buffer);
  print_buffer("accumulator", arch.accumulator);

  out += "vpu:\n";
  out += fmt::format("  lanes: {}\n", arch.vpu.lanes);
  for (const VpuOp& op : kVpuOps) {
    const VectorOpTiming& timing = arch.vpu.*op.timing;
    out += fmt::format("  {:<11} {{ latency: {}, interval: {} }}\n", std::string(op.name) + ":",
                       timing.latency, timing.interval);
  }

  const DramConfig& dram = arch.dram;
  out += "dram:\n";
  out += fmt::format("  bytes_per_cycle: {}  # {} GB/s at {} MHz\n",
                     format_number(dram.bytes_per_cycle),
                     format_gigabytes_per_second(dram.bytes_per_cycle, mxu.clock_mhz),
                     format_number(mxu.clock_mhz));
  out += fmt::format("  latency_cycles: {}\n", dram.latency_cycles);
  out += fmt::format("  channels: {}\n", dram.channels);
  return out;
}

std::string arch_summary(const ArchConfig& arch) {
  return fmt::format(
      "{}x{} {} {}, {} MHz, unified buffer {}, weight buffer {}, accumulator {}, "
      "DRAM {} GB/s",
      arch.mxu.rows, arch.mxu.cols, dtype_name(arch.mxu.operand_type),
      dataflow_name(arch.mxu.dataflow), format_number(arch.mxu.clock_mhz),
      format_byte_size(arch.unified_buffer.bytes), format_byte_size(arch.weight_buffer.bytes),
      format_byte_size(arch.accumulator.bytes),
      format_gigabytes_per_second(arch.dram.bytes_per_cycle, arch.mxu.clock_mhz));
}

std::vector<std::string> arch_preset_names() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(preset_directory(), error)) {
    if (entry.is_regular_file(error) && entry.path().extension() == ".yaml")
      names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string format_byte_size(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  int unit = 0;
  int64_t scale = 1;
  while (unit + 1 < 5 && bytes / scale >= 1024) {
    scale *= 1024;
    ++unit;
  }
  if (bytes % scale == 0) return fmt::format("{} {}", bytes / scale, kUnits[unit]);
  return fmt::format("{:.2f} {}", static_cast<double>(bytes) / static_cast<double>(scale),
                     kUnits[unit]);
}

}  // namespace tpusim
