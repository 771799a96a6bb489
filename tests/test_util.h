// Helpers shared by the test suites: running the CLI and reading files.
#pragma once

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

std::string read_text_file(const std::string& path);
void write_text_file(const std::string& path, const std::string& text);

// A fresh empty directory under the system temp dir, unique per call.
std::string make_temp_dir(const std::string& hint);

// The source tree's root.
std::string source_dir();

}  // namespace tpusim::test
