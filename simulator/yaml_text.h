// Small text helpers shared by the YAML readers (machine descriptions in simulator/arch.cpp,
// model descriptions in compiler/frontend/yaml_model.cpp), so both word their messages alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "ir/diagnostics.h"

namespace tpusim::yaml_text {

// One node of a YAML tree with the place to blame when it is wrong (file:line:col, key path).
struct LocatedNode {
  YAML::Node yaml;
  SourceLocation where;

  [[noreturn]] void fail(const std::string& message) const { throw Error(where, message); }
};

// The one document of a YAML text. Malformed YAML (with a hint for yaml-cpp's terser
// messages), more than one document, and an empty text (`empty_message`) are errors located in
// `file_name`.
YAML::Node load_single_document(const std::string& text, const std::string& file_name,
                                const std::string& empty_message);

// Typed reads of a scalar; each failure names the node and what was expected.
const std::string& scalar_text(const LocatedNode& node, std::string_view expected);
int64_t read_integer(const LocatedNode& node);
double read_number(const LocatedNode& node);  // finite
bool read_bool(const LocatedNode& node);       // true/True/TRUE, false/False/FALSE
// `number` if it is at least `minimum`, else "must be at least MINIMUM{note}, got NUMBER".
int64_t at_least(const LocatedNode& node, int64_t number, int64_t minimum, std::string_view note = "");
int64_t read_integer_at_least(const LocatedNode& node, int64_t minimum, std::string_view note = "");
// A size, count or axis of a model: read_integer_at_least, and at most kMaxDimension
// (ir/sizes.h) in magnitude, so arithmetic on a few of them cannot overflow.
int64_t read_size(const LocatedNode& node, int64_t minimum, std::string_view note = "");
int64_t read_bounded_integer(const LocatedNode& node);

// "a, b, c".
std::string join(const std::vector<std::string>& words, const char* separator = ", ");
// "mxu.rows" from "mxu" and "rows" ("rows" at the top level).
std::string child_path(const std::string& parent, const std::string& key);
// How a node reads in a "got ..." clause: "'abc'", "a sequence", "a mapping", "an empty value".
std::string describe(const YAML::Node& node);
std::string_view trim(std::string_view text);
bool contains(const std::vector<std::string>& list, const std::string& word);
// A decimal integer (an optional '+'); nullopt when it is not one. `too_large` is set when it
// is an integer that does not fit int64.
std::optional<int64_t> parse_int64(std::string_view text, bool* too_large);

}  // namespace tpusim::yaml_text
