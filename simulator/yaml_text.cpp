#include "simulator/yaml_text.h"

#include "ir/sizes.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

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

// Counts the documents of a YAML stream from the parser's events, stopping at the first
// document whose root is empty. yaml-cpp 0.7's YAML::LoadAll does not stop there: on some
// malformed input (a lone ',') the parser reports an empty document forever without consuming
// any text, and LoadAll collects them until memory runs out (fixed upstream after 0.7, in
// jbeder/yaml-cpp#1319). An empty document ends the stream here, as it does upstream now.
class DocumentCounter : public YAML::EventHandler {
 public:
  struct Document {
    YAML::Mark root;  // where its root node starts
    bool empty_root = true;
  };

  // Every non-empty document, in order.
  static std::vector<Document> count(const std::string& text) {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    std::vector<Document> documents;
    DocumentCounter counter;
    while (true) {
      counter.current_ = Document{};
      counter.events_ = 0;
      if (!parser.HandleNextDocument(counter) || counter.current_.empty_root) break;
      documents.push_back(counter.current_);
    }
    return documents;
  }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark, false); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark, true); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
    node(mark, true);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark, true);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark, true);
  }
  void OnMapEnd() override {}

 private:
  // The first node event of a document is its root.
  void node(const YAML::Mark& mark, bool has_content) {
    if (events_++ > 0) return;
    current_.root = mark;
    current_.empty_root = !has_content;
  }

  Document current_;
  int64_t events_ = 0;
};

// The line and column (1-based) of the first character that is not blank, in a comment or a
// bare document marker ('---', '...'); {0, 0} when there is none.
std::pair<int, int> first_content(std::string_view text) {
  int line = 1;
  while (!text.empty()) {
    size_t end = std::min(text.find('\n'), text.size());
    std::string_view row = text.substr(0, end);
    row = row.substr(0, std::min(row.find('#'), row.size()));
    std::string_view content = trim(row);
    if (!content.empty() && content != "---" && content != "...") {
      return {line, static_cast<int>(row.find(content.front())) + 1};
    }
    text.remove_prefix(std::min(end + 1, text.size()));
    ++line;
  }
  return {0, 0};
}

}  // namespace

YAML::Node load_single_document(const std::string& text, const std::string& file_name,
                                const std::string& empty_message) {
  std::vector<DocumentCounter::Document> documents;
  YAML::Node first;
  try {
    documents = DocumentCounter::count(text);
    if (!documents.empty()) first = YAML::Load(text);  // the first document only
  } catch (const YAML::DeepRecursion& e) {
    throw Error(SourceLocation{file_name, e.mark.line + 1, e.mark.column + 1, ""},
                "malformed YAML: nested more than 2000 levels deep (a description needs only a few)");
  } catch (const YAML::Exception& e) {
    throw Error(SourceLocation{file_name, e.mark.line + 1, e.mark.column + 1, ""},
                "malformed YAML: " + e.msg + yaml_error_hint(e.msg));
  }
  if (documents.empty() || first.IsNull()) {
    // Text that is neither blank nor a comment but holds no document is not YAML at all.
    if (auto [line, column] = first_content(text); line > 0) {
      throw Error(SourceLocation{file_name, line, column, ""},
                  "malformed YAML: no value here; a description is a mapping of 'key: value' lines");
    }
    throw Error(SourceLocation{file_name, 1, 1, ""}, empty_message);
  }
  if (documents.size() > 1) {
    const YAML::Mark& mark = documents[1].root;
    throw Error(SourceLocation{file_name, mark.line + 1, mark.column + 1, ""},
                fmt::format("expected one YAML document, found {}; remove the extra '---' sections",
                            documents.size()));
  }
  return first;
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

namespace {
int64_t at_most_dimension(const LocatedNode& node, int64_t number) {
  if (number > kMaxDimension) {
    node.fail(fmt::format("must be at most {} (the largest size tpusim accepts), got {}", kMaxDimension, number));
  }
  if (number < -kMaxDimension) {
    node.fail(fmt::format("must be at least -{} (the largest size tpusim accepts), got {}", kMaxDimension, number));
  }
  return number;
}
}  // namespace

int64_t read_size(const LocatedNode& node, int64_t minimum, std::string_view note) {
  return at_most_dimension(node, read_integer_at_least(node, minimum, note));
}

int64_t read_bounded_integer(const LocatedNode& node) { return at_most_dimension(node, read_integer(node)); }

}  // namespace tpusim::yaml_text
