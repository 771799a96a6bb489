#include "ir/diagnostics.h"

#include <algorithm>

#include <fmt/format.h>

namespace tpusim {

std::string format_diagnostic(const SourceLocation& location, const std::string& severity,
                              const std::string& message) {
  std::string out;
  if (!location.file.empty()) {
    out += location.file;
    if (location.line > 0) {
      out += fmt::format(":{}", location.line);
      if (location.column > 0) out += fmt::format(":{}", location.column);
    }
    out += ": ";
  } else if (location.line > 0) {
    out += fmt::format("line {}:{}: ", location.line, location.column);
  }
  out += severity + ": ";
  if (!location.key_path.empty()) out += location.key_path + ": ";
  out += message;
  return out;
}

Error::Error(SourceLocation location, std::string message)
    : std::runtime_error(format_diagnostic(location, "error", message)),
      location_(std::move(location)),
      message_(std::move(message)) {}

void internal_error(const char* file, int line, const std::string& message) {
  throw InternalError(fmt::format("internal error at {}:{}: {} (this is a bug in tpusim)", file,
                                  line, message));
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}
}  // namespace

std::string counted(int64_t count, const std::string& singular, const std::string& plural) {
  return std::to_string(count) + " " + (count == 1 ? singular : plural.empty() ? singular + "s" : plural);
}

std::string nearest_spelling(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  // Two edits (a swapped pair of letters) or a third of the letters, but never every letter.
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    size_t d = edit_distance(word, candidate);
    if (d < best_distance && d < word.size()) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string nearest_spelling(const std::string& word,
                             const std::initializer_list<const char*>& candidates) {
  return nearest_spelling(word, std::vector<std::string>(candidates.begin(), candidates.end()));
}

}  // namespace tpusim
