// The HTML report in a real browser (headless Chromium): a CNN and an attention model here;
// ResNet-18 and the GPT-2 block in the slow suite.
#include <catch2/catch.hpp>

#include <filesystem>

#include "browser.h"
#include "html_report_checks.h"

TEST_CASE("html report: tiny-cnn opens without a console message, a bar and a point per layer", "[report][html]") {
  tpusim::test::check_html_report("examples/models/tiny-cnn.yaml --arch edge-32x32", "tiny-cnn");
}

TEST_CASE("html report: the teaching attention model", "[report][html]") {
  tpusim::test::check_html_report("examples/models/attention-teach.yaml --arch teach-4x4 --set mxu.operand_type=bf16",
                                  "attention-teach");
}

TEST_CASE("html report: the browser check sees a script error", "[report][html]") {
  // The check of the checks: a page whose script fails must show up in the console.
  const std::string dir = tpusim::test::make_temp_dir("html-broken");
  tpusim::test::write_text_file(dir + "/broken.html", "<html><body><script>no_such_function();</script></body></html>");
  auto page = tpusim::test::open_in_browser(dir + "/broken.html");
  REQUIRE(page.opened);
  REQUIRE(page.console.size() == 1);
  CHECK(page.console[0].find("Uncaught ReferenceError: no_such_function is not defined") != std::string::npos);
}

TEST_CASE("html diff: a delta bar per layer, no console message", "[report][html][diff]") {
  const std::string dir = tpusim::test::make_temp_dir("html-diff");
  for (const std::string arch : {"edge-32x32", "teach-4x4"}) {
    REQUIRE(tpusim::test::run_tpusim("run examples/models/tiny-cnn.yaml -q --arch " + arch + " --json " + dir + "/" +
                                     arch + ".json")
                .exit_code == 0);
  }
  auto d = tpusim::test::run_tpusim("diff " + dir + "/edge-32x32.json " + dir + "/teach-4x4.json --html " + dir +
                                    "/diff.html");
  REQUIRE(d.exit_code == 0);
  auto page = tpusim::test::open_in_browser(dir + "/diff.html", tpusim::test::build_dir() + "/report-screenshots/diff.png");
  INFO(page.log);
  REQUIRE(page.opened);
  CHECK(page.console.empty());
  CHECK(tpusim::test::count_of(page.dom, "class=\"delta-bar\"") == 8);
  CHECK(tpusim::test::count_of(page.dom, "<tr>") == 1 + 8 + 1);  // header, layers, total
}
