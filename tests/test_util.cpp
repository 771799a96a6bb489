#include "test_util.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <chrono>
#include <csignal>
#include <thread>

#include <fcntl.h>
#include <pty.h>
#include <sys/resource.h>
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

CommandResult run_tpusim_in_terminal(const std::string& arguments) {
  std::string dir = make_temp_dir("terminal");
  std::string out_path = dir + "/out";
  std::string command = "cd '" + source_dir() + "' && exec '" TPUSIM_BINARY "' " + arguments + " >'" + out_path +
                        "' </dev/null";
  int master = -1;
  pid_t child = forkpty(&master, nullptr, nullptr, nullptr);
  if (child == 0) {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  CommandResult result;
  if (child < 0) throw std::runtime_error("forkpty failed");
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(master, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the child has closed the terminal
    result.err.append(buffer, static_cast<size_t>(n));
  }
  close(master);
  int status = 0;
  waitpid(child, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_text_file(out_path);
  std::filesystem::remove_all(dir);
  return result;
}

BoundedResult run_tpusim_bounded(const std::string& arguments, int64_t memory_bytes, int timeout_seconds) {
  std::string dir = make_temp_dir("bounded");
  std::string out_path = dir + "/out", err_path = dir + "/err";
  // `exec` makes the shell become tpusim, so the limits and the usage figures are tpusim's.
  std::string command = "cd '" + source_dir() + "' && exec '" TPUSIM_BINARY "' " + arguments + " >'" + out_path +
                        "' 2>'" + err_path + "' </dev/null";
  const auto start = std::chrono::steady_clock::now();
  pid_t child = fork();
  if (child == 0) {
#if !defined(__SANITIZE_ADDRESS__)
    rlimit limit{static_cast<rlim_t>(memory_bytes), static_cast<rlim_t>(memory_bytes)};
    setrlimit(RLIMIT_AS, &limit);
#else
    (void)memory_bytes;
#endif
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  BoundedResult result;
  int status = 0;
  rusage usage{};
  while (true) {
    pid_t done = wait4(child, &status, WNOHANG, &usage);
    if (done == child) break;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > timeout_seconds) {
      result.timed_out = true;
      kill(child, SIGKILL);
      wait4(child, &status, 0, &usage);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.max_rss_kb = usage.ru_maxrss;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_text_file(out_path);
  result.err = read_text_file(err_path);
  std::filesystem::remove_all(dir);
  return result;
}

}  // namespace tpusim::test
