// Helpers shared by the test suites: running the CLI and reading files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tpusim::test {

struct CommandResult {
  int exit_code = 0;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the built `tpusim` binary with `arguments` (shell-quoted by the caller when needed),
// from the source tree's root so `examples/...` paths resolve.
CommandResult run_tpusim(const std::string& arguments);

// The same with the process held to `memory_bytes` of address space (not under the
// sanitizers, which reserve terabytes of it) and killed after `timeout_seconds`: a runaway
// allocation then fails inside tpusim, and a hang ends the test instead of the suite.
struct BoundedResult : CommandResult {
  int64_t max_rss_kb = 0;  // the process's peak resident memory
  double seconds = 0;      // wall time
  bool timed_out = false;
};
BoundedResult run_tpusim_bounded(const std::string& arguments, int64_t memory_bytes, int timeout_seconds);

// The same with stderr on a pseudo-terminal (as when a person runs it): returns what tpusim
// wrote there in `err`; stdout goes to `out` as usual.
CommandResult run_tpusim_in_terminal(const std::string& arguments);

std::string read_text_file(const std::string& path);
void write_text_file(const std::string& path, const std::string& text);

// A fresh empty directory under the system temp dir, unique per call.
std::string make_temp_dir(const std::string& hint);

// The source tree's root.
std::string source_dir();

}  // namespace tpusim::test
