#include "test_util.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <sys/wait.h>
#include <unistd.h>

#include "tpusim/version.h"

namespace tpusim::test {

std::string source_dir() { return TPUSIM_SOURCE_DIR; }

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string make_temp_dir(const std::string& hint) {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             ("tpusim-test-" + hint + "-" + std::to_string(::getpid()) + "-" +
              std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

CommandResult run_tpusim(const std::string& arguments) {
  std::string dir = make_temp_dir("cli");
  std::string out_path = dir + "/out", err_path = dir + "/err";
  std::string command = "cd '" + source_dir() + "' && '" TPUSIM_BINARY "' " + arguments + " >'" +
                        out_path + "' 2>'" + err_path + "' </dev/null";
  int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_text_file(out_path);
  result.err = read_text_file(err_path);
  std::filesystem::remove_all(dir);
  return result;
}

}  // namespace tpusim::test
