// Small text helpers shared by the YAML readers (machine descriptions in simulator/arch.cpp,
// model descriptions in compiler/frontend/yaml_model.cpp), so both word their messages alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace tpusim::yaml_text {

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
