// Opening a page in headless Chromium (Debian's `chromium`, installed by
// scripts/install-deps.sh), for the tests of tpusim's HTML pages.
#pragma once

#include <string>
#include <vector>

namespace tpusim::test {

struct BrowserPage {
  bool opened = false;                // chromium ran and printed the page
  std::string dom;                    // the document after its scripts ran
  std::vector<std::string> console;   // every console message (errors included)
  std::string log;                    // chromium's stderr, for a failure's message
};

// Loads `html_path`, lets its scripts run, and returns the DOM and the console; with
// `screenshot_png`, also saves a full-width screenshot there.
BrowserPage open_in_browser(const std::string& html_path, const std::string& screenshot_png = "");

// Occurrences of `needle` in `text`.
size_t count_of(const std::string& text, const std::string& needle);

// The build folder (where the tests leave files for a person to look at).
std::string build_dir();

}  // namespace tpusim::test
