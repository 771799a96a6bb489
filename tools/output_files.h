// Files the CLI writes (--json, --trace, --html, report directories).
#pragma once

#include <string>

namespace tpusim::cli {

// An output file must be writable where it is asked for: checked before anything runs, so a
// missing directory is an error at once, not after a long simulation. Nothing for an empty path.
void require_writable(const std::string& path, const char* flag);

// Writes `text` to `path` (binary, so output bytes are the same on every platform).
void write_file(const std::string& path, const std::string& text);

}  // namespace tpusim::cli
