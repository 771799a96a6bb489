// Parser for the textual program format (docs/program-format.md). Line oriented: every line
// is a declaration, an instruction, `repeat VAR COUNT {`, `}`, a comment or blank. The first
// problem is thrown as a tpusim::Error located at its line:column.
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "ir/program.h"
#include "ir/sizes.h"

namespace tpusim {
namespace {

bool is_identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_identifier_char(char c) { return is_identifier_start(c) || (c >= '0' && c <= '9'); }

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

class ProgramParser {
 public:
  ProgramParser(const std::string& text, const std::string& file) : text_(text), file_(file) {
    program_.file = file;
  }

  Program parse() {
    block_stack_.push_back(&program_.body);
    size_t start = 0;
    while (start <= text_.size()) {
      size_t end = text_.find('\n', start);
      bool last = end == std::string::npos;
      if (last) end = text_.size();
      ++line_number_;
      if (!(last && start == end)) parse_line(text_.substr(start, end - start));
      if (last) break;
      start = end + 1;
    }
    if (block_stack_.size() > 1) {
      const Node& open = *open_repeats_.back();
      throw Error({file_, line_number_, 1, ""},
                  fmt::format("unexpected end of file: `repeat {}` opened at line {} is never "
                              "closed (add a line with `}}`)",
                              open.loop_variable, open.location.line));
    }
    program_.update_unit_masks();
    return std::move(program_);
  }

