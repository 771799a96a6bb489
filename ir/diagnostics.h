// Diagnostics: the two kinds of error tpusim raises.
// `Error` is bad user input (a config, a program, a model, a flag): it carries where the
// problem is and a message a user can act on. `internal_error` is a broken invariant in tpusim.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>
#include <initializer_list>

namespace tpusim {

// Where a problem is: a file and line:column (1-based; 0 = unknown), and/or a key path
// such as `mxu.rows` for structured input.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  std::string key_path;

  bool has_position() const { return line > 0; }
};

// A user error. what() gives the full text: `file:line:col: error: key: message`.
class Error : public std::runtime_error {
 public:
  Error(SourceLocation location, std::string message);
  explicit Error(std::string message) : Error(SourceLocation{}, std::move(message)) {}

  const SourceLocation& location() const { return location_; }
  const std::string& message() const { return message_; }

 private:
  SourceLocation location_;
  std::string message_;
};

// Formats a diagnostic the way every tpusim error is printed.
std::string format_diagnostic(const SourceLocation& location, const std::string& severity,
                              const std::string& message);

// A broken invariant: never the user's fault. Thrown as InternalError so tools can say so.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

[[noreturn]] void internal_error(const char* file, int line, const std::string& message);

// "1 kernel", "3 kernels"; `plural` for words that do not just take an s ("1 box", "2 boxes").
std::string counted(int64_t count, const std::string& singular, const std::string& plural = "");

// The closest candidate to `word` by edit distance, or "" when nothing is close enough to
// be a plausible typo. Used for "did you mean" hints.
std::string nearest_spelling(const std::string& word, const std::initializer_list<const char*>& candidates);
std::string nearest_spelling(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace tpusim

// Checks an internal invariant in every build type (these are cheap and guard simulator state).
#define TPUSIM_CHECK(condition, message)                                   \
  do {                                                                     \
    if (!(condition)) ::tpusim::internal_error(__FILE__, __LINE__, message); \
  } while (false)
