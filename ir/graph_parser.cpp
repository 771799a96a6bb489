// Parser for the textual graph format (docs/graph-format.md). Line oriented: `graph NAME`
// first, then `input`, `weight`, `value` and `output` lines, comments and blank lines. The
// first problem is thrown as a tpusim::Error at its line:column; a graph that parses then goes
// through infer_shapes, which fills in the types left out and checks every op.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/graph.h"
#include "ir/sizes.h"

namespace tpusim {
namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
// Names may contain '.' after the first character (`layer1.0.conv`, as exporters write them).
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9') || c == '.'; }
bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string join(const std::vector<std::string>& names) { return fmt::format("{}", fmt::join(names, ", ")); }

const std::vector<std::string>& statement_keywords() {
  static const std::vector<std::string> words = {"graph", "input", "weight", "value", "output"};
  return words;
}

// How an attribute value reads in a message: "the integer 2", "the list [1,2]", ...
std::string describe(const AttrValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return fmt::format("the integer {}", *i);
  if (const auto* d = std::get_if<double>(&value)) return fmt::format("the number {}", graph_number_text(*d));
  if (const auto* l = std::get_if<std::vector<int64_t>>(&value)) return fmt::format("the list [{}]", fmt::join(*l, ","));
  return fmt::format("the string \"{}\"", std::get<std::string>(value));
}

class GraphParser {
 public:
  GraphParser(const std::string& text, const std::string& file) : text_(text), file_(file) { graph_.file = file; }

  Graph parse() {
    collect_definitions();
    for_each_line([&](const std::string& line) { parse_line(line); });
    if (!seen_graph_) {
      throw Error({file_, 1, 1, ""}, "empty graph: the file must start with `graph NAME`");
    }
    for (const auto& pending : pending_outputs_) resolve_output(pending);
    if (graph_.outputs.empty()) {
      throw Error({file_, line_number_, 1, ""},
                  fmt::format("graph '{}' has no `output` line; name its results with `output NAME[, NAME...]`",
                              graph_.name));
    }
    infer_shapes(graph_);
    return std::move(graph_);
  }

 private:
  struct PendingOutput {
    std::string name;
    SourceLocation location;
  };

  template <typename F>
  void for_each_line(F&& f) {
    line_number_ = 0;
    size_t start = 0;
    while (start <= text_.size()) {
      size_t end = text_.find('\n', start);
      bool last = end == std::string::npos;
      if (last) end = text_.size();
      ++line_number_;
      if (!(last && start == end)) f(text_.substr(start, end - start));
      if (last) break;
      start = end + 1;
    }
  }

  // The line where each name is defined, so a use before its definition can say where it is.
  void collect_definitions() {
    for_each_line([&](const std::string& raw) {
      set_line(raw);
      if (at_end() || !is_name_start(line_[pos_])) return;
      std::string word = name_at_cursor();
      if (word != "input" && word != "weight" && word != "value") return;
      skip_spaces();
      if (pos_ >= line_.size() || !is_name_start(line_[pos_])) return;
      definition_lines_.emplace(name_at_cursor(), line_number_);
    });
  }

