#include "simulator/yaml_text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace tpusim::yaml_text {

std::string join(const std::vector<std::string>& words, const char* separator) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) out += separator;
    out += word;
  }
  return out;
}

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

bool contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

std::optional<int64_t> parse_int64(std::string_view text, bool* too_large) {
  *too_large = false;
  if (text.starts_with('+')) {
    text.remove_prefix(1);
    if (text.starts_with('-')) return std::nullopt;
  }
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (end != text.data() + text.size()) return std::nullopt;
  if (error == std::errc::result_out_of_range) *too_large = true;
  if (error != std::errc()) return std::nullopt;
  return value;
}

namespace {
std::string yaml_error_hint(const std::string& message) {
  static const std::pair<const char*, const char*> kHints[] = {
      {"end of map flow not found", "a '{' is not closed by '}'"},
      {"end of sequence flow not found", "a '[' is not closed by ']'"},
      {"illegal map value", "a ':' where none is expected; check the indentation"},
      {"end of map not found", "check the indentation"},
      {"end of sequence not found", "check the indentation"},
      {"illegal tab when looking for indentation", "indent with spaces, not tabs"},
      {"illegal EOF in scalar", "a quote is not closed"},
  };
  for (const auto& [text, hint] : kHints) {
    if (message == text) return fmt::format(" ({})", hint);
  }
  return "";
}
}  // namespace

YAML::Node load_single_document(const std::string& text, const std::string& file_name,
                                const std::string& empty_message) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    throw Error(SourceLocation{file_name, e.mark.line + 1, e.mark.column + 1, ""},
                "malformed YAML: " + e.msg + yaml_error_hint(e.msg));
  }
  if (documents.empty() || (documents.size() == 1 && documents[0].IsNull())) {
    throw Error(SourceLocation{file_name, 1, 1, ""}, empty_message);
  }
  if (documents.size() > 1) {
    YAML::Mark mark = documents[1].Mark();
    throw Error(SourceLocation{file_name, mark.line + 1, mark.column + 1, ""},
                fmt::format("expected one YAML document, found {}; remove the extra '---' sections",
                            documents.size()));
  }
  return documents[0];
}

const std::string& scalar_text(const LocatedNode& node, std::string_view expected) {
  if (!node.yaml.IsScalar()) node.fail(fmt::format("expected {}, got {}", expected, describe(node.yaml)));
  return node.yaml.Scalar();
}

int64_t read_integer(const LocatedNode& node) {
  const std::string& text = scalar_text(node, "an integer");
  bool too_large = false;
  std::optional<int64_t> parsed = parse_int64(trim(text), &too_large);
  if (too_large) node.fail(fmt::format("integer '{}' is too large", text));
  if (!parsed) node.fail(fmt::format("expected an integer, got '{}'", text));
  return *parsed;
}

double read_number(const LocatedNode& node) {
  const std::string& text = scalar_text(node, "a number");
  std::string_view digits = trim(text);
  if (digits.starts_with('+')) digits.remove_prefix(1);
  double parsed = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), parsed);
  if (error != std::errc() || end != digits.data() + digits.size() || digits.starts_with('+'))
    node.fail(fmt::format("expected a number, got '{}'", text));
  if (!std::isfinite(parsed)) node.fail(fmt::format("expected a finite number, got '{}'", text));
  return parsed;
}

bool read_bool(const LocatedNode& node) {
  const std::string& text = scalar_text(node, "true or false");
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  node.fail(fmt::format("expected true or false, got '{}'", text));
}

int64_t at_least(const LocatedNode& node, int64_t number, int64_t minimum, std::string_view note) {
  if (number < minimum) node.fail(fmt::format("must be at least {}{}, got {}", minimum, note, number));
  return number;
}

int64_t read_integer_at_least(const LocatedNode& node, int64_t minimum, std::string_view note) {
  return at_least(node, read_integer(node), minimum, note);
}

}  // namespace tpusim::yaml_text
