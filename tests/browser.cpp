#include "browser.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "test_util.h"

namespace tpusim::test {
namespace {

int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string chromium(const std::string& profile) {
  // Root needs --no-sandbox; the profile directory keeps runs apart. timeout: a page that
  // never settles fails the test instead of hanging it.
  return "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run "
         "--user-data-dir='" + profile + "' --enable-logging=stderr --v=0 ";
}

}  // namespace

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

std::string build_dir() { return std::filesystem::path(TPUSIM_BINARY).parent_path().string(); }

BrowserPage open_in_browser(const std::string& html_path, const std::string& screenshot_png) {
  BrowserPage page;
  const std::string dir = make_temp_dir("browser");
  const std::string url = "file://" + std::filesystem::absolute(html_path).string();
  const int status = run(chromium(dir + "/profile") + "--dump-dom '" + url + "' >'" + dir + "/dom' 2>'" + dir + "/err'");
  page.dom = read_text_file(dir + "/dom");
  page.log = read_text_file(dir + "/err");
  page.opened = status == 0 && !page.dom.empty();
  std::istringstream lines(page.log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(":CONSOLE") != std::string::npos) page.console.push_back(line);
  }
  if (!screenshot_png.empty()) {
    std::filesystem::create_directories(std::filesystem::path(screenshot_png).parent_path());
    run(chromium(dir + "/profile") + "--window-size=1280,2800 --screenshot='" + screenshot_png + "' '" + url + "' >'" +
        dir + "/shot-out' 2>&1");
  }
  std::filesystem::remove_all(dir);
  return page;
}

}  // namespace tpusim::test