  // --- lexing within the current line ---
  void set_line(std::string raw) {
    while (!raw.empty() && raw.back() == '\r') raw.pop_back();  // CRLF (or CR CR LF) line ends
    // A comment starts at the first '#' outside a quoted string.
    bool in_string = false;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (in_string && raw[i] == '\\') {
        ++i;
        continue;
      }
      if (raw[i] == '"') in_string = !in_string;
      if (raw[i] == '#' && !in_string) {
        raw.resize(i);
        break;
      }
    }
    line_ = std::move(raw);
    pos_ = 0;
  }
  SourceLocation location(size_t column_index) const {
    return {file_, line_number_, static_cast<int>(column_index) + 1, ""};
  }
  [[noreturn]] void fail(size_t column_index, const std::string& message) const {
    throw Error(location(column_index), message);
  }
  void skip_spaces() {
    while (pos_ < line_.size() && is_space(line_[pos_])) ++pos_;
  }
  bool at_end() {
    skip_spaces();
    return pos_ >= line_.size();
  }
  bool peek(char c) {
    skip_spaces();
    return pos_ < line_.size() && line_[pos_] == c;
  }
  std::string found_text() {
    skip_spaces();
    if (pos_ >= line_.size()) return "found end of line";
    size_t end = pos_ + 1;
    if (is_name_char(line_[pos_]) || line_[pos_] == '-') {
      while (end < line_.size() && (is_name_char(line_[end]) || line_[end] == '-') && end - pos_ < 20) ++end;
    }
    return fmt::format("found '{}'", line_.substr(pos_, end - pos_));
  }
  void expect(char c, const std::string& what) {
    skip_spaces();
    if (pos_ >= line_.size() || line_[pos_] != c) fail(pos_, fmt::format("expected '{}' {}, {}", c, what, found_text()));
    ++pos_;
  }
  std::string name_at_cursor() {
    size_t start = pos_;
    while (pos_ < line_.size() && is_name_char(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  std::string name(const std::string& what) {
    skip_spaces();
    if (pos_ >= line_.size() || !is_name_start(line_[pos_])) fail(pos_, fmt::format("expected {}, {}", what, found_text()));
    return name_at_cursor();
  }
  // A run of characters that can belong to a number: digits, signs, '.', letters (for
  // exponents, inf and nan, and to show the whole of a bad token).
  std::string number_token() {
    skip_spaces();
    size_t start = pos_;
    while (pos_ < line_.size() && (is_name_char(line_[pos_]) || line_[pos_] == '+' || line_[pos_] == '-')) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  static bool parse_integer(const std::string& token, int64_t& out) {
    const char* begin = token.data();
    const char* end = token.data() + token.size();
    if (begin != end && *begin == '+') ++begin;
    auto [ptr, ec] = std::from_chars(begin, end, out);
    return ec == std::errc() && ptr == end && begin != end;
  }
  static bool looks_like_float(const std::string& token) {
    std::string body = token;
    if (!body.empty() && (body[0] == '-' || body[0] == '+')) body.erase(0, 1);
    if (body == "inf" || body == "nan") return true;
    if (body.find_first_of(".eE") == std::string::npos) return false;
    return body.find_first_not_of("0123456789.eE+-") == std::string::npos;
  }
  static bool parse_float(const std::string& token, double& out) {
    char* end = nullptr;
    out = std::strtod(token.c_str(), &end);
    return !token.empty() && end == token.c_str() + token.size();
  }
  int64_t integer(const std::string& what) {
    skip_spaces();
    size_t start = pos_;
    std::string token = number_token();
    int64_t value = 0;
    if (token.empty() || !parse_integer(token, value)) {
      pos_ = start;
      if (token.empty()) fail(start, fmt::format("expected {}, {}", what, found_text()));
      fail(start, fmt::format("expected {}, found '{}'", what, token));
    }
    return value;
  }
  std::string quoted_string() {
    size_t start = pos_++;  // at '"'
    std::string out;
    while (true) {
      if (pos_ >= line_.size()) fail(start, "unterminated string (missing closing '\"')");
      char c = line_[pos_++];
      if (c == '"') return out;
      if (c == '\\') {
        if (pos_ >= line_.size()) fail(start, "unterminated string (missing closing '\"')");
        char e = line_[pos_++];
        if (e != '"' && e != '\\') fail(pos_ - 2, "unknown escape in string (only \\\" and \\\\)");
        out += e;
      } else {
        out += c;
      }
    }
  }
  // '[' INT {',' INT} ']', possibly empty. `what` names an element in messages.
  std::vector<int64_t> integer_list(const std::string& what) {
    skip_spaces();
    size_t open = pos_;
    ++pos_;  // at '['
    std::vector<int64_t> values;
    if (peek(']')) {
      ++pos_;
      return values;
    }
    while (true) {
      if (at_end()) fail(open, "unterminated list (missing ']')");
      values.push_back(integer(what));
      if (peek(',')) {
        ++pos_;
        continue;
      }
      if (peek(']')) {
        ++pos_;
        return values;
      }
      if (at_end()) fail(open, "unterminated list (missing ']')");
      fail(pos_, fmt::format("expected ',' or ']' in the list, {}", found_text()));
    }
  }
  // Statement options and attributes are separated by spaces: `a=1b=2` is a typo.
  void require_separator(const std::string& after) {
    if (pos_ < line_.size() && !is_space(line_[pos_])) {
      fail(pos_, fmt::format("unexpected '{}' after {} (separate items with spaces)", line_[pos_], after));
    }
  }

  // --- names of values ---
  std::vector<std::string> defined_names() const {
    std::vector<std::string> names;
    for (const auto& v : graph_.values) names.push_back(v.name);
    return names;
  }
  // An input name that is not (yet) defined: later in the file, misspelt, or missing.
  [[noreturn]] void unknown_value(const std::string& value_name, size_t column) {
    auto later = definition_lines_.find(value_name);
    if (later != definition_lines_.end() && later->second > line_number_) {
      fail(column, fmt::format("'{}' is used before its definition at line {}; define values before the ops that "
                               "read them", value_name, later->second));
    }
    std::vector<std::string> names = defined_names();
    std::string hint = nearest_spelling(value_name, names);
    fail(column, fmt::format("unknown value '{}'{}", value_name,
                             !hint.empty() ? fmt::format("; did you mean '{}'?", hint)
                             : names.empty() ? std::string("; declare it first with `input`, `weight` or `value`")
                                             : fmt::format(" (defined so far: {})", join(names))));
  }
  void check_new_name(const std::string& value_name, size_t column) {
    int existing = find_value(value_name);
    if (existing >= 0) {
      fail(column, fmt::format("value '{}' is defined twice (first at line {})", value_name,
                               graph_.values[static_cast<size_t>(existing)].location.line));
    }
  }

  // TYPE '[' dims ']'
  void type_and_shape(Value& v) {
    skip_spaces();
    size_t type_pos = pos_;
    std::string type = name("an element type (int8, int32, bf16, fp32)");
    auto dtype = parse_dtype(type);
    if (!dtype) {
      std::string hint = nearest_spelling(type, {"int8", "int32", "bf16", "fp32"});
      fail(type_pos, fmt::format("unknown element type '{}'{} (int8, int32, bf16, fp32)", type,
                                 hint.empty() ? "" : fmt::format("; did you mean '{}'?", hint)));
    }
    v.dtype = *dtype;
    if (!peek('[')) {
      fail(pos_, fmt::format("expected '[' and the dimensions after the type (e.g. {}[1,3,8,8]), {}", type, found_text()));
    }
    size_t dims_pos = pos_;
    v.shape = integer_list("a dimension (an integer)");
    if (v.shape.empty()) fail(dims_pos, "a tensor needs at least one dimension, got []");
    for (int64_t d : v.shape) {
      if (d < 1) fail(dims_pos, fmt::format("every dimension must be at least 1, got {}", d));
      if (d > kMaxDimension) fail(dims_pos, fmt::format("every dimension must be at most {}, got {}", kMaxDimension, d));
    }
    if (!checked_element_count(v.shape)) {
      fail(dims_pos, fmt::format("'{}' of shape {} has more than 2^48 elements, the most one tensor may have", v.name,
                                 shape_text(v.shape)));
    }
    require_separator("the shape");
  }

  // `key=value` options of input/weight/value lines, up to '=' (value) or the end of the line.
  void options(Value& v, const std::vector<std::string>& allowed, const char* statement) {
    std::vector<std::string> seen;
    while (!at_end() && !peek('=')) {
      size_t key_pos = pos_;
      if (!is_name_start(line_[pos_])) return;
      std::string key = name_at_cursor();
      if (!peek('=')) {  // not an option: the caller says what it expected here
        pos_ = key_pos;
        return;
      }
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string hint = nearest_spelling(key, allowed);
        fail(key_pos, fmt::format("{} has no option '{}'{} (options: {})", statement, key,
                                  hint.empty() ? "" : fmt::format("; did you mean '{}'?", hint), join(allowed)));
      }
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        fail(key_pos, fmt::format("option '{}' is given twice", key));
      }
      seen.push_back(key);
      expect('=', fmt::format("after '{}'", key));
      skip_spaces();
      size_t value_pos = pos_;
      if (key == "scale") {
        scale_pos_ = key_pos;
        std::string token = number_token();
        double scale = 0;
        if (token.empty() || !parse_float(token, scale) || !(scale > 0) || !std::isfinite(scale)) {
          pos_ = value_pos;
          fail(value_pos, fmt::format("scale must be a positive number, {}", found_text()));
        }
        v.scale = scale;
      } else if (key == "seed") {
        // Seeds are 64-bit unsigned (seed_for gives values above 2^63).
        std::string token = number_token();
        uint64_t seed = 0;
        const char* digits = token.data() + (!token.empty() && token[0] == '+' ? 1 : 0);
        auto [ptr, ec] = std::from_chars(digits, token.data() + token.size(), seed);
        if (token.empty() || ec != std::errc() || ptr != token.data() + token.size()) {
          pos_ = value_pos;
          fail(value_pos, fmt::format("seed must be a non-negative integer below 2^64, {}", found_text()));
        }
        v.seed = seed;
      } else if (key == "file") {
        if (!peek('"')) fail(value_pos, fmt::format("file must be a quoted path like file=\"w.npy\", {}", found_text()));
        v.weight_file = quoted_string();
        if (v.weight_file.empty()) fail(value_pos, "file is empty; give the path of an .npy file");
      }
      if (pos_ >= line_.size() || line_[pos_] != '=') {  // `scale=0.1=conv(...)` reads fine
        require_separator(fmt::format("the {} option", key));
      }
    }
  }

  // --- statements ---
  void parse_line(const std::string& raw) {
    set_line(raw);
    if (at_end()) return;
    size_t start = pos_;
    if (!is_name_start(line_[pos_])) {
      fail(pos_, fmt::format("expected a statement ({}), {}", join(statement_keywords()), found_text()));
    }
    std::string word = name_at_cursor();
    if (!seen_graph_ && word != "graph") {
      fail(start, fmt::format("expected `graph NAME` as the first statement, found '{}'", word));
    }
    if (word == "graph") return parse_graph_line(start);
    if (word == "input") return parse_declaration(ValueKind::Input, start);
    if (word == "weight") return parse_declaration(ValueKind::Weight, start);
    if (word == "value") return parse_value(start);
    if (word == "output") return parse_output();
    std::string hint = nearest_spelling(word, statement_keywords());
    fail(start, fmt::format("unknown statement '{}'{}", word,
                            hint.empty() ? fmt::format(" (statements: {})", join(statement_keywords()))
                                         : fmt::format("; did you mean '{}'?", hint)));
  }

  void parse_graph_line(size_t start) {
    if (seen_graph_) fail(start, fmt::format("a file holds one graph; `graph` appears again (first at line {})", graph_line_));
    seen_graph_ = true;
    graph_line_ = line_number_;
    graph_.name = name("a graph name");
    if (!at_end()) fail(pos_, fmt::format("unexpected text after the graph name, {}", found_text()));
  }

  void parse_declaration(ValueKind kind, size_t start) {
    const char* statement = kind == ValueKind::Input ? "input" : "weight";
    Value v;
    v.kind = kind;
    v.location = location(start);
    skip_spaces();
    size_t name_pos = pos_;
    v.name = name(fmt::format("a name for the {}", statement));
    check_new_name(v.name, name_pos);
    if (!peek(':')) {
      fail(pos_, fmt::format("expected ':' and a type after the {} name (e.g. {} {} : int8[1,3,8,8] scale=0.05), {}",
                             statement, statement, v.name, found_text()));
    }
    ++pos_;
    type_and_shape(v);
    size_t options_pos = (skip_spaces(), pos_);
    if (kind == ValueKind::Input) {
      options(v, {"scale", "seed"}, statement);
    } else {
      options(v, {"scale", "seed", "file"}, statement);
    }
    if (!at_end()) fail(pos_, fmt::format("unexpected text after the {} declaration, {}", statement, found_text()));
    check_scale(v, options_pos, statement);
    add_value(std::move(v));
  }

  // int8 tensors are quantized (they need a scale); the others are not (they take none).
  void check_scale(const Value& v, size_t options_pos, const char* statement) {
    if (v.dtype == DType::Int8 && v.scale == 0) {
      fail(options_pos, fmt::format("int8 {} '{}' needs a quantization scale: add scale=S (real value = S * q)",
                                    statement, v.name));
    }
    if (v.dtype != DType::Int8 && v.scale != 0) {
      fail(scale_pos_, fmt::format("{} '{}' is {}, which is not quantized; remove scale= (only int8 values have a scale)",
                                  statement, v.name, dtype_name(v.dtype)));
    }
  }

  void parse_value(size_t start) {
    Value v;
    v.kind = ValueKind::Activation;
    v.location = location(start);
    skip_spaces();
    size_t name_pos = pos_;
    v.name = name("a name for the value");
    check_new_name(v.name, name_pos);
    if (peek(':')) {
      ++pos_;
      type_and_shape(v);
    }
    options(v, {"scale"}, "value");
    if (!peek('=')) {
      fail(pos_, fmt::format("expected '=' and the op that computes '{}' (value NAME : TYPE[dims] = OP(inputs)), {}",
                             v.name, found_text()));
    }
    ++pos_;

    Op op;
    op.name = v.name;
    op.location = v.location;
    skip_spaces();
    size_t op_pos = pos_;
    std::string op_name = name("an op name after '='");
    auto kind = parse_op_kind(op_name);
    if (!kind) {
      std::string hint = nearest_spelling(op_name, op_kind_names());
      fail(op_pos, fmt::format("unknown op '{}'{}", op_name,
                               hint.empty() ? fmt::format(" (ops: {})", join(op_kind_names()))
                                            : fmt::format("; did you mean '{}'?", hint)));
    }
    op.kind = *kind;
    const OpInfo& info = op_info(op.kind);
    if (!peek('(')) fail(pos_, fmt::format("expected '(' and the inputs after '{}', {}", info.name, found_text()));
    size_t open = pos_++;
    op.inputs = inputs(info, open);
    int count = static_cast<int>(op.inputs.size());
    if (count < info.min_inputs || count > info.max_inputs) {
      fail(op_pos, fmt::format("{} takes {}, got {}", info.name, op_inputs_text(info), count));
    }
    require_separator("the inputs");
    attributes(op, info, op_pos);

    op.output = add_value(std::move(v));
    graph_.add_op(std::move(op));
  }

  std::vector<int> inputs(const OpInfo& info, size_t open) {
    std::vector<int> indices;
    if (peek(')')) {
      ++pos_;
      return indices;
    }
    while (true) {
      if (at_end()) fail(open, fmt::format("missing ')' to close the inputs of {}", info.name));
      size_t input_pos = pos_;
      std::string input = name("an input name");
      int index = find_value(input);
      if (index < 0) unknown_value(input, input_pos);
      indices.push_back(index);
      if (peek(',')) {
        ++pos_;
        continue;
      }
      if (peek(')')) {
        ++pos_;
        return indices;
      }
      if (at_end()) fail(open, fmt::format("missing ')' to close the inputs of {}", info.name));
      fail(pos_, fmt::format("expected ',' or ')' after an input of {}, {}", info.name, found_text()));
    }
  }

  void attributes(Op& op, const OpInfo& info, size_t op_pos) {
    std::vector<std::string> names;
    for (const auto& a : info.attrs) names.emplace_back(a.name);
    while (!at_end()) {
      size_t key_pos = pos_;
      std::string key = name("an attribute (name=value)");
      auto attr = std::find_if(info.attrs.begin(), info.attrs.end(), [&](const AttrInfo& a) { return key == a.name; });
      if (attr == info.attrs.end()) {
        if (key == "scale") {  // attention's scale is an attribute; a value's scale is not
          fail(key_pos, fmt::format("{} has no attribute 'scale'; the int8 scale of the result goes before '=': "
                                    "value {} scale=S = {}(...)", info.name, op.name, info.name));
        }
        if (names.empty()) fail(key_pos, fmt::format("{} takes no attributes, got '{}'", info.name, key));
        std::string hint = nearest_spelling(key, names);
        fail(key_pos, fmt::format("{} has no attribute '{}'{} (attributes: {})", info.name, key,
                                  hint.empty() ? "" : fmt::format("; did you mean '{}'?", hint), join(names)));
      }
      if (op.attrs.count(key)) fail(key_pos, fmt::format("attribute '{}' is given twice", key));
      expect('=', fmt::format("after the attribute name '{}'", key));
      skip_spaces();
      size_t value_pos = pos_;
      AttrValue value = attribute_value();
      if (attr->type == AttrType::Float) {
        if (const auto* i = std::get_if<int64_t>(&value)) value = static_cast<double>(*i);  // 6 means 6.0
      }
      bool ok = (attr->type == AttrType::Int && std::holds_alternative<int64_t>(value)) ||
                (attr->type == AttrType::Float && std::holds_alternative<double>(value)) ||
                (attr->type == AttrType::Ints && std::holds_alternative<std::vector<int64_t>>(value)) ||
                (attr->type == AttrType::String && std::holds_alternative<std::string>(value));
      if (!ok) {
        const char* wanted = attr->type == AttrType::Int     ? "an integer"
                             : attr->type == AttrType::Float ? "a number"
                             : attr->type == AttrType::Ints  ? "a list of integers like [1,1]"
                                                             : "a word or a quoted string";
        fail(value_pos, fmt::format("attribute '{}' of {} must be {}, got {}", key, info.name, wanted, describe(value)));
      }
      op.attrs.emplace(key, std::move(value));
      require_separator(fmt::format("the {} attribute", key));
    }
    for (const auto& a : info.attrs) {
      if (a.required && !op.attrs.count(a.name)) {
        fail(op_pos, fmt::format("{} needs the attribute '{}' ({})", info.name, a.name, a.summary));
      }
    }
  }

  // INT | FLOAT | '[' INT, ... ']' | WORD | "STRING"
  AttrValue attribute_value() {
    skip_spaces();
    size_t value_pos = pos_;
    if (pos_ >= line_.size()) fail(pos_, "expected a value after '=', found end of line");
    char c = line_[pos_];
    if (c == '[') return integer_list("an integer (lists hold integers)");
    if (c == '"') return quoted_string();
    std::string token = number_token();
    if (token.empty()) fail(value_pos, fmt::format("expected a value after '=', {}", found_text()));
    int64_t i = 0;
    if (parse_integer(token, i)) return i;
    double d = 0;
    if (looks_like_float(token) && parse_float(token, d)) return d;
    bool word = is_name_start(token[0]) && std::all_of(token.begin(), token.end(), is_name_char);
    if (word) return token;
    fail(value_pos, fmt::format("expected a number, a list, a word or a quoted string, found '{}'", token));
  }

  void parse_output() {
    while (true) {
      skip_spaces();
      size_t name_pos = pos_;
      std::string output = name("a value name after `output`");
      pending_outputs_.push_back({output, location(name_pos)});
      if (peek(',')) {
        ++pos_;
        continue;
      }
      if (!at_end()) fail(pos_, fmt::format("expected ',' between output names, {}", found_text()));
      return;
    }
  }

  // Outputs may name values defined further down, so they are resolved at the end.
  void resolve_output(const PendingOutput& pending) {
    int index = find_value(pending.name);
    if (index < 0) {
      std::string hint = nearest_spelling(pending.name, defined_names());
      throw Error(pending.location, fmt::format("unknown value '{}' in output{}", pending.name,
                                                hint.empty() ? "" : fmt::format("; did you mean '{}'?", hint)));
    }
    if (std::find(graph_.outputs.begin(), graph_.outputs.end(), index) != graph_.outputs.end()) {
      throw Error(pending.location, fmt::format("'{}' is listed as an output twice", pending.name));
    }
    graph_.outputs.push_back(index);
  }

  const std::string& text_;
  std::string file_;
  // The graph's values by name. Graph::find_value and Graph::add_value search the list, which
  // would make reading n definitions take n^2 steps; check_new_name has already made sure that
  // each name is new.
  int find_value(const std::string& value_name) const {
    auto it = value_index_.find(value_name);
    return it == value_index_.end() ? -1 : it->second;
  }
  int add_value(Value v) {
    int index = static_cast<int>(graph_.values.size());
    value_index_.emplace(v.name, index);
    graph_.values.push_back(std::move(v));
    return index;
  }

  Graph graph_;
  std::unordered_map<std::string, int> value_index_;
  std::map<std::string, int> definition_lines_;
  std::vector<PendingOutput> pending_outputs_;
  size_t scale_pos_ = 0;  // column of the last scale= option, for messages
  bool seen_graph_ = false;
  int graph_line_ = 0;
  std::string line_;
  size_t pos_ = 0;
  int line_number_ = 0;
};

}  // namespace

Graph parse_graph(const std::string& text, const std::string& file_name) {
  return GraphParser(text, file_name).parse();
}

}  // namespace tpusim
