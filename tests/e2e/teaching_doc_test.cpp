// docs/teaching.md: every `tpusim` command in its ```sh blocks runs, exits 0 and prints something.
// The answers in the lesson plan quote these commands' output, so a command that stops working
// (a renamed flag, a removed preset) fails here rather than in a classroom.
#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

using namespace tpusim::test;

namespace {

// The lines of the ```sh blocks of `markdown` that start with "tpusim ", without that prefix.
std::vector<std::string> sh_block_commands(const std::string& markdown) {
  std::vector<std::string> commands;
  std::istringstream in(markdown);
  std::string line;
  bool in_sh = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("```", 0) == 0) {
      in_sh = !in_sh && line == "```sh";
      continue;
    }
    if (in_sh && line.rfind("tpusim ", 0) == 0) commands.push_back(line.substr(7));
  }
  return commands;
}

// `arguments` with the file of every `--html FILE` moved into `dir`, so the test writes nothing
// into the source tree.
std::string redirect_html(const std::string& arguments, const std::string& dir) {
  std::istringstream in(arguments);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i];
    if (w == "--html" && i + 1 < words.size()) {
      out += w + " '" + dir + "/" + std::filesystem::path(words[++i]).filename().string() + "'";
    } else if (w.rfind("--html=", 0) == 0) {
      out += "--html='" + dir + "/" + std::filesystem::path(w.substr(7)).filename().string() + "'";
    } else {
      out += w;
    }
    if (i + 1 < words.size()) out += " ";
  }
  return out;
}

}  // namespace

TEST_CASE("docs/teaching.md: every tpusim command in its sh blocks runs", "[explain][docs]") {
  const std::string doc = read_text_file(source_dir() + "/docs/teaching.md");
  const std::vector<std::string> commands = sh_block_commands(doc);
  REQUIRE(commands.size() >= 12);

  const std::string dir = make_temp_dir("teaching-doc");
  for (const std::string& command : commands) {
    INFO("tpusim " << command);
    // The commands are run through the shell: a pipe or a redirection would hide the output
    // this test checks, and a reader copying the line would not get what the lesson shows.
    CHECK(command.find_first_of("|<>;&`$\\") == std::string::npos);
    const CommandResult r = run_tpusim(redirect_html(command, dir));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(!r.out.empty());
  }
  std::filesystem::remove_all(dir);
}
