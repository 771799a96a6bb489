// The HTML report opened in headless Chromium: what every test of it requires.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "browser.h"
#include "test_util.h"

namespace tpusim::test {

// Runs `run ARGUMENTS --report html --report json -o DIR`, opens the page and requires: no
// console message at all, one utilization bar and one roofline point per layer of the JSON
// report, one table row per layer. Leaves a screenshot as BUILD/report-screenshots/NAME.png.
inline void check_html_report(const std::string& arguments, const std::string& name) {
  const std::string dir = make_temp_dir("html-" + name);
  auto r = run_tpusim("run " + arguments + " -q --report html --report json -o " + dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto json = nlohmann::json::parse(read_text_file(dir + "/report.json"));
  const size_t layers = json["layers"].size();
  REQUIRE(layers > 0);
  const std::string html = read_text_file(dir + "/report.html");
  // Self-contained: nothing to fetch.
  CHECK(count_of(html, "http://") + count_of(html, "https://") + count_of(html, " src=") + count_of(html, "@import") ==
        0);
  const std::string screenshot = build_dir() + "/report-screenshots/" + name + ".png";
  BrowserPage page = open_in_browser(dir + "/report.html", screenshot);
  INFO(page.log);
  REQUIRE(page.opened);  // chromium is installed by scripts/install-deps.sh
  for (const std::string& line : page.console) FAIL_CHECK("console: " << line);
  CHECK(count_of(page.dom, "class=\"util-bar\"") == layers);
  CHECK(count_of(page.dom, "class=\"roofline-point\"") == layers);
  CHECK(count_of(page.dom, "<tr>") == layers + 1);  // and the header
  for (const auto& layer : json["layers"]) {
    CHECK(count_of(page.dom, "data-layer=\"" + layer["label"].get<std::string>() + "\"") == 2);
  }
  CHECK(std::filesystem::exists(screenshot));
}

}  // namespace tpusim::test
