#include "tools/output_files.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "ir/diagnostics.h"

namespace tpusim::cli {

void require_writable(const std::string& path, const char* flag) {
  if (path.empty()) return;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
    throw Error({path, 0, 0, ""}, fmt::format("{}: cannot write here: the directory '{}' does not exist", flag, parent.string()));
  }
  if (std::filesystem::is_directory(path, error)) {
    throw Error({path, 0, 0, ""}, fmt::format("{}: is a directory; give a file name", flag));
  }
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error({path, 0, 0, ""}, "cannot write file (check that the directory exists)");
}

}  // namespace tpusim::cli