 private:
  // --- lexing within the current line ---
  SourceLocation location(size_t column_index) const {
    return {file_, line_number_, static_cast<int>(column_index) + 1, ""};
  }
  [[noreturn]] void fail(size_t column_index, const std::string& message) const {
    throw Error(location(column_index), message);
  }
  void skip_spaces() {
    while (pos_ < line_.size() && (line_[pos_] == ' ' || line_[pos_] == '\t')) ++pos_;
  }
  bool at_end() {
    skip_spaces();
    return pos_ >= line_.size();
  }
  bool peek(char c) {
    skip_spaces();
    return pos_ < line_.size() && line_[pos_] == c;
  }
  void expect(char c, const char* what) {
    skip_spaces();
    if (pos_ >= line_.size() || line_[pos_] != c) {
      fail(pos_, fmt::format("expected '{}' {}{}", c, what, found_text()));
    }
    ++pos_;
  }
  std::string found_text() {
    skip_spaces();
    if (pos_ >= line_.size()) return ", found end of line";
    size_t end = pos_;
    while (end < line_.size() && line_[end] != ' ' && line_[end] != '\t' && end - pos_ < 20) ++end;
    return fmt::format(", found '{}'", line_.substr(pos_, end - pos_));
  }
  std::string identifier(const char* what) {
    skip_spaces();
    if (pos_ >= line_.size() || !is_identifier_start(line_[pos_])) {
      fail(pos_, fmt::format("expected {}{}", what, found_text()));
    }
    size_t start = pos_;
    while (pos_ < line_.size() && is_identifier_char(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  int64_t integer(const char* what) {
    skip_spaces();
    size_t start = pos_;
    bool negative = false;
    if (pos_ < line_.size() && (line_[pos_] == '-' || line_[pos_] == '+')) {
      negative = line_[pos_] == '-';
      ++pos_;
    }
    int base = 10;
    if (pos_ + 1 < line_.size() && line_[pos_] == '0' && (line_[pos_ + 1] == 'x' || line_[pos_ + 1] == 'X')) {
      base = 16;
      pos_ += 2;
    }
    size_t digits = pos_;
    uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(line_.data() + pos_, line_.data() + line_.size(), value, base);
    if (ptr == line_.data() + digits) {
      pos_ = start;
      fail(start, fmt::format("expected {} (an integer){}", what, found_text()));
    }
    if (ec == std::errc::result_out_of_range ||
        value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(start, fmt::format("{} is too large", what));
    }
    pos_ = static_cast<size_t>(ptr - line_.data());
    if (pos_ < line_.size() && is_identifier_char(line_[pos_])) {
      size_t end = pos_;
      while (end < line_.size() && is_identifier_char(line_[end])) ++end;
      fail(start, fmt::format("expected {} (an integer), found '{}'", what,
                              line_.substr(start, end - start)));
    }
    int64_t v = static_cast<int64_t>(value);
    return negative ? -v : v;
  }

  // term := INT | INT '*' VAR | VAR | VAR '*' INT ; expr := ['-'] term (('+'|'-') term)*
  Affine affine(const char* what) {
    Affine result;
    skip_spaces();
    int sign = 1;
    if (pos_ < line_.size() && line_[pos_] == '-') {
      sign = -1;
      ++pos_;
    }
    while (true) {
      skip_spaces();
      size_t term_start = pos_;
      int64_t coefficient = 1;
      int depth = -1;
      if (pos_ < line_.size() && is_identifier_start(line_[pos_])) {
        depth = loop_variable(identifier("a loop variable"), term_start);
        if (peek('*')) {
          ++pos_;
          coefficient = integer("a coefficient");
        }
      } else {
        coefficient = integer(what);
        if (peek('*')) {
          ++pos_;
          skip_spaces();
          size_t var_start = pos_;
          depth = loop_variable(identifier("a loop variable after '*'"), var_start);
        }
      }
      coefficient *= sign;
      if (depth < 0) {
        result.constant += coefficient;
      } else {
        add_term(result, depth, coefficient);
      }
      skip_spaces();
      if (pos_ < line_.size() && (line_[pos_] == '+' || line_[pos_] == '-')) {
        sign = line_[pos_] == '-' ? -1 : 1;
        ++pos_;
        continue;
      }
      break;
    }
    return result;
  }
  // Keeps `terms` canonical: one term per variable, by depth, no zero coefficients (so
  // `i - i` is the constant 0 and equal expressions compare equal).
  static void add_term(Affine& a, int depth, int64_t coefficient) {
    for (auto it = a.terms.begin(); it != a.terms.end(); ++it) {
      if (it->first == depth) {
        it->second += coefficient;
        if (it->second == 0) a.terms.erase(it);
        return;
      }
    }
    if (coefficient == 0) return;
    a.terms.emplace_back(depth, coefficient);
    std::sort(a.terms.begin(), a.terms.end());
  }
  int loop_variable(const std::string& name, size_t column_index) {
    for (size_t d = 0; d < loop_variables_.size(); ++d) {
      if (loop_variables_[d] == name) return static_cast<int>(d);
    }
    fail(column_index, loop_variables_.empty()
                           ? fmt::format("unknown name '{}': no loop variable is in scope here", name)
                           : fmt::format("unknown loop variable '{}' (in scope: {})", name,
                                         join(loop_variables_)));
  }

  std::vector<int64_t> integer_list(const char* what) {
    std::vector<int64_t> values;
    expect('[', fmt::format("to start the {} list", what).c_str());
    if (peek(']')) {
      fail(pos_, fmt::format("{} list is empty", what));
    }
    while (true) {
      values.push_back(integer(what));
      if (peek(',')) {
        ++pos_;
        continue;
      }
      expect(']', fmt::format("to close the {} list", what).c_str());
      return values;
    }
  }

  BufferRef buffer_ref(bool typed) {
    skip_spaces();
    size_t start = pos_;
    std::string name = identifier("a buffer (ub, wb or acc)");
    auto buffer = parse_buffer(name);
    if (!buffer) {
      std::string hint = nearest_spelling(name, {"ub", "wb", "acc"});
      if (find_tensor(name) >= 0) {
        fail(start, fmt::format("'{}' is a DRAM tensor, but this operand must be an on-chip "
                                "buffer (ub, wb or acc)", name));
      }
      fail(start, fmt::format("unknown buffer '{}'{}; buffers are ub, wb and acc", name,
                              hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
    BufferRef ref;
    ref.present = true;
    ref.buffer = *buffer;
    expect('[', "after the buffer name");
    ref.address = affine("an address");
    expect(']', "to close the address");
    if (typed) {
      if (!peek(':')) {
        fail(pos_, fmt::format("expected ':TYPE' after {}[...] (e.g. {}[0]:int32): VPU operands "
                               "say their element type", name, name));
      }
      ++pos_;
      size_t type_start = pos_;
      std::string type = identifier("an element type");
      auto dtype = parse_dtype(type);
      if (!dtype) fail(type_start, fmt::format("unknown element type '{}' (int8, int32, bf16, fp32)", type));
      ref.type = *dtype;
    }
    return ref;
  }

  TensorRef tensor_ref() {
    skip_spaces();
    size_t start = pos_;
    std::string name = identifier("a DRAM tensor name");
    int index = find_tensor(name);
    if (index < 0) {
      if (parse_buffer(name)) {
        fail(start, fmt::format("'{}' is an on-chip buffer, but this operand must be a DRAM "
                                "tensor declared with `tensor`", name));
      }
      std::vector<std::string> names;
      for (const auto& t : program_.tensors) names.push_back(t.name);
      std::string hint = nearest_spelling(name, names);
      fail(start, fmt::format("unknown tensor '{}'{}", name,
                              !hint.empty() ? fmt::format(" (did you mean '{}'?)", hint)
                              : names.empty() ? std::string("; declare it first with `tensor NAME TYPE [dims] input|output|scratch`")
                                              : fmt::format("; declared tensors: {}", join(names))));
    }
    TensorRef ref;
    ref.tensor = index;
    expect('[', "after the tensor name");
    while (true) {
      ref.coords.push_back(affine("a coordinate"));
      if (peek(',')) {
        ++pos_;
        continue;
      }
      expect(']', "to close the coordinates");
      break;
    }
    const auto& decl = program_.tensors[static_cast<size_t>(index)];
    if (ref.coords.size() != decl.shape.size()) {
      fail(start, fmt::format("tensor '{}' has {} dimension{} but {} coordinate{} given", name,
                              decl.shape.size(), decl.shape.size() == 1 ? "" : "s",
                              ref.coords.size(), ref.coords.size() == 1 ? " is" : "s are"));
    }
    return ref;
  }

  std::vector<int> token_list(Unit) {
    std::vector<int> tokens;
    while (true) {
      skip_spaces();
      size_t start = pos_;
      std::string name = identifier("a token name");
      int index = find_token(name);
      if (index < 0) {
        std::vector<std::string> names;
        for (const auto& t : program_.tokens) names.push_back(t.name);
        std::string hint = nearest_spelling(name, names);
        fail(start, fmt::format("unknown token '{}'{}", name,
                                !hint.empty() ? fmt::format(" (did you mean '{}'?)", hint)
                                              : std::string("; declare it with `token NAME PRODUCER -> CONSUMER`")));
      }
      tokens.push_back(index);
      if (pos_ < line_.size() && line_[pos_] == ',') {
        ++pos_;
        continue;
      }
      return tokens;
    }
  }

  std::string quoted_string() {
    skip_spaces();
    if (pos_ >= line_.size() || line_[pos_] != '"') fail(pos_, "expected a quoted string" + found_text());
    size_t start = pos_++;
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

  // --- statements ---
  void parse_line(std::string raw) {
    while (!raw.empty() && raw.back() == '\r') raw.pop_back();  // CRLF (or CR CR LF) line ends
    // Split off a trailing comment: the first '#' outside a quoted string.
    bool in_string = false;
    size_t hash = std::string::npos;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (in_string && raw[i] == '\\') {
        ++i;  // an escaped character (\" or \\) never ends the string
        continue;
      }
      if (raw[i] == '"') in_string = !in_string;
      if (raw[i] == '#' && !in_string) {
        hash = i;
        break;
      }
    }
    line_ = raw;
    pos_ = 0;
    std::string comment;
    if (hash != std::string::npos) {
      comment = raw.substr(hash + 1);
      line_ = raw.substr(0, hash);
    }
    auto& block = *block_stack_.back();
    if (at_end()) {
      Node node;
      node.location = location(0);
      if (hash == std::string::npos) {
        node.kind = Node::Kind::Blank;
      } else {
        node.kind = Node::Kind::Comment;
        node.text = comment;
      }
      block.push_back(std::move(node));
      return;
    }
    size_t start = pos_;
    if (line_[pos_] == '}') {
      ++pos_;
      if (block_stack_.size() == 1) fail(start, "'}' without a matching `repeat ... {`");
      if (!at_end()) fail(pos_, "unexpected text after '}'");
      block_stack_.pop_back();
      open_repeats_.pop_back();
      loop_variables_.pop_back();
      return;
    }
    std::string word = identifier("a statement (tensor, token, repeat or an instruction)");
    if (word == "tensor") return parse_tensor(start, comment);
    if (word == "token") return parse_token(start, comment);
    if (word == "repeat") return parse_repeat(start, comment);
    parse_instruction(word, start, comment);
  }

  void require_top_level(size_t start, const char* what) {
    if (block_stack_.size() != 1) fail(start, fmt::format("{} declarations must be at the top level, not inside a repeat", what));
  }

  // A trailing comment on a declaration or `repeat` line is kept in the node's `text`.
  void parse_tensor(size_t start, const std::string& comment) {
    require_top_level(start, "tensor");
    TensorDecl decl;
    decl.location = location(start);
    size_t name_pos = (skip_spaces(), pos_);
    decl.name = identifier("a tensor name");
    if (find_tensor(decl.name) >= 0) {
      fail(name_pos, fmt::format("tensor '{}' is declared twice (first at line {})", decl.name,
                                 program_.tensors[find_tensor(decl.name)].location.line));
    }
    if (parse_buffer(decl.name)) fail(name_pos, fmt::format("'{}' is a buffer name and cannot name a tensor", decl.name));
    size_t type_pos = (skip_spaces(), pos_);
    std::string type = identifier("an element type (int8, int32, bf16, fp32)");
    auto dtype = parse_dtype(type);
    if (!dtype) fail(type_pos, fmt::format("unknown element type '{}' (int8, int32, bf16, fp32)", type));
    decl.dtype = *dtype;
    size_t shape_pos = (skip_spaces(), pos_);
    decl.shape = integer_list("shape");
    if (decl.shape.size() > 6) fail(shape_pos, "tensors have at most 6 dimensions");
    for (int64_t d : decl.shape) {
      if (d < 1) fail(shape_pos, fmt::format("every dimension must be at least 1, got {}", d));
      if (d > kMaxDimension) fail(shape_pos, fmt::format("every dimension must be at most {}, got {}", kMaxDimension, d));
    }
    if (!checked_element_count(decl.shape)) {
      fail(shape_pos, fmt::format("tensor '{}' of shape {} has more than 2^48 elements, the most one tensor may have",
                                  decl.name, shape_text(decl.shape)));
    }
    size_t kind_pos = (skip_spaces(), pos_);
    std::string kind = identifier("the tensor kind (input, output or scratch)");
    if (kind == "input") decl.kind = TensorKind::Input;
    else if (kind == "output") decl.kind = TensorKind::Output;
    else if (kind == "scratch") decl.kind = TensorKind::Scratch;
    else fail(kind_pos, fmt::format("unknown tensor kind '{}' (input, output or scratch)", kind));
    if (!at_end()) fail(pos_, "unexpected text after the tensor declaration");
    Node node;
    node.kind = Node::Kind::TensorDecl;
    node.text = comment;
    node.declaration = static_cast<int>(program_.tensors.size());
    node.location = decl.location;
    tensor_index_.emplace(decl.name, static_cast<int>(program_.tensors.size()));
    program_.tensors.push_back(std::move(decl));
    program_.body.push_back(std::move(node));
  }

  Unit unit(const char* what) {
    skip_spaces();
    size_t p = pos_;
    std::string name = identifier(what);
    auto u = parse_unit(name);
    if (!u) fail(p, fmt::format("unknown unit '{}' (dma, mxu or vpu)", name));
    return *u;
  }

  void parse_token(size_t start, const std::string& comment) {
    require_top_level(start, "token");
    TokenDecl decl;
    decl.location = location(start);
    size_t name_pos = (skip_spaces(), pos_);
    decl.name = identifier("a token name");
    if (find_token(decl.name) >= 0) {
      fail(name_pos, fmt::format("token '{}' is declared twice (first at line {})", decl.name,
                                 program_.tokens[find_token(decl.name)].location.line));
    }
    decl.producer = unit("the producing unit (dma, mxu or vpu)");
    expect('-', "(write PRODUCER -> CONSUMER)");
    expect('>', "(write PRODUCER -> CONSUMER)");
    size_t consumer_pos = (skip_spaces(), pos_);
    decl.consumer = unit("the consuming unit (dma, mxu or vpu)");
    if (decl.consumer == decl.producer) {
      fail(consumer_pos, fmt::format("a token orders two different units; {} already runs its "
                                     "own instructions in order", unit_name(decl.producer)));
    }
    if (!at_end()) {
      size_t key_pos = pos_;
      if (identifier("init=N") != "init") fail(key_pos, "expected `init=N` or end of line");
      expect('=', "after init");
      size_t value_pos = (skip_spaces(), pos_);
      decl.initial = integer("the initial count");
      if (decl.initial < 0) fail(value_pos, "the initial count cannot be negative");
      if (!at_end()) fail(pos_, "unexpected text after the token declaration");
    }
    Node node;
    node.kind = Node::Kind::TokenDecl;
    node.text = comment;
    node.declaration = static_cast<int>(program_.tokens.size());
    node.location = decl.location;
    token_index_.emplace(decl.name, static_cast<int>(program_.tokens.size()));
    program_.tokens.push_back(std::move(decl));
    program_.body.push_back(std::move(node));
  }

  void parse_repeat(size_t start, const std::string& comment) {
    Node node;
    node.kind = Node::Kind::Repeat;
    node.text = comment;
    node.location = location(start);
    size_t var_pos = (skip_spaces(), pos_);
    node.loop_variable = identifier("a loop variable name");
    for (const auto& v : loop_variables_) {
      if (v == node.loop_variable) fail(var_pos, fmt::format("loop variable '{}' is already used by an enclosing repeat", v));
    }
    size_t count_pos = (skip_spaces(), pos_);
    node.loop_count = integer("the repeat count");
    if (node.loop_count < 1) fail(count_pos, fmt::format("the repeat count must be at least 1, got {}", node.loop_count));
    expect('{', "after the repeat count");
    if (!at_end()) fail(pos_, "unexpected text after '{' (the loop body starts on the next line)");
    if (loop_variables_.size() >= static_cast<size_t>(kMaxLoopDepth)) {
      fail(start, fmt::format("repeat loops nest at most {} deep", kMaxLoopDepth));
    }
    auto& block = *block_stack_.back();
    block.push_back(std::move(node));
    Node& placed = block.back();
    block_stack_.push_back(&placed.body);
    open_repeats_.push_back(&placed);
    loop_variables_.push_back(placed.loop_variable);
  }

  void parse_instruction(const std::string& unit_word, size_t start, const std::string& comment) {
    std::string mnemonic = unit_word;
    if (pos_ < line_.size() && line_[pos_] == '.') {
      ++pos_;
      mnemonic += "." + identifier("an operation name after the unit");
    }
    auto opcode = parse_opcode(mnemonic);
    if (!opcode) {
      std::vector<std::string> candidates = opcode_mnemonics();
      if (mnemonic.find('.') == std::string::npos) {
        candidates.insert(candidates.end(), {"tensor", "token", "repeat"});  // a misspelt keyword
      }
      std::string hint = nearest_spelling(mnemonic, candidates);
      fail(start, fmt::format("unknown instruction '{}'{}", mnemonic,
                              hint.empty() ? std::string(" (see docs/program-format.md for the instruction set)")
                                           : fmt::format("; did you mean '{}'?", hint)));
    }
    const OpcodeInfo& info = opcode_info(*opcode);
    Instruction in;
    in.opcode = *opcode;
    in.location = location(start);
    in.comment = comment;
    for (const auto& f : info.fields) {
      if (f.kind == FieldKind::Int) *int_slot(in, f.slot) = f.default_value;
    }
    std::vector<std::string> seen;
    while (!at_end()) {
      size_t key_pos = pos_;
      std::string key = identifier("an operand name (key=value)");
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        fail(key_pos, fmt::format("operand '{}' is given twice", key));
      }
      seen.push_back(key);
      expect('=', fmt::format("after '{}'", key).c_str());
      parse_operand(in, info, mnemonic, key, key_pos);
      // Operands are separated by spaces: `rows=4cols=4` is a typo, not two operands.
      if (pos_ < line_.size() && line_[pos_] != ' ' && line_[pos_] != '\t') {
        fail(pos_, fmt::format("unexpected '{}' after the {} operand (operands are separated by "
                               "spaces)", line_[pos_], key));
      }
    }
    for (const auto& f : info.fields) {
      if (f.required && std::find(seen.begin(), seen.end(), f.name) == seen.end()) {
        fail(pos_, fmt::format("{} is missing its '{}' operand", mnemonic, f.name));
      }
    }
    Node node;
    node.kind = Node::Kind::Instruction;
    node.location = in.location;
    node.instruction = std::move(in);
    block_stack_.back()->push_back(std::move(node));
  }

  void parse_operand(Instruction& in, const OpcodeInfo& info, const std::string& mnemonic,
                     const std::string& key, size_t key_pos) {
    if (key == "wait") {
      in.waits = token_list(info.unit);
      return;
    }
    if (key == "signal") {
      in.signals = token_list(info.unit);
      return;
    }
    if (key == "label") {
      in.label = quoted_string();
      return;
    }
    const FieldInfo* field = nullptr;
    for (const auto& f : info.fields) {
      if (key == f.name) field = &f;
    }
    if (!field) {
      std::vector<std::string> names;
      for (const auto& f : info.fields) names.emplace_back(f.name);
      names.insert(names.end(), {"wait", "signal", "label"});
      std::string hint = nearest_spelling(key, names);
      fail(key_pos, fmt::format("{} has no operand '{}'{}", mnemonic, key,
                                hint.empty() ? fmt::format(" (operands: {})", join(names))
                                             : fmt::format("; did you mean '{}'?", hint)));
    }
    parse_field(in, *field);
  }

  void parse_field(Instruction& in, const FieldInfo& field) {
    skip_spaces();
    size_t value_pos = pos_;
    switch (field.kind) {
      case FieldKind::BufferRef:
      case FieldKind::TypedBufferRef:
        *buffer_slot(in, field.slot) = buffer_ref(field.kind == FieldKind::TypedBufferRef);
        return;
      case FieldKind::TensorRef:
        in.tensor = tensor_ref();
        return;
      case FieldKind::Int:
        *int_slot(in, field.slot) = integer(field.name);
        return;
      case FieldKind::IntList: {
        *int_list_slot(in, field.slot) = integer_list(field.name);
        return;
      }
      case FieldKind::IntListList: {
        expect('[', fmt::format("to start the {} list", field.name).c_str());
        in.tensor_step.clear();
        while (true) {
          in.tensor_step.push_back(integer_list(field.name));
          if (peek(',')) {
            ++pos_;
            continue;
          }
          expect(']', fmt::format("to close the {} list", field.name).c_str());
          break;
        }
        return;
      }
      case FieldKind::Bool: {
        std::string word = identifier("true or false");
        if (word == "true") *bool_slot(in, field.slot) = true;
        else if (word == "false") *bool_slot(in, field.slot) = false;
        else fail(value_pos, fmt::format("{} must be true or false, got '{}'", field.name, word));
        return;
      }
      case FieldKind::Double: {
        size_t end = pos_;
        while (end < line_.size() && line_[end] != ' ' && line_[end] != '\t') ++end;
        std::string word = line_.substr(pos_, end - pos_);
        char* parse_end = nullptr;
        double value = std::strtod(word.c_str(), &parse_end);
        if (word.empty() || parse_end != word.c_str() + word.size()) {
          fail(value_pos, fmt::format("{} must be a number, got '{}'", field.name, word));
        }
        in.imm = value;
        pos_ = end;
        return;
      }
    }
  }

  int find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? -1 : it->second;
  }
  int find_token(const std::string& name) const {
    auto it = token_index_.find(name);
    return it == token_index_.end() ? -1 : it->second;
  }

  const std::string& text_;
  std::string file_;
  Program program_;
  // Name -> index of the tensors and tokens declared so far: Program::find_tensor searches
  // the list, which would make reading n declarations take n^2 steps.
  std::unordered_map<std::string, int> tensor_index_, token_index_;
  std::vector<std::vector<Node>*> block_stack_;
  std::vector<Node*> open_repeats_;
  std::vector<std::string> loop_variables_;
  std::string line_;
  size_t pos_ = 0;
  int line_number_ = 0;
};

}  // namespace

Program parse_program(const std::string& text, const std::string& file_name) {
  return ProgramParser(text, file_name).parse();
}

}  // namespace tpusim
